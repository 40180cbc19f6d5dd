"""Acks of a fetched batch that ran inline (solo pool) go out together after the
batch, each one after its task ran, and every message is acked exactly once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

from celeriac import Celery
from celeriac.transports.base import Delivery
from celeriac.worker.worker import Worker, WorkerOptions

BOUND = 20.0  # seconds: a bound on every wait, never a pause


async def test_an_inline_batch_is_acked_in_one_call_after_its_tasks_ran() -> None:
    name = uuid.uuid4().hex
    app = Celery("batchacks", broker=f"memory://{name}")
    log: list[tuple[str, object]] = []

    @app.task(name="note", ignore_result=True)
    def note(i: int) -> None:
        log.append(("ran", i))

    for i in range(5):
        await note.adelay(i)
    worker = Worker(app, WorkerOptions(pool="solo", concurrency=1))
    ack = worker.transport.ack
    acked = asyncio.Event()
    count = 0

    async def recorded_ack(deliveries: Sequence[Delivery]) -> None:
        nonlocal count
        log.append(("ack", sorted(d.envelope.headers["argsrepr"] for d in deliveries)))
        await ack(deliveries)
        count += len(deliveries)
        if count >= 5:
            acked.set()

    worker.transport.ack = recorded_ack  # type: ignore[method-assign]
    runner = asyncio.ensure_future(worker.run())
    try:
        async with asyncio.timeout(BOUND):
            await acked.wait()
    finally:
        worker.stop()
        async with asyncio.timeout(BOUND):
            assert await runner == 0
    # The memory transport hands over all five at once: one batch, one ack call.
    assert log == [*(("ran", i) for i in range(5)),
                   ("ack", [f"({i},)" for i in range(5)])]
