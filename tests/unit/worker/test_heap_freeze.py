"""A worker that owns its process (the CLI installs its signal handlers) freezes its
start-up heap for the garbage collector; a worker embedded in a program does not."""

from __future__ import annotations

import asyncio
import gc
import signal
import uuid

from celeriac import Celery
from celeriac.worker.worker import Worker, WorkerOptions

BOUND = 20.0


async def _run_until_ready(worker: Worker) -> asyncio.Task[int]:
    runner = asyncio.ensure_future(worker.run())
    async with asyncio.timeout(BOUND):
        await worker.ready.wait()
    return runner


async def _stop(worker: Worker, runner: asyncio.Task[int]) -> None:
    worker.stop()
    async with asyncio.timeout(BOUND):
        assert await runner == 0


async def test_an_embedded_worker_leaves_the_collector_alone() -> None:
    assert gc.get_freeze_count() == 0
    worker = Worker(Celery("embedded", broker=f"memory://{uuid.uuid4().hex}"),
                    WorkerOptions(pool="solo"))
    runner = await _run_until_ready(worker)
    try:
        assert gc.get_freeze_count() == 0
    finally:
        await _stop(worker, runner)


async def test_a_worker_owning_its_process_freezes_the_startup_heap() -> None:
    assert gc.get_freeze_count() == 0
    worker = Worker(Celery("owner", broker=f"memory://{uuid.uuid4().hex}"),
                    WorkerOptions(pool="solo"))
    worker.install_signal_handlers()
    loop = asyncio.get_running_loop()
    try:
        runner = await _run_until_ready(worker)
        assert gc.get_freeze_count() > 0
        await _stop(worker, runner)
    finally:
        gc.unfreeze()  # this test process goes on running other tests
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
            loop.remove_signal_handler(signum)
