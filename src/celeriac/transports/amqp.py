"""RabbitMQ broker (AMQP 0-9-1): ``amqp://``, ``amqps://`` and Celery's ``pyamqp://``.

Declarations, properties and headers are Celery's (see
:mod:`celeriac.protocol.amqp_topology`), so Celery clients and workers share
queues with celeriac. The async face runs on aiormq (the AMQP core under
aio-pika); the sync face (``delay()``) is :class:`~._amqp_sync.SyncAMQP` on
py-amqp. Both publish with confirms and return once the broker has confirmed
(except a worker's rpc replies, which go out on the consuming channel ahead of
the acks: :meth:`AMQPTransport.publish_ahead_of_acks`);
with the transport option ``confirm_window=N`` (N > 1) a sync publish is
pipelined instead (it returns once written; the confirm is awaited later, see
:mod:`._amqp_sync`).

Consuming is a push-to-pull adapter over a second connection of our own
(:mod:`._amqp_consumer`, frames parsed by :mod:`celeriac.protocol.amqp_wire`):
each delivery is appended to a buffer that :meth:`AMQPTransport.fetch` drains.
The channel's prefetch (global QoS, as Celery sets it on RabbitMQ) follows
``outstanding + limit``, where ``outstanding`` counts fetched, not yet
acknowledged deliveries: ETA messages a worker holds in memory stay unacked,
so the prefetch grows with them and never starves the worker, like Celery's
per-ETA QoS increment. Quorum queues refuse global QoS; they get a fixed per-
consumer prefetch instead.

Everything belonging to one connection (channels, buffer, delivery tags) is a
``Link``. When the connection breaks the link is dropped whole: ``fetch``
raises :class:`~celeriac.errors.OperationalError` and the next call
reconnects. Acks of deliveries from a dropped link are ignored (logged at
debug): the broker returns those messages to their queue by itself.

Rejected messages are republished, with the reason in a header, to
``celeriac.dlx`` and the queue ``celeriac.dead.<queue>``, then acked. Task
queues are never declared with ``x-dead-letter-exchange``: a queue declared
with extra arguments makes every later Celery declaration of it fail with
``PRECONDITION_FAILED``.

This module is the transport class; the work is in ``_amqp_*`` modules:
:mod:`._amqp_link` (one connection's state), :mod:`._amqp_declare`
(declarations), :mod:`._amqp_publish` (confirmed and ahead-of-ack publishing),
:mod:`._amqp_deliver` (consuming, acks, dead letters), :mod:`._amqp_broadcast`
(control/event exchanges), :mod:`._amqp_consumer` (the consuming connection)
and :mod:`._amqp_sync` (the blocking face).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import ClassVar, cast

import aiormq

from celeriac.errors import BrokerUnreachable, OperationalError
from celeriac.protocol.amqp_topology import dead_letter_queue
from celeriac.protocol.envelope import Envelope
from celeriac.transports._amqp_broadcast import consume_broadcasts, exchange_plan
from celeriac.transports._amqp_common import (
    Plan,
    connect_error,
    dead_letter_plan,
    lost_error,
    parse_amqp_url,
    plan_declarations,
)
from celeriac.transports._amqp_consumer import ConsumerConnection
from celeriac.transports._amqp_declare import declare_plan
from celeriac.transports._amqp_deliver import (
    ack_frames,
    consume_queues,
    dead_letter_envelope,
    live_tags,
    on_delivery,
    read_dead_letters,
    wait_for_deliveries,
)
from celeriac.transports._amqp_link import AIO_ERRORS, Link
from celeriac.transports._amqp_publish import confirm_window, publish_ahead, publish_confirmed
from celeriac.transports._amqp_sync import DEFAULT_CONFIRM_WINDOW, SyncAMQP
from celeriac.transports.base import Delivery, OnBroadcast, QueueSpec, Transport, TransportOptions

__all__ = ["AIO_ERRORS", "AMQPTransport"]

logger = logging.getLogger("celeriac.transports.amqp")

_SUBSCRIBE_ERRORS: tuple[type[BaseException], ...] = (OperationalError, *AIO_ERRORS)
_RETRY_DELAYS = (0.0, 0.2, 0.2)


class AMQPTransport(Transport):
    """The RabbitMQ broker (see the module docstring)."""

    schemes: ClassVar[tuple[str, ...]] = ("amqp", "amqps", "pyamqp")
    supports_delayed: ClassVar[bool] = False
    supports_priority: ClassVar[bool] = True

    def __init__(self, url: str, options: TransportOptions | None = None) -> None:
        super().__init__(url, options)
        heartbeat = int(self.options.extra.get("heartbeat", 60))
        self.params = parse_amqp_url(url, heartbeat, self.options.ssl)
        extra = self.options.extra
        # Each sync publish waits for its confirm unless ``confirm_window`` > 1
        # opts into pipelining; Celery's ``confirm_publish: True`` forces the wait
        # (docs/decisions-amqp.md).
        window = 1 if extra.get("confirm_publish") else confirm_window(
            extra.get("confirm_window", DEFAULT_CONFIRM_WINDOW))
        self.sync = SyncAMQP(
            self.params,
            connect_timeout=self.options.connect_timeout,
            confirm_timeout=float(extra.get("confirm_timeout", 30.0)),
            retry=self.options.connect_retry,
            confirm_window=window,
        )
        self._link: Link | None = None
        self._generation = 0
        self._connecting: asyncio.Lock | None = None
        self._specs: dict[str, QueueSpec] = {}
        self._quorum: set[str] = set()
        self._background: set[asyncio.Future[None]] = set()

    # -- connection ----------------------------------------------------------------
    async def connect(self) -> None:
        """Open the async connection; raise ``BrokerUnreachable`` with one clear line."""
        await self._ready_link()

    async def _ready_link(self) -> Link:
        link = self._link
        if link is not None and link.broken is None:
            return link
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            link = self._link
            if link is not None and link.broken is None:
                return link
            tls = self.params.aiormq_kwargs()  # a bad broker_use_ssl file raises here
            try:
                conn = await asyncio.wait_for(
                    aiormq.connect(self.params.aiormq_url(), **tls), self.options.connect_timeout)
            except Exception as exc:
                raise connect_error(self.params, exc) from None
            self._generation += 1
            link = Link(self._generation, conn)
            conn.closing.add_done_callback(partial(self._on_closed, link, "connection closed"))
            self._link = link
            if self._specs:
                # Transient queues vanish with a broker restart: declare them again.
                await self._declare_plan(link, plan_declarations(list(self._specs.values())))
            return link

    def _on_closed(self, link: Link, reason: str, _closing: object) -> None:
        self._lost(link, reason)

    def _lost(self, link: Link, reason: str) -> None:
        if link.broken is None:
            link.broken = reason
            logger.debug("RabbitMQ link %d to %s lost: %s", link.generation,
                         self.params.masked, reason)
        if self._link is link:
            self._link = None
        link.wake()
        if link.consumer is not None:
            link.consumer.abort()
        if not link.connection.is_closed:
            closing = asyncio.ensure_future(self._close_quietly(link))
            self._background.add(closing)
            closing.add_done_callback(self._background.discard)

    @staticmethod
    async def _close_quietly(link: Link) -> None:
        if link.consumer is not None:
            await link.consumer.close()
        with contextlib.suppress(Exception):
            await link.connection.close()

    def _broken(self, link: Link, exc: BaseException) -> OperationalError:
        self._lost(link, f"{exc}".strip() or type(exc).__name__)
        return lost_error(self.params, exc)

    async def _channel(self, link: Link, role: str, *, confirms: bool = False
                       ) -> aiormq.abc.AbstractChannel:
        channel: aiormq.abc.AbstractChannel | None = getattr(link, role)
        if channel is None or channel.is_closed:
            try:
                channel = await link.connection.channel(publisher_confirms=confirms)
            except RuntimeError as exc:
                # aiormq reports a connection that closed while the channel was being
                # opened as RuntimeError; callers handle it as the connection lost.
                if not link.connection.is_closed:
                    raise
                raise ConnectionError(f"{exc}") from None
            setattr(link, role, channel)
        return channel

    async def _consumer(self, link: Link) -> ConsumerConnection:
        """The link's consuming connection (our own reader, see ``_amqp_consumer``)."""
        async with link.opening:
            if link.consumer is None:
                if link.broken is not None:
                    raise lost_error(self.params, link.broken)
                consumer = ConsumerConnection(self.params, partial(on_delivery, link),
                                              partial(self._on_consumer_lost, link))
                link.consumer = consumer
                await consumer.open(self.options.connect_timeout)
            elif link.consumer.lost is not None:
                raise link.consumer.lost
            return link.consumer

    def _on_consumer_lost(self, link: Link, reason: str) -> None:
        # Delivery tags die with the consuming channel: the link breaks with it.
        self._lost(link, f"consumer: {reason}")

    async def _with_retry(self, op: Callable[[Link], Awaitable[None]]) -> None:
        delays = _RETRY_DELAYS if self.options.connect_retry else (0.0,)
        last: OperationalError | None = None
        for delay in delays:
            if delay:
                await asyncio.sleep(delay)
            try:
                link = await self._ready_link()
            except BrokerUnreachable as exc:
                if "refused login" in str(exc):
                    raise
                last = exc
                continue
            try:
                await op(link)
                return
            except aiormq.exceptions.ChannelClosed as exc:
                raise OperationalError(f"RabbitMQ at {self.params.masked}: {exc}") from None
            except OperationalError:
                raise  # refused by the broker (a ConnectionError subclass, not a lost link)
            except AIO_ERRORS as exc:
                last = self._broken(link, exc)
        assert last is not None
        raise last

    async def close(self) -> None:
        """Close the async connection; idempotent."""
        link, self._link = self._link, None
        if link is not None:
            link.broken = link.broken or "closed by the client"
            link.wake()
            await self._close_quietly(link)

    def close_sync(self) -> None:
        """Close every sync connection; idempotent."""
        self.sync.close_all()

    # -- topology ------------------------------------------------------------------
    def _remember(self, queues: Sequence[QueueSpec]) -> Plan:
        plan = plan_declarations(queues)
        for q in queues:
            self._specs[q.name] = q
            if q.arguments.get("x-queue-type") == "quorum":
                self._quorum.add(q.name)
        return plan

    async def declare(self, queues: Sequence[QueueSpec]) -> None:
        """Declare exchanges, queues and bindings as Celery does (idempotent)."""
        plan = self._remember(queues)

        async def run(link: Link) -> None:
            await self._declare_plan(link, plan)

        await self._with_retry(run)

    def declare_sync(self, queues: Sequence[QueueSpec]) -> None:
        """Blocking :meth:`declare` on this thread's sync connection."""
        self.sync.declare(self._remember(queues))

    async def _declare_plan(self, link: Link, plan: Plan) -> None:
        await declare_plan(link, plan, partial(self._channel, link, "admin"))

    # -- publishing ------------------------------------------------------------------
    async def _publish_on(self, link: Link, envelope: Envelope) -> None:
        await self._publish_all(link, [envelope])

    async def _publish_all(self, link: Link, envelopes: Sequence[Envelope]) -> None:
        """Publish on the link's confirm channel in one write, then wait for every
        confirm (:func:`._amqp_publish.publish_confirmed`)."""
        channel = cast(aiormq.Channel, await self._channel(link, "publisher", confirms=True))
        frame_max = int(getattr(link.connection.connection_tune, "frame_max", 0) or 131072)
        await publish_confirmed(channel, frame_max, envelopes, self.params.masked)

    async def publish(self, envelope: Envelope, *, eta: float | None = None) -> None:
        """Publish with a confirm (``eta`` is carried in the headers; the worker holds it)."""
        await self._with_retry(lambda link: self._publish_on(link, envelope))

    async def publish_many(self, items: Sequence[tuple[Envelope, float | None]]) -> None:
        """Publish all, pipelined: every confirm is awaited, all in one wait."""
        async def run(link: Link) -> None:
            # One write, in list order: a batch keeps its FIFO order in the queue.
            await self._publish_all(link, [env for env, _ in items])

        await self._with_retry(run)

    def publish_ahead_of_acks(self, envelopes: Sequence[Envelope]) -> bool:
        """Publish ``envelopes`` on the consuming channel, unconfirmed, in one write.

        AMQP handles a channel's frames in order, so the broker routes these
        messages before it sees any ack written after this call: for a reply
        (transient, so a confirm would not make it outlive the broker either)
        that is what "the result is stored before the task is acked" needs,
        without a confirm round trip. ``False`` (nothing written) when there is
        no open consuming connection or the broker announced a resource alarm
        (a connection that publishes then stops being read, acks included):
        the caller publishes with confirms instead.
        """
        link = self._link
        consumer = link.consumer if link is not None and link.broken is None else None
        return publish_ahead(consumer, envelopes)

    def publish_sync(self, envelope: Envelope, *, eta: float | None = None) -> None:
        """Blocking publish over py-amqp (no event loop involved).

        Returns once the broker has confirmed the message. With the transport
        option ``confirm_window=N`` (N > 1) it returns once the frame is
        written; the confirm is then awaited by a later publish,
        :meth:`flush_sync`, the end of the task that published,
        :meth:`close_sync` or interpreter exit.
        """
        self.sync.publish(envelope)

    def flush_sync(self) -> None:
        """Wait until every message this thread published is confirmed by the broker."""
        self.sync.flush()

    def publish_many_sync(self, items: Sequence[tuple[Envelope, float | None]]) -> None:
        """Blocking :meth:`publish_many`: every frame written, then one wait for the confirms."""
        self.sync.publish_many([envelope for envelope, _ in items])

    # -- consuming -------------------------------------------------------------------
    async def fetch(self, queues: Sequence[str], limit: int, timeout: float) -> list[Delivery]:
        """Up to ``limit`` delivered messages; waits up to ``timeout`` for the first."""
        link = await self._ready_link()
        try:
            consumer = await self._consumer(link)
            quorum = any(q in self._quorum for q in queues)
            await consume_queues(link, consumer, queues, limit, quorum)
        except AIO_ERRORS as exc:
            raise self._broken(link, exc) from None
        await wait_for_deliveries(link, queues, timeout, self.params)
        if link.broken is not None:
            raise lost_error(self.params, link.broken)
        return link.take(queues, limit)

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        """Acknowledge: one ``multiple`` ack for the longest run of the oldest unacked
        tags that are all in the batch, one ack each for the rest.

        All frames go to the consuming connection's socket in one write.
        """
        link = self._link
        tags = live_tags(link, deliveries, "ack")
        if link is None or not tags:
            return
        try:
            consumer = await self._consumer(link)
            consumer.ack(ack_frames(link, tags))
        except AIO_ERRORS as exc:
            self._broken(link, exc)
            logger.debug("ack failed, the broker will redeliver: %s", exc)
        finally:
            link.settle(tags)

    async def reject(self, delivery: Delivery, *, requeue: bool, reason: str = "") -> None:
        """Requeue, or republish to the dead-letter queue with ``reason`` and ack."""
        link = self._link
        tags = live_tags(link, [delivery], "reject")
        if link is None or not tags:
            return
        try:
            if not requeue:
                await self._dead_letter(link, delivery, reason or "rejected")
            consumer = await self._consumer(link)
            if requeue:
                consumer.reject(tags[0], requeue=True)
            else:
                consumer.ack([(tags[0], False)])
        except AIO_ERRORS as exc:
            self._broken(link, exc)
            logger.debug("reject failed, the broker will redeliver: %s", exc)
        finally:
            link.settle(tags)

    async def _dead_letter(self, link: Link, delivery: Delivery, reason: str) -> None:
        await self._declare_plan(link, dead_letter_plan(delivery.queue))
        await self._publish_on(link, dead_letter_envelope(delivery, reason))
        logger.warning("message from queue %r set aside in %r: %s", delivery.queue,
                       dead_letter_queue(delivery.queue), reason)

    # -- inspection ------------------------------------------------------------------
    async def _passive(self, queue: str) -> int:
        link = await self._ready_link()
        channel = await link.connection.channel()
        try:
            ok = await channel.queue_declare(queue, passive=True)
            return int(ok.message_count or 0)
        except aiormq.exceptions.ChannelNotFoundEntity:
            return 0
        except AIO_ERRORS as exc:
            raise self._broken(link, exc) from None
        finally:
            if not channel.is_closed:
                await channel.close()

    async def queue_length(self, queue: str) -> int:
        """Ready messages in ``queue`` (not the ones delivered and unacked)."""
        return await self._passive(queue)

    def queue_length_sync(self, queue: str) -> int:
        """Blocking :meth:`queue_length`."""
        return self.sync.queue_length(queue)

    async def purge(self, queue: str) -> int:
        """Drop the ready messages of ``queue``; return how many."""
        link = await self._ready_link()
        try:
            ok = await (await self._channel(link, "admin")).queue_purge(queue)
        except aiormq.exceptions.ChannelNotFoundEntity:
            return 0
        except AIO_ERRORS as exc:
            raise self._broken(link, exc) from None
        return int(ok.message_count or 0)

    async def delete_queue(self, queue: QueueSpec) -> None:
        """Delete ``queue`` (and its bindings and messages); gone already is fine."""
        link = await self._ready_link()
        try:
            await (await self._channel(link, "admin")).queue_delete(queue.name)
        except aiormq.exceptions.ChannelNotFoundEntity:
            return
        except AIO_ERRORS as exc:
            raise self._broken(link, exc) from None

    async def dead_letters(self, queue: str) -> list[tuple[Envelope, str]]:
        """Messages set aside for ``queue`` with their reasons (they stay there)."""
        link = await self._ready_link()
        channel = await link.connection.channel()
        return await read_dead_letters(channel, queue)

    # -- broadcast ---------------------------------------------------------------------
    async def _broadcast_exchange(self, link: Link, exchange: str) -> None:
        await self._declare_plan(link, exchange_plan(exchange))

    async def broadcast(self, exchange: str, envelope: Envelope) -> None:
        """Publish to ``exchange`` (fanout/topic), declared as Celery declares it."""
        async def run(link: Link) -> None:
            await self._broadcast_exchange(link, exchange)
            await self._publish_on(link, envelope.with_route(exchange, envelope.routing_key))

        await self._with_retry(run)

    async def publish_reply(self, envelope: Envelope) -> None:
        """Publish a control reply, declaring its (reply) exchange as Celery does first."""
        async def run(link: Link) -> None:
            await self._broadcast_exchange(link, envelope.exchange)
            await self._publish_on(link, envelope)

        await self._with_retry(run)

    def broadcast_sync(self, exchange: str, envelope: Envelope) -> None:
        """Blocking :meth:`broadcast` over the sync publisher (confirmed)."""
        self.sync.declare(exchange_plan(exchange))
        self.sync.publish(envelope.with_route(exchange, envelope.routing_key))

    async def subscribe(self, exchange: str, binding_keys: Sequence[str],
                        handler: OnBroadcast) -> None:
        """Feed ``handler`` from a private exclusive queue bound with ``binding_keys``;
        resubscribes after connection loss; runs until cancelled."""
        backoff = 0.1
        while True:
            try:
                await self._subscribe_once(exchange, binding_keys, handler)
            except _SUBSCRIBE_ERRORS as exc:
                logger.debug("subscription to %r lost (%s); retrying in %.1fs",
                             exchange, exc, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    async def _subscribe_once(self, exchange: str, binding_keys: Sequence[str],
                              handler: OnBroadcast) -> None:
        link = await self._ready_link()
        await self._broadcast_exchange(link, exchange)
        channel = await link.connection.channel()
        await consume_broadcasts(channel, exchange, binding_keys, handler)
