"""celeriac vs Celery, same machine, same broker, same tasks, one run, one table.

    python bench/run.py            # the issue's counts (20,000 / 5,000 / 500), 3 runs
    python bench/run.py --quick    # a tenth of the counts, 3 runs (a few minutes)
    python bench/run.py --long     # also: worker PSS after 1,000,000 tasks (celeriac)

Every figure is the median of ``--runs`` runs; within a run the systems take
turns (the order flips every run), so drift on a shared machine hits both.
The table, the command line, the machine and the Redis limits measured in the
same run go to ``bench/RESULTS.md`` (followed by ``bench/PROFILE.md``, the
hand-written per-task cost notes). Workers write their logs to
``/tmp/celeriac-bench/``. Redis database 7 (``--redis-db``) holds the bench's
queues, results and counters; each measurement deletes its own keys.
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import costs, limits, report
from bench import harness as h

HERE = Path(__file__).resolve().parent

FULL = {"enqueue": 20000, "drain": 20000, "overhead": 20000, "e2e": 5000, "latency": 500}
QUICK = {k: max(100, v // 10) for k, v in FULL.items()}

#: (pool, concurrency) of the overhead workload per system; asyncio is celeriac's own.
OVERHEAD_POOLS = {
    "celeriac": [("solo", 1), ("asyncio", 100), ("threads", 4), ("prefork", 2)],
    "celery": [("solo", 1), ("threads", 4), ("prefork", 2)],
}
#: The drain/e2e/latency/memory worker: the recommended setting on 2 cores.
MAIN_POOL = ("prefork", 2)


def log(msg: str) -> None:
    """Progress on stderr (the table goes to stdout)."""
    sys.stderr.write(f"[{time.strftime('%H:%M:%S')}] {msg}\n")
    sys.stderr.flush()


def amqp_skip_reason(system: str) -> str:
    """Why ``system`` cannot run on RabbitMQ here, or ``""``."""
    try:
        import pika

        pika.BlockingConnection(
            pika.URLParameters("amqp://guest:guest@127.0.0.1:5672/%2F")).close()
    except Exception as exc:
        return f"RabbitMQ unreachable ({type(exc).__name__})"
    if system == "celeriac":
        try:
            importlib.import_module("celeriac.transports.amqp")
            importlib.import_module("celeriac.backends.rpc")
        except ImportError as exc:
            return f"celeriac's AMQP transport/rpc backend not available yet ({exc.name})"
    return ""


def targets_for(broker: str, systems: list[str], redis_db: int) -> list[h.Target]:
    """The targets of one broker (SQLite is celeriac's alone)."""
    out = []
    for system in systems:
        if broker == "sqlite" and system == "celery":
            continue
        target = h.Target(system, broker, redis_db)
        if broker == "amqp":
            target.skip = amqp_skip_reason(system)
        out.append(target)
    return out


def main_round(target: h.Target, n: dict[str, int], figures: dict[str, list[Any]]) -> None:
    """Enqueue, then drain with a fresh worker, then e2e, latency and idle PSS on it."""
    tag = h.new_tag(target, "main")
    env = target.env(tag, n["drain"])
    try:
        figures["enqueue"].append(h.enqueue(target, tag, n["drain"]))
        worker = h.start_worker(target, env, *MAIN_POOL)
        try:
            drained = h.drain(target, tag, n["drain"], worker)
            figures["drain"].append(drained.rate)
            figures["drain_lost"].append(drained.lost)
            figures["drain_dup"].append(drained.duplicated)
            if drained.lost or drained.duplicated or not drained.rate:
                log(f"  {target.label}: drain count {drained.count} of {n['drain']}:\n"
                    f"{worker.log_tail()}")
            h.ping(env)
            figures["e2e"].append(h.e2e(env, n["e2e"]))
            if target.system == "celeriac" and target.broker == "amqp":
                figures["e2e_window"].append(h.e2e(h.with_confirm_window(env), n["e2e"]))
            p50, p99 = h.latency(env, n["latency"])
            figures["p50"].append(p50)
            figures["p99"].append(p99)
            if target.system == "celeriac":
                p50, p99 = h.latency(env, n["latency"], use_async=True)
                figures["ap50"].append(p50)
                figures["ap99"].append(p99)
            pss, nproc = h.idle_pss(worker)
            figures["pss"].append(pss)
            figures["procs"].append(nproc)
        finally:
            worker.stop()
        if target.system == "celeriac":
            figures["batch"].append(h.enqueue_batch(target, n["enqueue"]))
            if target.broker == "amqp":
                figures["enqueue_window"].append(h.enqueue_confirm_window(target, n["enqueue"]))
    finally:
        target.cleanup(tag)


def overhead_round(target: h.Target, n: int, figures: dict[str, list[Any]]) -> None:
    """One overhead figure per pool."""
    for pool, concurrency in OVERHEAD_POOLS[target.system]:
        figures[f"overhead_{pool}"].append(h.overhead(target, n, pool, concurrency))


def run_broker(broker: str, args: argparse.Namespace, n: dict[str, int]) -> dict[str, Any]:
    """All rounds on one broker; medians per target and figure."""
    targets = targets_for(broker, args.systems, args.redis_db)
    raw: dict[str, dict[str, list[Any]]] = {t.label: defaultdict(list) for t in targets}
    errors: dict[str, str] = {}
    for run in range(args.runs):
        order = targets if run % 2 == 0 else list(reversed(targets))
        for target in order:
            if target.skip or target.label in errors:
                continue
            log(f"{broker} run {run + 1}/{args.runs}: {target.system}")
            try:
                main_round(target, n, raw[target.label])
                if not args.no_overhead:
                    overhead_round(target, n["overhead"], raw[target.label])
            except Exception as exc:  # one broken target must not hide the others' rows
                last = str(exc).strip().splitlines()[-1:] or [""]
                errors[target.label] = f"{type(exc).__name__}: {last[0][:300]}"
                log(f"  {target.label} failed: {errors[target.label]}")
    medians = {
        label: {k: statistics.median(v) for k, v in figs.items() if v}
        for label, figs in raw.items()
    }
    return {"targets": targets, "medians": medians, "raw": raw, "errors": errors}


def measure_limits(args: argparse.Namespace) -> dict[str, float]:
    """Bare redis-py figures of this machine, now."""
    url = f"{h.REDIS}/{args.redis_db}"
    return {
        "rtt_ms": limits.round_trip_ms(url),
        "lpush": limits.lpush_rate(url),
        "incr": limits.incr_loop_rate(url, 10000 if args.quick else 20000),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the counts")
    parser.add_argument("--long", action="store_true",
                        help="also PSS after 1,000,000 tasks (celeriac; minutes)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--brokers", default="redis,amqp,sqlite")
    parser.add_argument("--systems", default="celeriac,celery")
    parser.add_argument("--redis-db", type=int, default=7)
    parser.add_argument("--no-overhead", action="store_true", help="skip workload 3")
    parser.add_argument("--no-write", action="store_true", help="do not write RESULTS.md")
    args = parser.parse_args(argv)
    aliases = {"rabbitmq": "amqp", "pyamqp": "amqp"}
    brokers = [aliases.get(b.strip(), b.strip()) for b in args.brokers.split(",") if b.strip()]
    unknown = sorted(set(brokers) - {"redis", "amqp", "sqlite"})
    if unknown:
        parser.error(f"unknown broker(s) {', '.join(unknown)}: "
                     "use redis, amqp (or rabbitmq), sqlite")
    args.brokers = ",".join(brokers)
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    if set(systems) - {"celeriac", "celery"}:
        parser.error("--systems takes celeriac and/or celery")
    args.systems = systems
    n = QUICK if args.quick else FULL
    started = time.time()
    log("limits: Redis round trip, pipelined LPUSH, INCR loop")
    lims = measure_limits(args)
    results = {}
    for broker in args.brokers.split(","):
        results[broker] = run_broker(broker, args, n)
    lims_after = measure_limits(args)
    log("per-step costs of celeriac's hot path")
    step_costs = costs.render(costs.measure(args.redis_db))
    long_mode = None
    if args.long:
        log("long mode: celeriac worker PSS over 1,000,000 tasks")
        long_mode = h.long_memory(h.Target("celeriac", "redis", args.redis_db), 1_000_000)
    text = report.render(results, lims, lims_after, n, args, long_mode,
                         time.time() - started, sys.argv, step_costs)
    sys.stdout.write(text)
    if not args.no_write:
        profile = HERE / "PROFILE.md"
        extra = "\n" + profile.read_text() if profile.exists() else ""
        (HERE / "RESULTS.md").write_text(text + extra)
        log("wrote bench/RESULTS.md")
    if not any(r["errors"] for r in results.values()):
        h.clean_logs()
    return 0


if __name__ == "__main__":
    sys.exit(main())
