"""Result writes finished in one loop turn reach the backend as one ``store_many``."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import pytest

from celeriac.backends.memory import MemoryBackend
from celeriac.errors import EncodeError
from celeriac.protocol import states
from celeriac.protocol.results import ResultMeta, now_iso
from celeriac.worker._batching import StoreBatcher


class CountingBackend(MemoryBackend):
    """The memory backend, counting calls and refusing results marked ``"bad"``."""

    def __init__(self) -> None:
        super().__init__(f"memory://{uuid.uuid4().hex}")
        self.batches: list[int] = []

    async def store(self, meta: ResultMeta) -> None:
        if meta.result == "bad":
            raise EncodeError("cannot encode 'bad'")
        await super().store(meta)

    async def store_many(self, metas: Sequence[ResultMeta]) -> None:
        self.batches.append(len(metas))
        if any(m.result == "bad" for m in metas):
            raise EncodeError("a result in the batch cannot be encoded")
        for meta in metas:
            await super().store(meta)


def meta(task_id: str, result: object) -> ResultMeta:
    return ResultMeta(task_id, states.SUCCESS, result, None, [], now_iso())


async def test_one_call_per_loop_turn() -> None:
    backend = CountingBackend()
    batcher = StoreBatcher(backend)
    await asyncio.gather(*(batcher.store(meta(f"t{i}", i)) for i in range(50)))
    assert backend.batches == [50]
    assert [(await backend.get(f"t{i}")).result for i in range(50)] == list(range(50))  # type: ignore[union-attr]
    await batcher.store(meta("later", 1))
    assert backend.batches == [50, 1]


async def test_a_refused_result_fails_only_its_own_store() -> None:
    backend = CountingBackend()
    batcher = StoreBatcher(backend)
    outcomes = await asyncio.gather(
        batcher.store(meta("a", 1)), batcher.store(meta("b", "bad")), batcher.store(meta("c", 3)),
        return_exceptions=True,
    )
    assert outcomes[0] is None and outcomes[2] is None
    assert isinstance(outcomes[1], EncodeError)
    assert (await backend.get("a")) is not None and (await backend.get("c")) is not None
    assert await backend.get("b") is None


async def test_a_single_failed_store_raises() -> None:
    batcher = StoreBatcher(CountingBackend())
    with pytest.raises(EncodeError):
        await batcher.store(meta("x", "bad"))


async def test_store_then_calls_back_after_the_write_then_runs_after_write() -> None:
    backend = CountingBackend()
    batcher = StoreBatcher(backend)
    order: list[str] = []
    flushed = asyncio.Event()

    async def after_write() -> None:
        order.append("after_write")
        flushed.set()

    def done(name: str, exc: BaseException | None) -> None:
        order.append(f"{name} {'ok' if exc is None else type(exc).__name__}")

    batcher.after_write = after_write
    for name, value in (("a", 1), ("b", "bad"), ("c", 3)):
        batcher.store_then(meta(name, value), lambda exc, name=name: done(name, exc))
    assert order == []  # nothing is written in the caller's turn
    async with asyncio.timeout(10):
        await flushed.wait()
    assert order == ["a ok", "b EncodeError", "c ok", "after_write"]
    assert backend.batches == [3]
    assert (await backend.get("a")) is not None and (await backend.get("b")) is None
    await batcher.idle()
    assert not batcher._writers
