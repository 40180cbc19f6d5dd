"""Result writes of one loop turn, sent to the backend together.

When several tasks finish in the same turn of the event loop (a batch of
outcomes from prefork children, a burst of coroutines), the backend sees one
:meth:`~celeriac.backends.base.ResultBackend.store_many` call for all of them:
one round trip on Redis instead of one per task. On an idle worker the first
result of a batch starts its writer task at once (its first step runs in the
next loop turn and takes every result queued by then); while another write is
in flight the writer starts one turn later, so that under load more results
share a write.

A caller either awaits :meth:`StoreBatcher.store`, or hands a callback to
:meth:`StoreBatcher.store_then`, which the writer calls as soon as the write
is done (no task and no loop turn of the caller's own: the worker's common
path). Either way the ack that follows stays after the write. After settling a
batch the writer awaits the ``after_write`` hook (the worker's ack flush), so
the acks of the batch go out in the same loop turn as its results' replies.

A failed batch of several results is written again one by one, so that one
result the backend refuses (it cannot be encoded, say) fails only its own
task, never its neighbours.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from functools import partial

from celeriac.backends.base import ResultBackend
from celeriac.protocol.results import ResultMeta

__all__ = ["StoreBatcher", "WriteDone"]

#: Called once a result is written (``None``) or could not be (the exception).
WriteDone = Callable[[BaseException | None], None]


class StoreBatcher:
    """Coalesces stores queued in one loop turn into one ``store_many``."""

    def __init__(self, backend: ResultBackend) -> None:
        self.backend = backend
        self.after_write: Callable[[], Awaitable[None]] | None = None
        self._batch: list[tuple[ResultMeta, WriteDone]] = []
        self._writers: set[asyncio.Task[None]] = set()

    async def store(self, meta: ResultMeta) -> None:
        """Write ``meta`` (with whatever else is written in this loop turn)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.store_then(meta, partial(_settle, future))
        await future

    def store_then(self, meta: ResultMeta, done: WriteDone) -> None:
        """Queue ``meta`` for the next write; ``done(exc)`` is called from the writer
        task once it is written (``exc`` is ``None``) or refused."""
        if not self._batch:
            if self._writers:
                # Busy (a write in flight): gather one more loop turn of results.
                asyncio.get_running_loop().call_soon(self._start_writer)
            else:
                self._start_writer()
        self._batch.append((meta, done))

    def _start_writer(self) -> None:
        # The writer leaves the set itself (a done callback would cost a loop turn).
        self._writers.add(asyncio.get_running_loop().create_task(self._write()))

    async def idle(self) -> None:
        """Wait until every write started so far (and its ``after_write``) is done."""
        while writers := [w for w in self._writers if not w.done()]:
            await asyncio.gather(*writers, return_exceptions=True)

    async def _write(self) -> None:
        try:
            await self._write_batch()
        finally:
            self._writers.discard(asyncio.current_task())

    async def _write_batch(self) -> None:
        batch, self._batch = self._batch, []
        unsettled = list(reversed(batch))  # popped from the end, in batch order
        try:
            try:
                await self.backend.store_many([meta for meta, _ in batch])
            except Exception as exc:
                if len(batch) == 1:
                    _call(unsettled.pop()[1], exc)
                while unsettled:
                    meta, done = unsettled[-1]
                    outcome: BaseException | None = None
                    try:
                        await self.backend.store(meta)
                    except Exception as one:
                        outcome = one
                    unsettled.pop()
                    _call(done, outcome)
            else:
                while unsettled:
                    _call(unsettled.pop()[1], None)
        except BaseException as exc:  # cancelled: the waiters must not hang
            while unsettled:
                _call(unsettled.pop()[1], exc)
            raise
        if self.after_write is not None:
            await self.after_write()


def _call(done: WriteDone, exc: BaseException | None) -> None:
    try:
        done(exc)
    except Exception as broken:  # one broken callback must not starve the others
        asyncio.get_running_loop().call_exception_handler(
            {"message": "result write callback failed", "exception": broken})


def _settle(future: asyncio.Future[None], exc: BaseException | None) -> None:
    if future.done():
        return
    if exc is None:
        future.set_result(None)
    elif isinstance(exc, asyncio.CancelledError):
        future.cancel()
    else:
        future.set_exception(exc)
