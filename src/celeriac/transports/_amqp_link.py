"""One live RabbitMQ connection of :class:`~.amqp.AMQPTransport` and what dies with it.

A :class:`Link` holds the aiormq connection, its channels (publisher with
confirms, admin), the consuming connection (:mod:`._amqp_consumer`), the
fetch buffer and the delivery tags handed out. When the connection breaks
the link is dropped whole (see :mod:`.amqp`): nothing of it is reused.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence

import aiormq

from celeriac.protocol.amqp import AMQP_PROPERTY_NAMES, from_amqp
from celeriac.protocol.envelope import Envelope
from celeriac.transports._amqp_consumer import ConsumerConnection
from celeriac.transports.base import Delivery

__all__ = ["AIO_ERRORS", "Link", "envelope_of", "wake"]

#: aiormq/socket failures that mean "this connection or channel is gone".
AIO_ERRORS: tuple[type[BaseException], ...] = (
    aiormq.exceptions.AMQPError,
    aiormq.exceptions.ChannelInvalidStateError,
    ConnectionError,
    OSError,
    asyncio.TimeoutError,
)


def wake(waiter: asyncio.Future[None]) -> None:
    """Resolve ``waiter`` unless it is done already (a timer's callback)."""
    if not waiter.done():
        waiter.set_result(None)


def envelope_of(message: aiormq.abc.DeliveredMessage) -> Envelope:
    """The envelope of a message aiormq delivered (basic.get, broadcast consumers)."""
    props = message.header.properties
    mapping = {name: getattr(props, name, None) for name in AMQP_PROPERTY_NAMES}
    return from_amqp(message.body, mapping, exchange=message.exchange or "",
                     routing_key=message.routing_key or "")


class Link:
    """One live connection with its channels, buffer and delivery tags."""

    def __init__(self, generation: int, connection: aiormq.abc.AbstractConnection) -> None:
        self.generation = generation
        self.connection = connection
        self.publisher: aiormq.abc.AbstractChannel | None = None
        self.admin: aiormq.abc.AbstractChannel | None = None
        self.consumer: ConsumerConnection | None = None
        self.opening: asyncio.Lock = asyncio.Lock()
        self.broken: str | None = None
        self.qos = 0
        self.consumers: dict[str, str] = {}  # queue -> consumer tag
        self.queue_of: dict[str, str] = {}  # consumer tag -> queue
        self.buffer: dict[str, deque[Delivery]] = {}
        self.unacked: set[int] = set()
        self.handed: set[int] = set()
        self.declared: set[str] = set()  # repr() of what was declared
        #: Fetches waiting for a delivery (or for the link to break).
        self.waiters: set[asyncio.Future[None]] = set()

    def wake(self) -> None:
        """Wake every waiting fetch (a delivery arrived or the link broke)."""
        for waiter in self.waiters:
            if not waiter.done():
                waiter.set_result(None)

    def ready(self, queues: Sequence[str]) -> bool:
        return any(self.buffer.get(q) for q in queues)

    def take(self, queues: Sequence[str], limit: int) -> list[Delivery]:
        out: list[Delivery] = []
        for queue in queues:
            pending = self.buffer.get(queue)
            while pending and len(out) < limit:
                delivery = pending.popleft()
                self.handed.add(delivery.tag[1])
                out.append(delivery)
        return out

    def settle(self, tags: Sequence[int]) -> None:
        for tag in tags:
            self.unacked.discard(tag)
            self.handed.discard(tag)
