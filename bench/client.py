"""The producer side of one benchmark workload, run in its own process.

``python bench/client.py WORKLOAD N`` with the environment ``bench/run.py``
sets (``BENCH_SYSTEM``, ``BENCH_BROKER``, ``BENCH_BACKEND``, ``BENCH_QUEUE``)
runs one workload with the ordinary public API of that system and prints one
JSON object on stdout. A fresh process per workload keeps the two systems'
imports, connections and caches apart.

Workloads: ``enqueue`` (``noop.delay(i)`` N times), ``enqueue-batch``
(celeriac's bulk publish), ``prefill`` (N ``nothing`` tasks between two
``mark`` tasks, for the overhead workload), ``ping`` (wait until a worker
answers), ``e2e`` (N ``add(i, i)`` sent, then every result read and checked),
``latency`` / ``alatency`` (sequential ``delay().get()`` round trips).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tasks


def enqueue(n: int) -> dict[str, Any]:
    """``noop.delay(i)``: one confirmed publish per call, results disabled."""
    delay = tasks.noop.delay
    started = time.perf_counter()
    for i in range(n):
        delay(i)
    seconds = time.perf_counter() - started
    return {"rate": n / seconds, "seconds": seconds}


def enqueue_batch(n: int) -> dict[str, Any]:
    """celeriac's bulk publish: ``Task.delay_many`` (one round trip per chunk)."""
    started = time.perf_counter()
    tasks.noop.delay_many([(i,) for i in range(n)])
    seconds = time.perf_counter() - started
    return {"rate": n / seconds, "seconds": seconds}


def prefill(n: int, task_name: str, mark_name: str) -> dict[str, Any]:
    """Queue ``mark, nothing x n, mark`` with celeriac's bulk publish (any queue).

    The messages are protocol-v2 task messages, so a Celery worker runs them as
    its own; the overhead workload times the worker only.
    """
    app = tasks.app
    app.send_many(mark_name, [(0,)])
    app.send_many(task_name, [(i,) for i in range(n)])
    app.send_many(mark_name, [(1,)])
    return {"queued": n + 2}


def ping(timeout: float) -> dict[str, Any]:
    """Wait until a worker answers ``add(0, 0)``."""
    deadline = time.monotonic() + timeout
    started = time.perf_counter()
    while True:
        try:
            value = tasks.add.delay(0, 0).get(timeout=max(0.5, deadline - time.monotonic()))
            return {"ok": value == 0, "seconds": time.perf_counter() - started}
        except Exception as exc:
            if time.monotonic() > deadline:
                return {"ok": False, "error": repr(exc)}


def e2e(n: int) -> dict[str, Any]:
    """Send ``add(i, i)`` n times, then read every result and check it."""
    delay = tasks.add.delay
    started = time.perf_counter()
    results = [delay(i, i) for i in range(n)]
    sent = time.perf_counter()
    wrong = 0
    for i, result in enumerate(results):
        if result.get(timeout=120) != i + i:
            wrong += 1
    seconds = time.perf_counter() - started
    return {"rate": n / seconds, "seconds": seconds, "send_seconds": sent - started,
            "wrong": wrong}


def _percentiles(samples: list[float]) -> dict[str, Any]:
    samples.sort()
    p99 = samples[min(len(samples) - 1, round(0.99 * (len(samples) - 1)))]
    return {"p50_ms": statistics.median(samples) * 1000, "p99_ms": p99 * 1000}


def latency(n: int) -> dict[str, Any]:
    """``add.delay(1, 1).get()`` n times in a row (after a short warm-up)."""
    delay = tasks.add.delay
    for _ in range(5):
        delay(1, 1).get(timeout=30)
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        if delay(1, 1).get(timeout=30) != 2:
            raise SystemExit("wrong result")
        samples.append(time.perf_counter() - t0)
    return _percentiles(samples)


def alatency(n: int) -> dict[str, Any]:
    """``await add.adelay(1, 1)`` then ``await result``, n times in a row."""

    async def main() -> dict[str, Any]:
        adelay = tasks.add.adelay
        for _ in range(5):
            await (await adelay(1, 1))
        samples = []
        for _ in range(n):
            t0 = time.perf_counter()
            result = await adelay(1, 1)
            if await result != 2:
                raise SystemExit("wrong result")
            samples.append(time.perf_counter() - t0)
        return _percentiles(samples)

    return asyncio.run(main())


def main(argv: list[str]) -> None:
    workload, n = argv[0], int(float(argv[1]))
    if workload == "enqueue":
        out = enqueue(n)
    elif workload == "enqueue-batch":
        out = enqueue_batch(n)
    elif workload == "prefill":
        out = prefill(n, argv[2], argv[3])
    elif workload == "ping":
        out = ping(float(n))
    elif workload == "e2e":
        out = e2e(n)
    elif workload == "latency":
        out = latency(n)
    elif workload == "alatency":
        out = alatency(n)
    else:
        raise SystemExit(f"unknown workload {workload!r}")
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
    os._exit(0)  # skip interpreter teardown (pools, atexit hooks): not part of any figure


if __name__ == "__main__":
    main(sys.argv[1:])
