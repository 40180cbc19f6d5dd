"""Profile celeriac's hot paths in one process (cProfile), to see the cost per task.

    python bench/profile_hot.py worker [--pool solo|asyncio] [--n 20000]
    python bench/profile_hot.py delay [--n 5000]

``worker`` queues N ``nothing`` tasks (``anothing`` for asyncio) with the bulk
API, then runs a worker in this process under cProfile until all ran, and
prints the throughput and the functions by own time. ``delay`` profiles N
``noop.delay(i)`` calls. Both on Redis (``BENCH_BROKER``, default db 7).
For a sampling view of a real worker process use py-spy instead:
``py-spy record -o w.svg --pid <worker pid> --subprocesses``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import sys
import time
import uuid

os.environ.setdefault("BENCH_SYSTEM", "celeriac")
os.environ.setdefault("BENCH_QUEUE", f"bench.profile.{uuid.uuid4().hex[:8]}")
os.environ.setdefault("BENCH_BACKEND", "redis://127.0.0.1:6379/7")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tasks

from celeriac.worker.worker import Worker, WorkerOptions


def profile_worker(n: int, pool: str, top: int) -> None:
    name = "tasks.anothing" if pool == "asyncio" else "tasks.nothing"
    tasks.app.send_many(name, [(i,) for i in range(n)])

    async def main() -> float:
        concurrency = {"asyncio": 100, "prefork": 2, "threads": 4}.get(pool, 1)
        worker = Worker(tasks.app, WorkerOptions(pool=pool, concurrency=concurrency))
        runner = asyncio.ensure_future(worker.run())
        await worker.ready.wait()
        started = time.perf_counter()
        while worker.consumer is None or worker.consumer.processed < n:
            await asyncio.sleep(0.005)
        seconds = time.perf_counter() - started
        worker.stop()
        await runner
        return seconds

    profiler = cProfile.Profile()
    profiler.enable()
    seconds = asyncio.run(main())
    profiler.disable()
    print(f"{n} tasks in {seconds:.2f}s under cProfile: {n / seconds:,.0f}/s "
          f"({seconds / n * 1e6:.1f} us per task, profiler overhead included)")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(top)


def profile_delay(n: int, top: int) -> None:
    delay = tasks.noop.delay
    delay(0)
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    for i in range(n):
        delay(i)
    profiler.disable()
    seconds = time.perf_counter() - started
    print(f"{n} delay() in {seconds:.2f}s under cProfile: {seconds / n * 1e6:.1f} us per call")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(top)
    tasks.app.transport.close_sync()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["worker", "delay"])
    parser.add_argument("--pool", default="solo")
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--top", type=int, default=35)
    args = parser.parse_args()
    try:
        if args.what == "worker":
            profile_worker(args.n, args.pool, args.top)
        else:
            profile_delay(args.n, args.top)
    finally:
        import redis

        client = redis.Redis.from_url(tasks.COUNTER_URL)
        for key in client.scan_iter(match=os.environ["BENCH_QUEUE"] + "*"):
            client.delete(key)


if __name__ == "__main__":
    main()
