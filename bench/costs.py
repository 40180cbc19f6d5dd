"""What each step of celeriac's hot path costs per task, measured in this process.

    python bench/costs.py      # prints a Markdown table (run.py puts it in RESULTS.md)

Producer: build the message, encode kombu's element, publish (one round trip),
the whole ``delay()``. Worker: decode the element, parse the task message,
make the request and the pool job, run the task (sync and async), one asyncio
task per message, write a result (one round trip, and batched). Figures are
CPU microseconds per call (``time.process_time``), which a busy machine
disturbs less than wall time; round-trip rows also give the wall time.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _setup(redis_db: int) -> Any:
    queue = f"bench.costs.{uuid.uuid4().hex[:8]}"
    os.environ.update({
        "BENCH_SYSTEM": "celeriac", "BENCH_QUEUE": queue,
        "BENCH_BROKER": f"redis://127.0.0.1:6379/{redis_db}",
        "BENCH_BACKEND": f"redis://127.0.0.1:6379/{redis_db}",
    })
    sys.path.insert(0, str(HERE))
    import tasks

    return tasks


def _time(fn: Callable[[], Any], n: int) -> tuple[float, float]:
    fn()
    c0, t0 = time.process_time(), time.perf_counter()
    for _ in range(n):
        fn()
    return ((time.process_time() - c0) / n * 1e6, (time.perf_counter() - t0) / n * 1e6)


async def _atime(fn: Callable[[], Awaitable[Any]], n: int) -> tuple[float, float]:
    await fn()
    c0, t0 = time.process_time(), time.perf_counter()
    for _ in range(n):
        await fn()
    return ((time.process_time() - c0) / n * 1e6, (time.perf_counter() - t0) / n * 1e6)


def measure(redis_db: int = 7, n: int = 3000) -> list[tuple[str, float, float | None]]:
    """(step, CPU us, wall us or None) rows."""
    tasks = _setup(redis_db)
    import redis

    from celeriac.app.trace import arun_task, run_task
    from celeriac.protocol import states
    from celeriac.protocol.kombu_json import decode_element, encode_element
    from celeriac.protocol.message import parse_task_envelope
    from celeriac.protocol.results import ResultMeta, now_iso
    from celeriac.transports.base import Delivery
    from celeriac.worker.request import Request

    app = tasks.app
    rows: list[tuple[str, float, float | None]] = []
    raw = redis.Redis.from_url(tasks.BROKER)
    try:
        cpu, wall = _time(raw.ping, n)
        rows.append(("redis-py PING (one round trip, for scale)", cpu, wall))
        out = app.producer.build("tasks.noop", (1,), {}, {}, tasks.noop)
        cpu, _ = _time(lambda: app.producer.build("tasks.noop", (1,), {}, {}, tasks.noop), n)
        rows.append(("producer: build message + envelope", cpu, None))
        cpu, _ = _time(lambda: encode_element(out.envelope), n)
        rows.append(("producer: encode kombu element (JSON, base64)", cpu, None))
        cpu, wall = _time(lambda: app.transport.publish_sync(out.envelope), n)
        rows.append(("producer: transport.publish_sync (one round trip)", cpu, wall))
        cpu, wall = _time(lambda: tasks.noop.delay(1), n)
        rows.append(("producer: `noop.delay(1)` whole (results off)", cpu, wall))
        cpu, wall = _time(lambda: tasks.add.delay(1, 1), n)
        rows.append(("producer: `add.delay(1, 1)` whole (+ early SUBSCRIBE)", cpu, wall))

        element = encode_element(out.envelope)
        accept = tuple(app.conf.settings.accept_content)
        cpu, _ = _time(lambda: decode_element(element), n)
        rows.append(("worker: decode kombu element", cpu, None))
        env = decode_element(element)
        cpu, _ = _time(lambda: parse_task_envelope(env, accept), n)
        rows.append(("worker: parse task message (headers, body)", cpu, None))
        message = parse_task_envelope(env, accept)
        delivery = Delivery(env, "q", "tag")
        cpu, _ = _time(lambda: Request(message, delivery, tasks.nothing).to_job("h", None, None),
                       n)
        rows.append(("worker: request + pool job (context)", cpu, None))
        job = Request(message, delivery, tasks.nothing).to_job("h", None, None)
        cpu, _ = _time(lambda: run_task(tasks.nothing, job.ctx), n)
        rows.append(("worker: run a sync task (trace, hooks, outcome)", cpu, None))

        backend = app.new_backend()
        assert backend is not None
        metas = [ResultMeta(str(uuid.uuid4()), states.SUCCESS, 2, None, [], now_iso())
                 for _ in range(100)]

        async def worker_side() -> None:
            cpu, _ = await _atime(lambda: arun_task(tasks.anothing, job.ctx), n)
            rows.append(("worker: run an async task (on the loop)", cpu, None))

            async def spawn() -> None:
                await asyncio.ensure_future(asyncio.sleep(0))

            cpu, _ = await _atime(spawn, n)
            rows.append(("worker: one asyncio task per message (create + run)", cpu, None))
            await backend.connect()
            cpu, wall = await _atime(lambda: backend.store(metas[0]), n // 3)
            rows.append(("worker: store one result (one round trip)", cpu, wall))
            cpu, wall = await _atime(lambda: backend.store_many(metas), max(1, n // 100))
            rows.append(("worker: store 100 results in one store_many, per result",
                         cpu / 100, wall / 100))
            await backend.close()

        asyncio.run(worker_side())
    finally:
        for key in raw.scan_iter(match=tasks.QUEUE + "*"):
            raw.delete(key)
        raw.close()
        app.close()
    return rows


def render(rows: list[tuple[str, float, float | None]]) -> str:
    """The rows as a Markdown table."""
    lines = ["| step | CPU us per call | wall us per call |", "|---|---:|---:|"]
    for step, cpu, wall in rows:
        lines.append(f"| {step} | {cpu:.1f} | {'' if wall is None else f'{wall:.0f}'} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render(measure()))
