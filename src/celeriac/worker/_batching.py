"""Result writes of one loop turn, sent to the backend together.

When several tasks finish in the same turn of the event loop (a batch of
outcomes from prefork children, a burst of coroutines), each awaits its own
:meth:`StoreBatcher.store`, but the backend sees one
:meth:`~celeriac.backends.base.ResultBackend.store_many` call: one round trip
on Redis instead of one per task. Each caller still returns only once its
result is written, so the ack that follows stays after the write.

A failed batch of several results is written again one by one, so that one
result the backend refuses (it cannot be encoded, say) fails only its own
task, never its neighbours.
"""

from __future__ import annotations

import asyncio

from celeriac.backends.base import ResultBackend
from celeriac.protocol.results import ResultMeta

__all__ = ["StoreBatcher"]


class StoreBatcher:
    """Coalesces :meth:`store` calls made in one loop turn into one ``store_many``."""

    def __init__(self, backend: ResultBackend) -> None:
        self.backend = backend
        self._batch: list[tuple[ResultMeta, asyncio.Future[None]]] = []
        self._writers: set[asyncio.Task[None]] = set()

    async def store(self, meta: ResultMeta) -> None:
        """Write ``meta`` (with whatever else is written in this loop turn)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        if not self._batch:
            loop.call_soon(self._flush)
        self._batch.append((meta, future))
        await future

    def _flush(self) -> None:
        batch, self._batch = self._batch, []
        writer = asyncio.ensure_future(self._write(batch))
        self._writers.add(writer)
        writer.add_done_callback(self._writers.discard)

    async def _write(self, batch: list[tuple[ResultMeta, asyncio.Future[None]]]) -> None:
        try:
            await self.backend.store_many([meta for meta, _ in batch])
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0][1], exc)
                return
            for meta, future in batch:
                try:
                    await self.backend.store(meta)
                except Exception as one:
                    _settle(future, one)
                else:
                    _settle(future, None)
            return
        except BaseException as exc:  # cancelled: the waiters must not hang
            for _, future in batch:
                _settle(future, exc)
            raise
        for _, future in batch:
            _settle(future, None)


def _settle(future: asyncio.Future[None], exc: BaseException | None) -> None:
    if future.done():
        return
    if exc is None:
        future.set_result(None)
    elif isinstance(exc, asyncio.CancelledError):
        future.cancel()
    else:
        future.set_exception(exc)
