"""The workloads, as functions of a :class:`Target` (a system on a broker).

Each function starts what it needs (a worker, a client process), measures one
figure and cleans up after itself; ``run.py`` calls them in interleaved rounds
and the smoke test (``tests/bench``) calls them with small counts.

Executions are counted in Redis (``BENCH_COUNTER``) whatever the broker, so a
lost or duplicated task shows as a wrong count, never as a faster figure.
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from bench.procs import WorkerProcess, run_client, tree_pss_mib, wait_until

REDIS = "redis://127.0.0.1:6379"
AMQP = "amqp://guest:guest@127.0.0.1:5672//"
LOG_DIR = Path("/tmp/celeriac-bench")


@dataclass
class Target:
    """One system on one broker, with the URLs both its workers and clients use."""

    system: str  # "celeriac" or "celery"
    broker: str  # "redis", "amqp" or "sqlite"
    redis_db: int = 7
    skip: str = ""  # why this target cannot run (shown in the table)
    _files: list[Path] = field(default_factory=list)

    @property
    def label(self) -> str:
        """``celeriac/redis`` and so on."""
        return f"{self.system}/{self.broker}"

    @property
    def counter_url(self) -> str:
        """Where executions are counted."""
        return f"{REDIS}/{self.redis_db}"

    def urls(self, tag: str) -> tuple[str, str]:
        """(broker URL, result backend URL) for a measurement named ``tag``."""
        if self.broker == "redis":
            return f"{REDIS}/{self.redis_db}", f"{REDIS}/{self.redis_db}"
        if self.broker == "amqp":
            return AMQP, "rpc://"
        LOG_DIR.mkdir(exist_ok=True)
        path = LOG_DIR / f"{tag}.sqlite"
        self._files += [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
        results = LOG_DIR / f"{tag}-results.sqlite"
        self._files += [results, Path(f"{results}-wal"), Path(f"{results}-shm")]
        return f"sqlite:///{path}", f"sqlite:///{results}"

    def env(self, tag: str, total: int = 0) -> dict[str, str]:
        """The environment of the worker and client processes of one measurement."""
        broker, backend = self.urls(tag)
        return {
            "BENCH_SYSTEM": self.system, "BENCH_BROKER": broker, "BENCH_BACKEND": backend,
            "BENCH_QUEUE": tag, "BENCH_COUNTER": f"{tag}:count",
            "BENCH_COUNTER_URL": self.counter_url, "BENCH_TOTAL": str(total),
        }

    def cleanup(self, tag: str) -> None:
        """Drop the queues, counters and files of measurement ``tag``."""
        client = redis.Redis.from_url(self.counter_url)
        try:
            for key in client.scan_iter(match=f"{tag}*", count=1000):
                client.delete(key)
        finally:
            client.close()
        if self.broker == "amqp":
            _amqp_delete_queue(tag)
        for path in self._files:
            path.unlink(missing_ok=True)
        self._files.clear()


def _amqp_delete_queue(name: str) -> None:
    import pika  # only needed when RabbitMQ rows run

    conn = pika.BlockingConnection(pika.URLParameters("amqp://guest:guest@127.0.0.1:5672/%2F"))
    try:
        conn.channel().queue_delete(name)
    finally:
        conn.close()


def new_tag(target: Target, what: str) -> str:
    """A fresh queue/counter name, unique per measurement."""
    return f"bench.{target.system}.{target.broker}.{what}.{uuid.uuid4().hex[:8]}"


def _counter(target: Target) -> redis.Redis:
    return redis.Redis.from_url(target.counter_url)


def start_worker(target: Target, env: dict[str, str], pool: str, concurrency: int) -> WorkerProcess:
    """Start a worker of ``target.system`` for the queue in ``env``."""
    LOG_DIR.mkdir(exist_ok=True)
    log = LOG_DIR / f"{env['BENCH_QUEUE']}.{pool}.log"
    return WorkerProcess(target.system, env, pool, concurrency, log)


# -- workloads -------------------------------------------------------------------------


def enqueue(target: Target, tag: str, n: int) -> float:
    """Workload 1: ``noop.delay(i)`` n times; tasks/s. Leaves the n tasks queued."""
    out = run_client(target.env(tag, n), "enqueue", str(n))
    return float(out["rate"])


def enqueue_batch(target: Target, n: int) -> float:
    """Workload 1b (celeriac): ``noop.delay_many(...)``; tasks/s."""
    tag = new_tag(target, "batch")
    try:
        return float(run_client(target.env(tag, n), "enqueue-batch", str(n))["rate"])
    finally:
        target.cleanup(tag)


def with_confirm_window(env: dict[str, str], window: int = 64) -> dict[str, str]:
    """``env`` for a celeriac client that opts into RabbitMQ's confirm window."""
    return {**env, "BENCH_BROKER_OPTIONS": json.dumps({"confirm_window": window})}


def enqueue_confirm_window(target: Target, n: int, window: int = 64) -> float:
    """Workload 1c (celeriac, RabbitMQ): ``noop.delay(i)`` with the opt-in confirm window."""
    tag = new_tag(target, "window")
    env = with_confirm_window(target.env(tag, n), window)
    try:
        return float(run_client(env, "enqueue", str(n))["rate"])
    finally:
        target.cleanup(tag)


@dataclass
class Drain:
    """What a drain measured: rate from first to last execution, and the exact count."""

    rate: float
    count: int
    lost: int
    duplicated: int


