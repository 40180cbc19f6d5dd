"""The consumer's acks: batched per loop turn (or per fetched batch), retried,
and the acks on receipt and rejections that go out one by one.

:class:`AckSender` is mixed into :class:`~celeriac.worker.consumer.Consumer`,
which owns the state declared below.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from celeriac.errors import OperationalError
from celeriac.transports.base import Delivery, Transport

if TYPE_CHECKING:
    from celeriac.worker.request import Request

__all__ = ["AckSender"]

logger = logging.getLogger("celeriac.worker")


class AckSender:
    """Acks and rejections of the consumer's deliveries."""

    transport: Transport
    _loop: asyncio.AbstractEventLoop
    _pending_acks: list[Delivery]
    _ack_scheduled: bool
    # True while the fetch loop dispatches a batch without awaiting: acks queued
    # then go out when the batch is done (Consumer._dispatch).
    _dispatching: bool

    if TYPE_CHECKING:
        def _spawn(self, coro: Coroutine[Any, Any, None]) -> None: ...

    def _queue_ack(self, delivery: Delivery) -> None:
        """Ack ``delivery`` (its task is done) with the others of this loop turn;
        they may ride with the transport's next fetch (``ack_soon``)."""
        self._pending_acks.append(delivery)
        if not self._ack_scheduled and not self._dispatching:
            # The flush task starts two loop turns from now and takes every ack
            # queued by then: under load (a drain) that coalesces the acks of
            # several pipe reads into one write. The acks of stored results do
            # not wait for it (see _stored).
            self._ack_scheduled = True
            self._loop.call_soon(self._spawn_flush)

    def _spawn_flush(self) -> None:
        self._spawn(self.flush_acks())

    async def flush_acks(self, *, now: bool = False) -> None:
        """Send every pending ack in one call: with the transport's next fetch when
        it can carry them (within milliseconds), or at once when ``now``."""
        self._ack_scheduled = False
        await self._send_acks(now=now)

    async def _send_acks(self, *, now: bool = False) -> None:
        """:meth:`flush_acks` without clearing the flag of a scheduled flush (which
        then finds nothing to send): the hook run after each batch of result writes."""
        if not self._pending_acks:
            return
        batch, self._pending_acks = self._pending_acks, []
        for attempt in range(5):
            try:
                await (self.transport.ack(batch) if now else self.transport.ack_soon(batch))
                return
            except OperationalError as exc:
                logger.warning("ack of %d messages failed (%s); retrying", len(batch), exc)
                await asyncio.sleep(0.2 * (attempt + 1))
        logger.error("could not ack %d messages; they will be redelivered", len(batch))

    async def _ack_on_receipt(self, request: Request) -> bool:
        """acks_late off: the ack reaches the broker before the task runs, so a
        worker that dies mid-task does not run it again (at most once). ``False``
        when the broker could not be told: the task is not run here (the message
        comes back to a worker when its lease ends)."""
        for attempt in range(5):
            try:
                await self.transport.ack([request.delivery])
                return True
            except OperationalError as exc:
                logger.warning("ack of %s[%s] failed (%s); retrying",
                               request.name, request.id, exc)
                await asyncio.sleep(0.2 * (attempt + 1))
        logger.error("could not ack %s[%s] before running it (acks_late off); not run "
                     "here, it will be redelivered", request.name, request.id)
        return False

    async def _safe_reject(self, delivery: Delivery, *, requeue: bool, reason: str) -> None:
        try:
            await self.transport.reject(delivery, requeue=requeue, reason=reason)
        except OperationalError as exc:
            logger.error("could not reject a message (%s); its lease will expire and it "
                         "will be redelivered", exc)
