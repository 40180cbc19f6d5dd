"""The broker interface every transport implements.

A transport moves :class:`~celeriac.protocol.envelope.Envelope` values between
producers and workers and never looks inside their bodies. It has two faces
over one implementation of its logic:

* the **async** face (``publish``, ``fetch``, ``ack`` ...) used by the worker and
  by async clients (``adelay``), and
* the **sync** face (``publish_sync``, ``queue_length_sync``) used by plain
  ``delay()``: a direct call over the library's synchronous client, never a hop
  through an event-loop thread (see DESIGN.md section 2.3).

Delivery is at-least-once: a fetched message is leased to the fetching worker
until it is acked, rejected or its lease runs out (the worker died), after
which any live worker's :meth:`Transport.maintain` loop returns it to its queue.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from celeriac.config.urls import mask_url
from celeriac.protocol.batch import EnvelopeBatch
from celeriac.protocol.envelope import Envelope

__all__ = [
    "Binding",
    "Delivery",
    "QueueSpec",
    "Transport",
    "TransportOptions",
    "raise_if_cancelled",
]


def raise_if_cancelled() -> None:
    """Raise ``CancelledError`` if the running task has been asked to stop.

    On Python 3.11, ``asyncio.wait_for`` (ours, and redis-py's around every
    command) can swallow a cancellation that lands as the awaited thing
    finishes: the call returns normally, and a ``while True`` loop around it
    would run forever after ``task.cancel()`` (a worker's warm shutdown then
    hangs). Long-lived and waiting loops call this once per turn.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


@dataclass(frozen=True, slots=True)
class QueueSpec:
    """A queue to declare, with how it is bound (Celery's ``Queue`` reduced to facts).

    ``exchange_type`` is ``direct``, ``topic`` or ``fanout``; ``max_priority``
    asks for a priority queue (``x-max-priority`` on AMQP); ``arguments`` are
    passed to brokers that understand them (``x-queue-type`` for quorum queues).
    """

    name: str
    exchange: str = ""
    exchange_type: str = "direct"
    routing_key: str = ""
    durable: bool = True
    auto_delete: bool = False
    exclusive: bool = False
    max_priority: int | None = None
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Binding:
    """Exchange -> queue routing fact used by the virtual exchange emulation."""

    exchange: str
    routing_key: str
    queue: str
    exchange_type: str = "direct"


@dataclass(frozen=True, slots=True)
class TransportOptions:
    """Explicit transport knobs (filled from settings by the app; never read settings).

    ``lease_seconds`` bounds how long a message fetched by a worker that died
    stays invisible before it is redelivered; ``poll_interval`` is the longest
    sleep of polling transports; ``connect_retry`` and friends steer reconnects.
    """

    lease_seconds: float = 30.0
    poll_interval: float = 0.5
    connect_timeout: float = 5.0
    connect_retry: bool = True
    connect_max_retries: int | None = None
    prefetch_hint: int = 8
    #: ``broker_use_ssl``: True, a dict of ssl options, or False (TLS from the URL only).
    ssl: bool | dict[str, Any] = False
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Delivery:
    """One fetched message, leased to the fetching consumer until acked.

    ``tag`` is the transport's handle for :meth:`Transport.ack` and
    :meth:`Transport.reject`; ``redelivered`` is true when the message was
    fetched before by a consumer that did not ack it.
    """

    envelope: Envelope
    queue: str
    tag: Any
    redelivered: bool = False


OnBroadcast = Callable[[Envelope], Awaitable[None] | None]