def drain(target: Target, tag: str, n: int, worker: WorkerProcess,
          timeout: float = 600.0, stall: float = 20.0) -> Drain:
    """Workload 2: wait until the worker ran the n queued ``noop`` tasks."""
    client = _counter(target)
    key = f"{tag}:count"
    try:
        deadline = time.monotonic() + timeout
        last, last_change = -1, time.monotonic()
        while time.monotonic() < deadline:
            count = int(client.get(key) or 0)
            if count >= n:
                break
            if count != last:
                last, last_change = count, time.monotonic()
            elif time.monotonic() - last_change > stall or not worker.alive():
                break
            time.sleep(0.02)
        time.sleep(0.3)  # let a duplicate, if any, show up
        count = int(client.get(key) or 0)
        first = client.get(key + ":first")
        end = client.get(key + ":last")
    finally:
        client.close()
    rate = 0.0
    if first is not None and end is not None and float(end) > float(first):
        rate = (n - 1) / (float(end) - float(first))
    return Drain(rate, count, max(0, n - count), max(0, count - n))


def ping(env: dict[str, str], timeout: float = 60.0) -> None:
    """Wait until a worker answers; raise if none does."""
    out = run_client(env, "ping", str(int(timeout)))
    if not out.get("ok"):
        raise RuntimeError(f"worker did not answer: {out}")


def e2e(env: dict[str, str], n: int) -> float:
    """Workload 4: n ``add(i, i)`` sent, then every result read and checked; tasks/s."""
    out = run_client(env, "e2e", str(n))
    if out["wrong"]:
        raise RuntimeError(f"{out['wrong']} wrong results")
    return float(out["rate"])


def latency(env: dict[str, str], n: int, *, use_async: bool = False) -> tuple[float, float]:
    """Workload 5: (p50, p99) in ms of n sequential ``add.delay(1, 1).get()``."""
    out = run_client(env, "alatency" if use_async else "latency", str(n))
    return float(out["p50_ms"]), float(out["p99_ms"])


def idle_pss(worker: WorkerProcess, settle: float = 1.0) -> tuple[float, int]:
    """Workload 6: the worker tree's PSS (MiB) and process count, after ``settle`` s idle."""
    time.sleep(settle)
    return tree_pss_mib(worker.pid)


def overhead(target: Target, n: int, pool: str, concurrency: int,
             timeout: float = 300.0) -> float:
    """Workload 3: n do-nothing tasks between two time stamps; tasks/s of one worker."""
    tag = new_tag(target, f"overhead-{pool}")
    env = target.env(tag, n)
    aio = target.system == "celeriac" and pool == "asyncio"
    task, mark = ("tasks.anothing", "tasks.amark") if aio else ("tasks.nothing", "tasks.mark")
    # Prefill with celeriac's bulk publish whatever the system (the same protocol-v2
    # messages a Celery client sends): this workload times the worker alone.
    run_client({**env, "BENCH_SYSTEM": "celeriac"}, "prefill", str(n), task, mark)
    worker = start_worker(target, env, pool, concurrency)
    client = _counter(target)
    marks_key = f"{tag}:count:marks"
    try:
        done = wait_until(lambda: client.llen(marks_key) >= 2 or not worker.alive(), timeout)
        stamps = [float(x) for x in client.lrange(marks_key, 0, -1)]
        if not done or len(stamps) < 2:
            raise RuntimeError(f"overhead run on {pool} did not finish:\n{worker.log_tail()}")
        return n / (max(stamps) - min(stamps))
    finally:
        client.close()
        worker.stop()
        target.cleanup(tag)


def clean_logs() -> None:
    """Remove the bench's temporary directory."""
    shutil.rmtree(LOG_DIR, ignore_errors=True)


def as_dict(d: Drain) -> dict[str, Any]:
    """A drain result as plain data."""
    return {"rate": d.rate, "count": d.count, "lost": d.lost, "duplicated": d.duplicated}


def long_memory(target: Target, total: int, first: int = 100_000,
                chunk: int = 100_000) -> dict[str, Any]:
    """Worker PSS after ``first`` tasks and after ``total`` (the ``--long`` mode).

    The queue is refilled in chunks while the worker runs, so Redis never holds
    more than two chunks; PSS is read each time another ``chunk`` has run.
    """
    tag = new_tag(target, "long")
    env = target.env(tag, total)
    client = _counter(target)
    key = f"{tag}:count"
    pss: dict[int, float] = {}
    run_client(env, "enqueue-batch", str(min(chunk, total)))
    queued = min(chunk, total)
    worker = start_worker(target, env, *("prefork", 2))
    try:
        checkpoint = first
        while checkpoint <= total:
            if not wait_until(lambda c=checkpoint: int(client.get(key) or 0) >= c  # type: ignore[misc]
                              or not worker.alive(), 1800, 0.2):
                raise RuntimeError(f"long run stalled:\n{worker.log_tail()}")
            if not worker.alive():
                raise RuntimeError(f"worker died:\n{worker.log_tail()}")
            pss[checkpoint] = tree_pss_mib(worker.pid)[0]
            while queued < total and queued - int(client.get(key) or 0) < chunk:
                run_client(env, "enqueue-batch", str(min(chunk, total - queued)))
                queued += min(chunk, total - queued)
            checkpoint += chunk
    finally:
        client.close()
        worker.stop()
        target.cleanup(tag)
    growth = pss[max(pss)] - pss[first]
    return {"pss": pss, "growth": growth, "growth_pct": 100 * growth / pss[first]}
