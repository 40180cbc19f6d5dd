"""The results table (Markdown), with ratios, targets and the machine it ran on."""

from __future__ import annotations

import argparse
import platform
import subprocess
from typing import Any

# (key, label, unit, higher is better, {broker: target ratio}).
ROWS: list[tuple[str, str, str, bool, dict[str, float]]] = [
    ("enqueue", "enqueue, `noop.delay(i)`", "tasks/s", True, {"redis": 3.0, "amqp": 2.0}),
    ("enqueue_window", "enqueue, `noop.delay(i)`, opt-in `confirm_window` 64 (vs Celery's enqueue)",
     "tasks/s", True, {}),
    ("batch", "enqueue, batched `noop.delay_many(...)`", "tasks/s", True, {}),
    ("drain", "drain, prefork -c 2, one INCR per task", "tasks/s", True,
     {"redis": 7.0, "amqp": 2.5}),
    ("e2e", "end-to-end `add(i, i)` + `get()`", "tasks/s", True, {"redis": 6.0, "amqp": 2.5}),
    ("e2e_window", "end-to-end, opt-in `confirm_window` 64 (vs Celery's end-to-end)", "tasks/s",
     True, {}),
    ("p50", "latency `delay().get()` p50", "ms", False, {"redis": 0.35, "amqp": 0.5}),
    ("p99", "latency `delay().get()` p99", "ms", False, {}),
    ("ap50", "latency `await adelay()` + `await` p50", "ms", False, {}),
    ("ap99", "latency `await adelay()` + `await` p99", "ms", False, {}),
    ("pss", "idle worker PSS, prefork -c 2 (process tree)", "MiB", False, {"redis": 0.8}),
    ("overhead_solo", "overhead, solo (1 process)", "tasks/s", True, {}),
    ("overhead_asyncio", "overhead, asyncio (1 process, async task)", "tasks/s", True, {}),
    ("overhead_threads", "overhead, threads -c 4 (1 process)", "tasks/s", True, {}),
    ("overhead_prefork", "overhead, prefork -c 2 (whole worker)", "tasks/s", True, {}),
]


#: Rows of celeriac's opt-in modes, compared with Celery's plain row.
_CELERY_ROW = {"enqueue_window": "enqueue", "e2e_window": "e2e"}


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "ms":
        return f"{value:.2f}"
    if unit == "MiB":
        return f"{value:.1f}"
    return f"{value:,.0f}"


def _cmd(*args: str) -> str:
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=20, check=False)
        return (out.stdout or out.stderr).strip()
    except OSError:
        return "unavailable"


def machine() -> list[str]:
    """Facts about where the figures were measured."""
    import celery
    import redis

    client = redis.Redis()
    try:
        redis_version = client.info("server")["redis_version"]
    except Exception:
        redis_version = "unreachable"
    rabbit = "unreachable"
    try:
        import amqp

        conn = amqp.Connection("127.0.0.1:5672", userid="guest", password="guest")
        conn.connect()
        version = conn.server_properties.get("version", b"?")
        rabbit = version.decode() if isinstance(version, bytes) else str(version)
        conn.close()
    except Exception:
        pass
    free = _cmd("free", "-h").splitlines()
    return [
        f"- nproc: {_cmd('nproc')}; CPU: {platform.processor() or platform.machine()}",
        "- memory (`free -h`): " + (" ".join(free[1].split()[1:4]) if len(free) > 1 else "?")
        + " (total used free)",
        f"- Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{platform.platform()}",
        f"- Redis {redis_version}, RabbitMQ {rabbit}, Celery {celery.__version__}, "
        f"redis-py {redis.__version__}",
        f"- celeriac commit {_cmd('git', '-C', str(__file__).rsplit('/', 2)[0], 'rev-parse', '--short', 'HEAD')}",  # noqa: E501
    ]


def _target_line(ratio: float | None, target: float | None, higher: bool) -> tuple[str, str]:
    if target is None:
        return "", ""
    want = f">= {target}x" if higher else f"<= {target}x"
    if ratio is None:
        return want, "not measured"
    ok = ratio >= target if higher else ratio <= target
    return want, "**yes**" if ok else "no"