class Transport(abc.ABC):
    """Base class of brokers. Subclasses live one per module in this package.

    Construction does no I/O; connections open lazily on first use (sync face)
    or in :meth:`connect` (async face). ``supports_delayed`` says the broker can
    hold a message until its ETA itself (:meth:`publish` with ``eta``, and
    :meth:`defer` for ETA messages that arrived on a plain queue); otherwise the
    worker keeps such messages in memory, unacked, until they are due.
    """

    #: URL schemes this class serves (``redis``, ``rediss`` ...).
    schemes: ClassVar[tuple[str, ...]] = ()
    #: The broker can hold delayed (ETA) messages itself.
    supports_delayed: ClassVar[bool] = False
    #: Messages carry a priority the broker orders by.
    supports_priority: ClassVar[bool] = False
    #: The broker serves *lower* numbers first (kombu's Redis); producers invert
    #: celeriac's priority for it (see ``celeriac.protocol.priority``).
    priority_low_first: ClassVar[bool] = False

    def __init__(self, url: str, options: TransportOptions | None = None) -> None:
        self.url = url
        self.options = options or TransportOptions()

    # -- lifecycle ---------------------------------------------------------
    async def connect(self) -> None:
        """Open the async connection(s); raise ``BrokerUnreachable`` if impossible."""

    async def close(self) -> None:
        """Close async connections; idempotent."""

    def close_sync(self) -> None:
        """Close the sync connection(s); idempotent."""

    # -- topology ----------------------------------------------------------
    async def declare(self, queues: Sequence[QueueSpec]) -> None:
        """Create queues, exchanges and bindings if missing (idempotent)."""

    def declare_sync(self, queues: Sequence[QueueSpec]) -> None:
        """Sync face of :meth:`declare`, used before the first sync publish."""

    # -- publishing --------------------------------------------------------
    @abc.abstractmethod
    async def publish(self, envelope: Envelope, *, eta: float | None = None) -> None:
        """Send one envelope to ``envelope.exchange``/``envelope.routing_key``.

        ``eta`` (unix time) asks a transport with ``supports_delayed`` to hold
        the message until then. Returns once the broker has accepted it.
        """

    async def publish_many(self, items: Sequence[tuple[Envelope, float | None]]) -> None:
        """Send many envelopes with as few round trips as the broker allows."""
        for envelope, eta in items:
            await self.publish(envelope, eta=eta)

    @abc.abstractmethod
    def publish_sync(self, envelope: Envelope, *, eta: float | None = None) -> None:
        """Blocking :meth:`publish` over the library's synchronous client."""

    def publish_many_sync(self, items: Sequence[tuple[Envelope, float | None]]) -> None:
        """Blocking :meth:`publish_many`."""
        for envelope, eta in items:
            self.publish_sync(envelope, eta=eta)

    async def publish_batch(self, batch: EnvelopeBatch, *, eta: float | None = None) -> None:
        """Send every envelope of ``batch`` (bulk sends); by default as :meth:`publish_many`.

        Transports that can encode a batch faster than envelope by envelope
        (Redis: kombu's element from one template) override this.
        """
        await self.publish_many([(envelope, eta) for envelope in batch.envelopes()])

    def publish_batch_sync(self, batch: EnvelopeBatch, *, eta: float | None = None) -> None:
        """Blocking :meth:`publish_batch`."""
        self.publish_many_sync([(envelope, eta) for envelope in batch.envelopes()])

    # -- consuming ---------------------------------------------------------
    @abc.abstractmethod
    async def fetch(self, queues: Sequence[str], limit: int, timeout: float) -> list[Delivery]:
        """Take up to ``limit`` messages from ``queues`` in one round trip if possible.

        Waits at most ``timeout`` seconds when none is ready, then returns ``[]``.
        Queues earlier in the list and higher-priority messages come first.
        """

    async def stop_fetching(self) -> None:
        """The consumer takes no more messages (warm shutdown begins); a transport
        that hands messages to idle consumers unprompted stops that here."""

    @abc.abstractmethod
    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        """Acknowledge finished deliveries (batched where the broker allows)."""

    async def ack_soon(self, deliveries: Sequence[Delivery]) -> None:
        """Acknowledge ``deliveries`` within a few milliseconds: a transport may send
        them with its next fetch instead of a round trip of their own. Default:
        :meth:`ack` at once. :meth:`ack` and closing send any still pending."""
        await self.ack(deliveries)

    @abc.abstractmethod
    async def reject(self, delivery: Delivery, *, requeue: bool, reason: str = "") -> None:
        """Give a delivery back (``requeue``) or set it aside in the dead-letter place."""

    async def defer(self, delivery: Delivery, eta: float) -> None:
        """Move a fetched ETA message into the broker's delayed store, atomically.

        Only called when ``supports_delayed``; the delivery counts as acked after.
        """
        raise TypeError(f"{type(self).__name__} cannot hold delayed messages")

    async def maintain(self) -> None:
        """Run forever in the worker: renew leases, restore dead workers' messages,
        move due delayed messages. Cancelled on shutdown. Default: nothing to do."""

    # -- inspection --------------------------------------------------------
    @abc.abstractmethod
    async def queue_length(self, queue: str) -> int:
        """How many messages wait in ``queue`` (ready, not in flight or delayed)."""

    def queue_length_sync(self, queue: str) -> int:
        """Sync face of :meth:`queue_length`."""
        raise TypeError(f"{type(self).__name__} has no sync queue_length")

    @abc.abstractmethod
    async def purge(self, queue: str) -> int:
        """Delete the ready messages of ``queue``; return how many."""

    async def dead_letters(self, queue: str) -> list[tuple[Envelope, str]]:
        """Messages set aside for ``queue`` with their reasons (for tests and tools)."""
        return []

    async def delayed(self, queues: Sequence[str], limit: int) -> list[tuple[str, float, Envelope]]:
        """ETA messages the broker holds for ``queues`` (``supports_delayed``), earliest
        due first, as ``(queue, due unix time, envelope)``: at most ``limit``, from a
        bounded read (``inspect scheduled``). Default: none held."""
        return []

    async def delete_queue(self, queue: QueueSpec) -> None:
        """Remove ``queue``'s bindings and the messages in it (a client's private
        reply queue once its calls ended). Default: nothing to remove."""

    # -- broadcast (control and events) -----------------------------------
    async def broadcast(self, exchange: str, envelope: Envelope) -> None:
        """Publish to every current subscriber of a fanout/topic ``exchange``."""
        raise TypeError(f"{type(self).__name__} has no broadcast support")

    def broadcast_sync(self, exchange: str, envelope: Envelope) -> None:
        """Blocking :meth:`broadcast` over the sync client (``task-sent`` events)."""
        raise TypeError(f"{type(self).__name__} has no sync broadcast support")

    async def subscribe(
        self, exchange: str, binding_keys: Sequence[str], handler: OnBroadcast
    ) -> None:
        """Deliver broadcasts on ``exchange`` matching ``binding_keys`` to ``handler``
        until cancelled (runs forever; the caller owns the task)."""
        raise TypeError(f"{type(self).__name__} has no broadcast support")

    async def publish_reply(self, envelope: Envelope) -> None:
        """Send a control reply to a client's private queue via ``envelope.exchange``;
        a reply no queue is bound for (its client left) may be dropped."""
        await self.publish(envelope)

    def describe(self) -> str:
        """The URL with any password masked, for banners and error messages."""
        return mask_url(self.url)
