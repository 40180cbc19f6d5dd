"""The behaviour every result backend must show; see :mod:`celeriac.testing.contracts`."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import ClassVar

import pytest

from celeriac import errors
from celeriac.backends.base import BackendOptions, ChordPart, ResultBackend
from celeriac.backends.registry import backend_for_url
from celeriac.protocol import states
from celeriac.protocol.results import ResultMeta

__all__ = ["BackendContract", "BackendFactory"]

BackendFactory = Callable[..., Awaitable[ResultBackend]]

#: The longest any single contract check waits for something that should happen.
DEADLINE = 5.0


def _id() -> str:
    return str(uuid.uuid4())


def _success(task_id: str, result: object = 42) -> ResultMeta:
    return ResultMeta(
        task_id=task_id,
        status=states.SUCCESS,
        result=result,
        date_done="2024-05-01T12:00:00.000000+00:00",
    )


class BackendContract:
    """Reusable pytest tests for a :class:`~celeriac.backends.base.ResultBackend`.

    Subclass it in a test module as ``class TestMyBackend(BackendContract)`` and
    override :meth:`make_url`. Task and group ids are fresh uuids, so the store
    may be shared. ``expiry_seconds`` is the ``expires`` used by the expiry test
    (raise it for stores with one-second granularity).
    """

    expiry_seconds: ClassVar[float] = 0.3

    # -- hooks ---------------------------------------------------------------
    def make_url(self, tmp_path: Path) -> str:
        """The backend URL the tests use (override)."""
        raise TypeError(f"{type(self).__name__} must define make_url() (BackendContract)")

    def backend_options(self, **changes: object) -> BackendOptions:
        """Options for the backends the tests build; ``changes`` override fields."""
        fields: dict[str, object] = {"poll_interval": 0.05, "expires": 3600.0}
        fields.update(changes)
        return BackendOptions(**fields)  # type: ignore[arg-type]

    def make_backend(self, url: str, options: BackendOptions) -> ResultBackend:
        """Build one backend (default: through the URL registry)."""
        return backend_for_url(url, options)

    # -- fixtures --------------------------------------------------------------
    @pytest.fixture
    def backend_url(self, tmp_path: Path) -> str:
        """The URL from :meth:`make_url`."""
        return self.make_url(tmp_path)

    @pytest.fixture
    async def backend_factory(self, backend_url: str) -> AsyncIterator[BackendFactory]:
        """Builds connected backends on the same store (keyword arguments change
        options); closes them afterwards."""
        made: list[ResultBackend] = []

        async def make(**changes: object) -> ResultBackend:
            backend = self.make_backend(backend_url, self.backend_options(**changes))
            made.append(backend)
            await backend.connect()
            return backend

        yield make
        for backend in made:
            await backend.close()
            backend.close_sync()

    @pytest.fixture
    async def backend(self, backend_factory: BackendFactory) -> ResultBackend:
        """One connected backend."""
        return await backend_factory()

    # -- store and get ---------------------------------------------------------
    async def test_unknown_task_is_none(self, backend: ResultBackend) -> None:
        assert await backend.get(_id()) is None
        assert backend.get_sync(_id()) is None

    async def test_success_round_trip(self, backend: ResultBackend) -> None:
        task_id, child = _id(), _id()
        meta = ResultMeta(
            task_id=task_id,
            status=states.SUCCESS,
            result={"n": 1, "items": [1, 2.5, "é", None, True]},
            children=[[[child, None], None]],
            date_done="2024-05-01T12:00:00.000000+00:00",
        )
        await backend.store(meta)
        got = await backend.get(task_id)
        assert got is not None
        assert (got.task_id, got.status, got.result) == (task_id, meta.status, meta.result)
        assert got.children == meta.children
        assert got.date_done == meta.date_done
        assert backend.get_sync(task_id) == got

    async def test_failure_round_trip(self, backend: ResultBackend) -> None:
        task_id = _id()
        exc = {"exc_type": "ValueError", "exc_message": ["boom"], "exc_module": "builtins"}
        backend.store_sync(
            ResultMeta(task_id=task_id, status=states.FAILURE, result=exc, traceback="Trace\n")
        )
        got = await backend.get(task_id)
        assert got is not None
        assert (got.status, got.result, got.traceback) == (states.FAILURE, exc, "Trace\n")

    async def test_extended_fields_round_trip(self, backend: ResultBackend) -> None:
        task_id, parent, group = _id(), _id(), _id()
        meta = ResultMeta(
            task_id=task_id,
            status=states.SUCCESS,
            result=3,
            group_id=group,
            parent_id=parent,
            name="proj.add",
            args=[1, 2],
            kwargs={"z": 0},
            worker="celery@host",
            retries=2,
            queue="celery",
            extended=True,
        )
        await backend.store(meta)
        got = await backend.get(task_id)
        assert got is not None
        assert (got.name, got.args, got.kwargs) == ("proj.add", [1, 2], {"z": 0})
        assert (got.worker, got.retries, got.queue) == ("celery@host", 2, "celery")
        assert (got.group_id, got.parent_id) == (group, parent)

    async def test_store_many(self, backend: ResultBackend) -> None:
        ids = [_id() for _ in range(5)]
        await backend.store_many([_success(task_id, i) for i, task_id in enumerate(ids)])
        results = [await backend.get(task_id) for task_id in ids]
        assert [m.result if m else None for m in results] == list(range(5))

    async def test_progress_then_ready(self, backend: ResultBackend) -> None:
        task_id = _id()
        await backend.store(ResultMeta(task_id=task_id, status=states.STARTED, result=None))
        assert (await backend.get(task_id)) is not None
        await backend.store(_success(task_id))
        got = await backend.get(task_id)
        assert got is not None
        assert got.status == states.SUCCESS

    async def test_ready_state_not_overwritten_by_unready(self, backend: ResultBackend) -> None:
        task_id = _id()
        await backend.store(_success(task_id, "done"))
        await backend.store(ResultMeta(task_id=task_id, status=states.STARTED))
        backend.store_sync(ResultMeta(task_id=task_id, status=states.RETRY))
        got = await backend.get(task_id)
        assert got is not None
        assert (got.status, got.result) == (states.SUCCESS, "done")

    async def test_forget(self, backend: ResultBackend) -> None:
        one, two = _id(), _id()
        await backend.store_many([_success(one), _success(two)])
        await backend.forget(one)
        backend.forget_sync(two)
        assert await backend.get(one) is None
        assert backend.get_sync(two) is None

    # -- waiting ---------------------------------------------------------------
    async def test_wait_wakes_when_another_task_stores(self, backend: ResultBackend) -> None:
        task_id = _id()
        waiting = asyncio.create_task(backend.wait(task_id, DEADLINE))
        await asyncio.sleep(0.05)
        await backend.store(ResultMeta(task_id=task_id, status=states.STARTED))
        await asyncio.sleep(0.05)
        assert not waiting.done()
        started = time.monotonic()
        await backend.store(_success(task_id, "woken"))
        got = await waiting
        assert got.result == "woken"
        assert time.monotonic() - started < 2.0

    async def test_wait_sees_another_instance(self, backend_factory: BackendFactory) -> None:
        waiter, writer = await backend_factory(), await backend_factory()
        task_id = _id()
        waiting = asyncio.create_task(waiter.wait(task_id, DEADLINE))
        await asyncio.sleep(0.05)
        await writer.store(_success(task_id, "elsewhere"))
        assert (await waiting).result == "elsewhere"

    async def test_wait_sync_wakes_when_a_thread_stores(self, backend: ResultBackend) -> None:
        task_id = _id()
        timer = threading.Timer(0.1, backend.store_sync, args=[_success(task_id, "thread")])
        timer.start()
        try:
            started = time.monotonic()
            got = await asyncio.to_thread(backend.wait_sync, task_id, DEADLINE)
        finally:
            timer.join()
        assert got.result == "thread"
        assert time.monotonic() - started < 2.0

    async def test_wait_timeout_raises(self, backend: ResultBackend) -> None:
        task_id = _id()
        await backend.store(ResultMeta(task_id=task_id, status=states.STARTED))
        started = time.monotonic()
        with pytest.raises(errors.TimeoutError):
            await backend.wait(task_id, 0.3)
        assert 0.25 <= time.monotonic() - started < 2.0

    async def test_wait_sync_timeout_raises(self, backend: ResultBackend) -> None:
        started = time.monotonic()
        with pytest.raises(TimeoutError):  # the builtin, too
            await asyncio.to_thread(backend.wait_sync, _id(), 0.3)
        assert 0.25 <= time.monotonic() - started < 2.0

    async def test_wait_returns_already_stored(self, backend: ResultBackend) -> None:
        task_id = _id()
        await backend.store(_success(task_id, "ready"))
        assert (await backend.wait(task_id, 1.0)).result == "ready"
        assert (await asyncio.to_thread(backend.wait_sync, task_id, 1.0)).result == "ready"

    # -- groups ----------------------------------------------------------------
    async def test_group_save_restore_forget(self, backend: ResultBackend) -> None:
        group_id, ids = _id(), [_id() for _ in range(3)]
        assert backend.restore_group_sync(group_id) is None
        backend.save_group_sync(group_id, ids)
        assert backend.restore_group_sync(group_id) == ids
        backend.forget_group_sync(group_id)
        assert backend.restore_group_sync(group_id) is None

    # -- chords ----------------------------------------------------------------
    async def test_chord_completes_once_with_ordered_parts(self, backend: ResultBackend) -> None:
        group_id = _id()
        backend.set_chord_size_sync(group_id, 3)
        parts = [ChordPart(group_id, _id(), i, states.SUCCESS, i * 10) for i in range(3)]
        assert await backend.chord_part_return(parts[2]) is None
        assert await backend.chord_part_return(parts[0]) is None
        done = await backend.chord_part_return(parts[1])
        assert done is not None
        assert [(p.task_id, p.index, p.result) for p in done] == [
            (p.task_id, p.index, p.result) for p in parts
        ]
        # The completer, redelivered (its worker died before sending the body),
        # gets the same parts again; any other header task gets nothing.
        again = await backend.chord_part_return(parts[1])
        assert again is not None
        assert [(p.task_id, p.index, p.result) for p in again] == [
            (p.task_id, p.index, p.result) for p in parts
        ]
        assert await backend.chord_part_return(parts[0]) is None

    async def test_chord_part_counted_once_per_task(self, backend: ResultBackend) -> None:
        group_id = _id()
        await backend.set_chord_size(group_id, 2)
        first = ChordPart(group_id, _id(), 0, states.SUCCESS, "a")
        assert await backend.chord_part_return(first) is None
        assert await backend.chord_part_return(first) is None  # redelivered header task
        done = await backend.chord_part_return(ChordPart(group_id, _id(), 1, states.SUCCESS, "b"))
        assert done is not None
        assert [p.result for p in done] == ["a", "b"]

    async def test_chord_concurrent_parts_complete_exactly_once(
        self, backend_factory: BackendFactory
    ) -> None:
        one, two = await backend_factory(), await backend_factory()
        group_id, size = _id(), 20
        one.set_chord_size_sync(group_id, size)
        parts = [ChordPart(group_id, _id(), i, states.SUCCESS, i) for i in range(size)]
        outcomes = await asyncio.gather(
            *((one if i % 2 else two).chord_part_return(p) for i, p in enumerate(parts))
        )
        completed = [o for o in outcomes if o is not None]
        assert len(completed) == 1
        assert [p.result for p in completed[0]] == list(range(size))

    # -- expiry ----------------------------------------------------------------
    async def test_results_expire(self, backend_factory: BackendFactory) -> None:
        backend = await backend_factory(expires=self.expiry_seconds)
        task_id = _id()
        await backend.store(_success(task_id))
        assert await backend.get(task_id) is not None
        end = time.monotonic() + self.expiry_seconds + DEADLINE
        while await backend.get(task_id) is not None:
            assert time.monotonic() < end, "result did not expire"
            await asyncio.sleep(0.05)
