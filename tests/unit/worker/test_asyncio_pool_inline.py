"""The asyncio pool runs a coroutine in the caller's task; terminate and stop still work."""

from __future__ import annotations

import asyncio
import contextlib

from celeriac import Celery
from celeriac.app.context import Context
from celeriac.protocol import states
from celeriac.worker.pools.asyncio_pool import AsyncioPool
from celeriac.worker.pools.base import Job, PoolOptions


def make_app() -> Celery:
    app = Celery("inline", broker="memory://inline", backend="memory://inline")

    @app.task(name="sleepy")
    async def sleepy(seconds: float) -> str:
        await asyncio.sleep(seconds)
        return "slept"

    return app


def job(task_id: str, seconds: float) -> Job:
    return Job("sleepy", Context(id=task_id, task="sleepy", args=(seconds,), kwargs={}))


async def test_runs_in_the_callers_task_and_terminates() -> None:
    pool = AsyncioPool(make_app(), PoolOptions(concurrency=4))
    await pool.start()
    try:
        assert (await pool.run(job("quick", 0))).value == "slept"
        running = asyncio.ensure_future(pool.run(job("long", 30)))
        deadline = asyncio.get_running_loop().time() + 5
        while "long" not in pool._running:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.001)
        assert await pool.terminate("long", 15)
        out = await asyncio.wait_for(running, 5)
        assert out.status == states.FAILURE
        assert out.exc_wire is not None and out.exc_wire["exc_type"] == "TaskRevokedError"
        assert not await pool.terminate("long", 15)
    finally:
        await pool.stop()


async def test_an_outside_cancel_still_cancels() -> None:
    pool = AsyncioPool(make_app(), PoolOptions(concurrency=4))
    await pool.start()
    try:
        running = asyncio.ensure_future(pool.run(job("c", 30)))
        await asyncio.sleep(0.01)
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        assert running.cancelled()
        assert "c" not in pool._running
    finally:
        await pool.stop()