def broker_table(broker: str, result: dict[str, Any]) -> list[str]:
    """The table of one broker."""
    names = {"redis": "Redis", "amqp": "RabbitMQ", "sqlite": "SQLite (celeriac only)"}
    med = result["medians"]
    targets = {t.system: t for t in result["targets"]}
    lines = [f"### {names.get(broker, broker)}", ""]
    for system, target in targets.items():
        if target.skip:
            lines.append(f"- **{system} rows skipped**: {target.skip}.")
        if target.label in result["errors"]:
            lines.append(f"- **{system} failed**: {result['errors'][target.label]}")
    if len(lines) > 2:
        lines.append("")
    has_celery = "celery" in targets and not targets["celery"].skip
    lines += ["| figure | celeriac | Celery 5 | celeriac / Celery | target | holds |",
              "|---|---:|---:|---:|---|---|"]
    ours = med.get(f"celeriac/{broker}", {})
    theirs = med.get(f"celery/{broker}", {})
    for key, label, unit, higher, goals in ROWS:
        a, b = ours.get(key), theirs.get(_CELERY_ROW.get(key, key))
        if a is None and (b is None or key in _CELERY_ROW):
            continue
        ratio = a / b if a is not None and b else None
        want, holds = _target_line(ratio, goals.get(broker), higher)
        if key == "batch" and broker == "redis":
            want, holds = ">= 50,000/s", ("**yes**" if a and a >= 50000 else "no")
        if key in ("overhead_solo", "overhead_asyncio") and broker == "redis":
            want = ">= 20,000/s (solo or asyncio)"
            best = max(ours.get("overhead_solo", 0), ours.get("overhead_asyncio", 0))
            holds = "**yes**" if best >= 20000 else "no"
        ratio_text = f"{ratio:.2f}x" if ratio is not None else ("" if has_celery else "—")
        lines.append(f"| {label} ({unit}) | {_fmt(a, unit)} | {_fmt(b, unit)} | "
                     f"{ratio_text} | {want} | {holds} |")
    for system, figs in (("celeriac", ours), ("Celery", theirs)):
        if "drain_lost" in figs:
            lines.append(f"| drain: lost / duplicated ({system}, median) | "
                         f"{figs['drain_lost']:.0f} / {figs['drain_dup']:.0f} | | | 0 / 0 | |")
    return [*lines, ""]


def render(results: dict[str, Any], lims: dict[str, float], lims_after: dict[str, float],
           n: dict[str, int], args: argparse.Namespace, long_mode: dict[str, Any] | None,
           seconds: float, argv: list[str], step_costs: str = "") -> str:
    """The whole RESULTS.md text."""
    out = ["# Benchmark results: celeriac vs Celery", "",
           f"Command: `python bench/{' '.join(a.split('/')[-1] if i == 0 else a for i, a in enumerate(argv))}` "  # noqa: E501
           f"({args.runs} runs per figure, median; systems interleaved; {seconds / 60:.1f} min).",
           f"Counts: enqueue/drain/overhead {n['drain']:,} tasks, end-to-end {n['e2e']:,}, "
           f"latency {n['latency']:,} sequential calls.", "", "Machine:", *machine(), ""]
    rtt = (lims["rtt_ms"] + lims_after["rtt_ms"]) / 2
    out += [
        "## Limits measured in the same run (before / after the workloads)", "",
        f"- Redis round trip (bare PING on a plain socket, median): {lims['rtt_ms']:.3f} / "
        f"{lims_after['rtt_ms']:.3f} ms"
        f" (so at most ~{1000 / rtt:,.0f} confirmed one-by-one publishes/s)",
        f"- pipelined LPUSH of task-sized elements: {lims['lpush']:,.0f} / "
        f"{lims_after['lpush']:,.0f} msg/s",
        f"- INCR loop (pop 100, decode, one INCR round trip each; one process): "
        f"{lims['incr']:,.0f} / {lims_after['incr']:,.0f} msg/s "
        f"(two processes: ~{2 * lims['incr']:,.0f}/s at best)", "",
    ]
    redis_med = results.get("redis", {}).get("medians", {}).get("celeriac/redis", {})
    if "enqueue" in redis_med:
        cost = 1000 / redis_med["enqueue"]
        out += [f"celeriac `delay()` on Redis costs {cost:.3f} ms per call = "
                f"{cost / rtt:.2f}x the measured round trip (target <= 1.3x: "
                f"{'**yes**' if cost / rtt <= 1.3 else 'no'}).", ""]
    out += ["## Figures", ""]
    for broker, result in results.items():
        out += broker_table(broker, result)
    if long_mode:
        out += ["## Long mode: worker PSS over 1,000,000 tasks (celeriac, Redis)", ""]
        out += [f"- after {k:,} tasks: {v:.1f} MiB" for k, v in long_mode["pss"].items()]
        out += [f"- growth from 100,000 to the end: {long_mode['growth']:.1f} MiB "
                f"({long_mode['growth_pct']:.1f}%)", ""]
    if step_costs:
        out += ["## What each step of celeriac's hot path costs (Redis, same run)", "",
                "From `bench/costs.py`: CPU time per call in one process (a busy machine "
                "inflates wall time far more than CPU time).", "", step_costs]
    out += [
        "Notes:",
        "- drain and the worker of end-to-end/latency/memory: `-P prefork -c 2` for both "
        "systems (the recommended setting on 2 cores); Celery with `--without-mingle "
        "--without-gossip` (start-up only), all other settings default. celeriac acks "
        "late (after the task) by default, Celery acks early.",
        "- drain rate = (N - 1) / (time of the N-th INCR - time of the first), stamped by the "
        "tasks themselves; the count comes from the Redis counter.",
        "- overhead: N `nothing()` tasks queued between two `mark` tasks (queued with "
        "celeriac's bulk publish for both systems: the same protocol-v2 messages); rate = N / "
        "(last mark - first mark). celeriac's asyncio row runs `async def` tasks.",
        "- memory: PSS summed over the worker's process tree from /proc/<pid>/smaps_rollup, "
        "1 s after the latency workload (warm and idle).",
        "- RabbitMQ rows use the `rpc://` result backend for both systems; SQLite rows use "
        "SQLite for results too.",
        "",
    ]
    return "\n".join(out)
