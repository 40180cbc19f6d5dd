"""A finished task's ack follows its result write, on the worker's callback path too.

A success whose only I/O is its result write is stored without a task of its
own: the write joins the loop turn's batch and the ack is sent from the
writer's task as soon as the write is done. These tests hold the write back
(a gate in ``store_many``) and check what the broker is told meanwhile, on the
solo pool (tasks run inline) and the prefork pool (jobs submitted by callback).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any

import pytest

from celeriac import Celery
from celeriac.errors import OperationalError
from celeriac.events import worker_dispatcher
from celeriac.protocol import states
from celeriac.protocol.results import ResultMeta
from celeriac.transports.base import Delivery
from celeriac.worker.worker import Worker, WorkerOptions

POOLS = ("solo", "prefork")
BOUND = 20.0  # seconds: a bound on every wait, never a pause


def make_app() -> Celery:
    name = uuid.uuid4().hex
    app = Celery("acks", broker=f"memory://{name}", backend=f"memory://{name}")

    @app.task(name="double")
    def double(i: int) -> int:
        return i * 2

    return app


class Recorded:
    """Gate the worker's result writes and record writes, acks and rejects in order."""

    def __init__(self, worker: Worker) -> None:
        self.log: list[tuple[str, Any]] = []
        self.gate = asyncio.Event()
        self.changed = asyncio.Event()
        self.fail_with: Exception | None = None
        backend, transport = worker.backend, worker.transport
        assert backend is not None
        store_many = backend.store_many
        # The memory transport's ack_soon is the base class's: it calls ack.
        ack, reject = transport.ack, transport.reject

        async def gated_store_many(metas: Sequence[ResultMeta]) -> None:
            self.note("write started", sorted(m.task_id for m in metas))
            await self.gate.wait()
            if self.fail_with is not None:
                self.note("write failed", None)
                raise self.fail_with
            await store_many(metas)
            self.note("written", sorted(m.task_id for m in metas))

        async def recorded_ack(deliveries: Sequence[Delivery]) -> None:
            self.note("ack", sorted(str(d.envelope.headers["id"]) for d in deliveries))
            await ack(deliveries)

        async def recorded_reject(delivery: Delivery, *, requeue: bool, reason: str = "") -> None:
            self.note("reject", (delivery.envelope.headers["id"], requeue))
            await reject(delivery, requeue=requeue, reason=reason)

        backend.store_many = gated_store_many  # type: ignore[method-assign]
        transport.ack = recorded_ack  # type: ignore[method-assign]
        transport.reject = recorded_reject  # type: ignore[method-assign]

    def note(self, what: str, detail: Any) -> None:
        self.log.append((what, detail))
        self.changed.set()

    def kinds(self) -> list[str]:
        return [what for what, _ in self.log]

    async def until(self, what: str) -> None:
        async with asyncio.timeout(BOUND):
            while what not in self.kinds():
                self.changed.clear()
                await self.changed.wait()


async def start(app: Celery, pool: str) -> tuple[Worker, Recorded, asyncio.Task[int]]:
    opts = WorkerOptions(pool=pool, concurrency=1)
    worker = Worker(app, opts, events=worker_dispatcher(app, opts.send_events))
    recorded = Recorded(worker)
    runner = asyncio.ensure_future(worker.run())
    async with asyncio.timeout(BOUND):
        await worker.ready.wait()
    return worker, recorded, runner


async def stop(worker: Worker, runner: asyncio.Task[int]) -> None:
    worker.stop()
    async with asyncio.timeout(BOUND):
        await runner


@pytest.mark.parametrize("pool", POOLS)
async def test_the_ack_waits_for_the_result_write(pool: str) -> None:
    app = make_app()
    worker, recorded, runner = await start(app, pool)
    try:
        result = await app.tasks["double"].adelay(21)
        await recorded.until("write started")
        # The write is held: the task ran, yet its message is not acked.
        for _ in range(20):
            await asyncio.sleep(0)
        assert recorded.kinds() == ["write started"]
        recorded.gate.set()
        await recorded.until("ack")
        assert recorded.kinds() == ["write started", "written", "ack"]
        assert recorded.log[-1][1] == [result.id]
        assert await result.aget(timeout=BOUND) == 42
    finally:
        recorded.gate.set()
        await stop(worker, runner)


async def test_results_of_one_fetch_share_one_write_and_one_ack() -> None:
    app = make_app()
    results = [await app.tasks["double"].adelay(i) for i in range(5)]
    worker, recorded, runner = await start(app, "solo")  # runs the fetched batch inline
    try:
        recorded.gate.set()
        await recorded.until("ack")
        ids = sorted(r.id for r in results)
        assert recorded.log == [("write started", ids), ("written", ids), ("ack", ids)]
        assert [await r.aget(timeout=BOUND) for r in results] == [0, 2, 4, 6, 8]
    finally:
        await stop(worker, runner)


@pytest.mark.parametrize("pool", POOLS)
async def test_warm_shutdown_waits_for_the_write_and_its_ack(pool: str) -> None:
    app = make_app()
    worker, recorded, runner = await start(app, pool)
    result = await app.tasks["double"].adelay(4)
    await recorded.until("write started")
    worker.stop()
    for _ in range(20):
        await asyncio.sleep(0)
    assert not runner.done()
    assert "ack" not in recorded.kinds()
    recorded.gate.set()
    async with asyncio.timeout(BOUND):
        assert await runner == 0
    assert recorded.kinds() == ["write started", "written", "ack"]
    meta = await app.backend.get(result.id)  # type: ignore[union-attr]
    assert meta is not None and meta.status == states.SUCCESS and meta.result == 8


@pytest.mark.parametrize("pool", POOLS)
async def test_a_result_that_cannot_be_written_gives_the_message_back(pool: str) -> None:
    app = make_app()
    worker, recorded, runner = await start(app, pool)
    try:
        recorded.fail_with = OperationalError("result store unreachable")
        result = await app.tasks["double"].adelay(5)
        recorded.gate.set()
        await recorded.until("reject")
        assert "ack" not in recorded.kinds()
        assert ("reject", (result.id, True)) in recorded.log
    finally:
        recorded.fail_with = None
        await stop(worker, runner)
