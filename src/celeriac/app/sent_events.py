"""``task-sent`` events, published by the client after each task message when
``task_send_sent_event`` is on (as a Celery client does; one event per message).

They go to the broker's event exchange over the same transport as the task
(sync face for ``delay()``, async face for ``adelay()``). A failure to publish
an event is logged and never fails the send: the task itself was accepted.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from celeriac.protocol.clock import LamportClock
from celeriac.protocol.envelope import Envelope
from celeriac.protocol.events import event_envelope, local_utcoffset, task_event, task_sent_fields
from celeriac.protocol.keys import EVENT_EXCHANGE

if TYPE_CHECKING:
    from celeriac.app.producer import OutgoingTask
    from celeriac.transports.base import Transport

__all__ = ["SentEvents"]

logger = logging.getLogger("celeriac.app.producer")


class SentEvents:
    """Builds and publishes the ``task-sent`` events of one client process."""

    def __init__(self, hostname: str, serializer: str,
                 clock: LamportClock | None = None) -> None:
        self.hostname = hostname
        self.serializer = serializer
        self.pid = os.getpid()
        self.utcoffset = local_utcoffset()
        self.clock = clock if clock is not None else LamportClock()  # the app's

    def envelopes(self, outs: Sequence[OutgoingTask]) -> list[Envelope]:
        """One event envelope per sent message."""
        out: list[Envelope] = []
        for item in outs:
            fields = task_sent_fields(item.message, queue=item.route.queue,
                                      exchange=item.route.exchange,
                                      routing_key=item.route.routing_key)
            event = task_event("task-sent", hostname=self.hostname, pid=self.pid,
                               clock=self.clock.forward(), utcoffset=self.utcoffset, **fields)
            out.append(event_envelope(event, hostname=self.hostname,
                                      serializer=self.serializer))
        return out

    def send_sync(self, transport: Transport, outs: Sequence[OutgoingTask]) -> None:
        """Publish the events of ``outs`` over the transport's sync face."""
        try:
            for envelope in self.envelopes(outs):
                transport.broadcast_sync(EVENT_EXCHANGE, envelope)
        except Exception as exc:
            logger.warning("task-sent event not published: %s", exc)

    async def send_async(self, transport: Transport, outs: Sequence[OutgoingTask]) -> None:
        """Publish the events of ``outs`` over the transport's async face."""
        try:
            for envelope in self.envelopes(outs):
                await transport.broadcast(EVENT_EXCHANGE, envelope)
        except Exception as exc:
            logger.warning("task-sent event not published: %s", exc)
