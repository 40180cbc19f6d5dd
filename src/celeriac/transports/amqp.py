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
``_Link``. When the connection breaks the link is dropped whole: ``fetch``
raises :class:`~celeriac.errors.OperationalError` and the next call
reconnects. Acks of deliveries from a dropped link are ignored (logged at
debug): the broker returns those messages to their queue by itself.

Rejected messages are republished, with the reason in a header, to
``celeriac.dlx`` and the queue ``celeriac.dead.<queue>``, then acked. Task
queues are never declared with ``x-dead-letter-exchange``: a queue declared
with extra arguments makes every later Celery declaration of it fail with
``PRECONDITION_FAILED``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from functools import partial
from typing import Any, ClassVar, cast

import aiormq
from aiormq.abc import ChannelFrame
from pamqp import commands as spec

from celeriac.errors import BrokerUnreachable, ConfigurationError, OperationalError
from celeriac.protocol.amqp import AMQP_PROPERTY_NAMES, from_amqp, to_amqp_properties
from celeriac.protocol.amqp_frames import encode_properties, publish_frames
from celeriac.protocol.amqp_topology import (
    DEAD_LETTER_EXCHANGE,
    DEAD_LETTER_REASON_HEADER,
    DEATH_HEADER,
    broadcast_queue,
    dead_letter_queue,
    exchange_facts,
)
from celeriac.protocol.amqp_wire import Delivered
from celeriac.protocol.envelope import Envelope
from celeriac.transports._amqp_common import (
    DeclareExchange,
    DeclareQueue,
    Plan,
    connect_error,
    dead_letter_plan,
    lost_error,
    parse_amqp_url,
    plan_declarations,
)
from celeriac.transports._amqp_consumer import CHANNEL, ConsumerConnection
from celeriac.transports._amqp_sync import DEFAULT_CONFIRM_WINDOW, SyncAMQP
from celeriac.transports.base import Delivery, OnBroadcast, QueueSpec, Transport, TransportOptions

__all__ = ["AMQPTransport"]

logger = logging.getLogger("celeriac.transports.amqp")

#: aiormq/socket failures that mean "this connection or channel is gone".
AIO_ERRORS: tuple[type[BaseException], ...] = (
    aiormq.exceptions.AMQPError,
    aiormq.exceptions.ChannelInvalidStateError,
    ConnectionError,
    OSError,
    asyncio.TimeoutError,
)
_SUBSCRIBE_ERRORS: tuple[type[BaseException], ...] = (OperationalError, *AIO_ERRORS)
_RETRY_DELAYS = (0.0, 0.2, 0.2)


async def _declare_exchange(ex: DeclareExchange, channel: aiormq.abc.AbstractChannel) -> None:
    await channel.exchange_declare(ex.name, exchange_type=ex.type, durable=ex.durable,
                                   auto_delete=ex.auto_delete)


async def _declare_queue(q: DeclareQueue, channel: aiormq.abc.AbstractChannel) -> None:
    await channel.queue_declare(q.name, durable=q.durable, exclusive=q.exclusive,
                                auto_delete=q.auto_delete, arguments=q.arguments or None)


def _confirm_window(value: Any) -> int:
    """The ``confirm_window`` transport option: a whole number >= 1."""
    try:
        window = 0 if isinstance(value, bool) else int(value)
    except (TypeError, ValueError):
        window = 0
    if window < 1:
        raise ConfigurationError(
            f"broker_transport_options confirm_window={value!r} is not a whole number >= 1 "
            "(1: each delay() waits for its confirm; N > 1: up to N unconfirmed)")
    return window


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _envelope(message: aiormq.abc.DeliveredMessage) -> Envelope:
    props = message.header.properties
    mapping = {name: getattr(props, name, None) for name in AMQP_PROPERTY_NAMES}
    return from_amqp(message.body, mapping, exchange=message.exchange or "",
                     routing_key=message.routing_key or "")


class _Link:
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


class AMQPTransport(Transport):
    """The RabbitMQ broker (see the module docstring)."""

    schemes: ClassVar[tuple[str, ...]] = ("amqp", "amqps", "pyamqp")
    supports_delayed: ClassVar[bool] = False
    supports_priority: ClassVar[bool] = True

    def __init__(self, url: str, options: TransportOptions | None = None) -> None:
        super().__init__(url, options)
        heartbeat = int(self.options.extra.get("heartbeat", 60))
        self.params = parse_amqp_url(url, heartbeat)
        extra = self.options.extra
        # Each sync publish waits for its confirm unless ``confirm_window`` > 1
        # opts into pipelining; Celery's ``confirm_publish: True`` forces the wait
        # (docs/decisions-amqp.md).
        window = 1 if extra.get("confirm_publish") else _confirm_window(
            extra.get("confirm_window", DEFAULT_CONFIRM_WINDOW))
        self.sync = SyncAMQP(
            self.params,
            connect_timeout=self.options.connect_timeout,
            confirm_timeout=float(extra.get("confirm_timeout", 30.0)),
            retry=self.options.connect_retry,
            confirm_window=window,
        )
        self._link: _Link | None = None
        self._generation = 0
        self._connecting: asyncio.Lock | None = None
        self._specs: dict[str, QueueSpec] = {}
        self._quorum: set[str] = set()
        self._background: set[asyncio.Future[None]] = set()

    # -- connection ----------------------------------------------------------------
    async def connect(self) -> None:
        """Open the async connection; raise ``BrokerUnreachable`` with one clear line."""
        await self._ready_link()

    async def _ready_link(self) -> _Link:
        link = self._link
        if link is not None and link.broken is None:
            return link
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            link = self._link
            if link is not None and link.broken is None:
                return link
            try:
                conn = await asyncio.wait_for(
                    aiormq.connect(self.params.aiormq_url()), self.options.connect_timeout)
            except Exception as exc:
                raise connect_error(self.params, exc) from None
            self._generation += 1
            link = _Link(self._generation, conn)
            conn.closing.add_done_callback(partial(self._on_closed, link, "connection closed"))
            self._link = link
            if self._specs:
                # Transient queues vanish with a broker restart: declare them again.
                await self._declare_plan(link, plan_declarations(list(self._specs.values())))
            return link

    def _on_closed(self, link: _Link, reason: str, _closing: object) -> None:
        self._lost(link, reason)

    def _lost(self, link: _Link, reason: str) -> None:
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
    async def _close_quietly(link: _Link) -> None:
        if link.consumer is not None:
            await link.consumer.close()
        with contextlib.suppress(Exception):
            await link.connection.close()

    def _broken(self, link: _Link, exc: BaseException) -> OperationalError:
        self._lost(link, f"{exc}".strip() or type(exc).__name__)
        return lost_error(self.params, exc)

    async def _channel(self, link: _Link, role: str, *, confirms: bool = False
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

    async def _consumer(self, link: _Link) -> ConsumerConnection:
        """The link's consuming connection (our own reader, see ``_amqp_consumer``)."""
        async with link.opening:
            if link.consumer is None:
                if link.broken is not None:
                    raise lost_error(self.params, link.broken)
                consumer = ConsumerConnection(self.params, partial(self._on_delivery, link),
                                              partial(self._on_consumer_lost, link))
                link.consumer = consumer
                await consumer.open(self.options.connect_timeout)
            elif link.consumer.lost is not None:
                raise link.consumer.lost
            return link.consumer

    def _on_consumer_lost(self, link: _Link, reason: str) -> None:
        # Delivery tags die with the consuming channel: the link breaks with it.
        self._lost(link, f"consumer: {reason}")

    async def _with_retry(self, op: Callable[[_Link], Awaitable[None]]) -> None:
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

        async def run(link: _Link) -> None:
            await self._declare_plan(link, plan)

        await self._with_retry(run)

    def declare_sync(self, queues: Sequence[QueueSpec]) -> None:
        """Blocking :meth:`declare` on this thread's sync connection."""
        self.sync.declare(self._remember(queues))

    async def _declare_plan(self, link: _Link, plan: Plan) -> None:
        for ex in plan.exchanges:
            if repr(ex) not in link.declared:
                await self._tolerant(link, ex.name, partial(_declare_exchange, ex))
                link.declared.add(repr(ex))
        for q in plan.queues:
            if repr(q) in link.declared:
                continue
            await self._tolerant(link, q.name, partial(_declare_queue, q))
            admin = await self._channel(link, "admin")
            for exchange, key in q.bindings:
                await admin.queue_bind(q.name, exchange, routing_key=key)
            link.declared.add(repr(q))

    async def _tolerant(self, link: _Link, name: str,
                        op: Callable[[aiormq.abc.AbstractChannel], Awaitable[None]]) -> None:
        try:
            await op(await self._channel(link, "admin"))
        except aiormq.exceptions.ChannelPreconditionFailed as exc:
            logger.warning("RabbitMQ: %r exists with different flags or arguments; "
                           "using it as it is (%s)", name, exc)

    # -- publishing ------------------------------------------------------------------
    async def _publish_on(self, link: _Link, envelope: Envelope) -> None:
        await self._publish_all(link, [envelope])

    async def _publish_all(self, link: _Link, envelopes: Sequence[Envelope]) -> None:
        """Publish on the confirm channel in one write, then wait for every confirm.

        The frames are encoded by :mod:`celeriac.protocol.amqp_frames` and
        handed to aiormq's writer as one chunk, with a confirmation future per
        delivery tag registered where aiormq resolves them (its channel's
        ``confirmations``, under its publish lock): one socket write per batch
        instead of one per message, and no per-message task. aiormq rejects
        those futures if the channel or connection closes.
        """
        channel = cast(aiormq.Channel, await self._channel(link, "publisher", confirms=True))
        frame_max = int(getattr(link.connection.connection_tune, "frame_max", 0) or 131072)
        futures: list[asyncio.Future[Any]] = []
        parts: list[bytes] = []
        async with channel.lock:
            for env in envelopes:
                parts.append(publish_frames(
                    channel.number, env.exchange, env.routing_key,
                    encode_properties(to_amqp_properties(env)), env.body, frame_max))
            for _ in envelopes:
                channel.delivery_tag += 1
                future = channel.create_future()
                channel.confirmations[channel.delivery_tag] = future
                futures.append(future)
            await channel.write_queue.put(ChannelFrame(payload=b"".join(parts),
                                                       should_close=False))
        outcomes = await asyncio.gather(*futures, return_exceptions=True)
        refused = 0
        for outcome in outcomes:
            if isinstance(outcome, spec.Basic.Ack):
                continue
            if isinstance(outcome, aiormq.exceptions.DeliveryError | spec.Basic.Nack):
                refused += 1
            elif isinstance(outcome, BaseException):
                raise outcome
        if refused:
            keys = sorted({env.routing_key for env in envelopes})
            raise OperationalError(f"RabbitMQ at {self.params.masked} refused (nacked) "
                                   f"{refused} of {len(envelopes)} message(s) for {keys}")

    async def publish(self, envelope: Envelope, *, eta: float | None = None) -> None:
        """Publish with a confirm (``eta`` is carried in the headers; the worker holds it)."""
        await self._with_retry(lambda link: self._publish_on(link, envelope))

    async def publish_many(self, items: Sequence[tuple[Envelope, float | None]]) -> None:
        """Publish all, pipelined: every confirm is awaited, all in one wait."""
        async def run(link: _Link) -> None:
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
        if consumer is None or not consumer.opened or consumer.blocked \
                or consumer.lost is not None:
            return False
        frame_max = consumer.frame_max
        consumer.publish(b"".join([
            publish_frames(CHANNEL, env.exchange, env.routing_key,
                           encode_properties(to_amqp_properties(env)), env.body, frame_max)
            for env in envelopes]))
        return True

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
            await self._consume(link, queues, limit)
        except AIO_ERRORS as exc:
            raise self._broken(link, exc) from None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not link.ready(queues):
            if link.broken is not None:
                raise lost_error(self.params, link.broken)
            remaining = deadline - loop.time()
            if remaining <= 0:
                return []
            # A bare future and a timer: woken in the loop turn after the delivery
            # (wait_for on an Event would add a task and two turns per wake-up).
            waiter: asyncio.Future[None] = loop.create_future()
            link.waiters.add(waiter)
            timer = loop.call_later(remaining, _wake, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
                link.waiters.discard(waiter)
        if link.broken is not None:
            raise lost_error(self.params, link.broken)
        return link.take(queues, limit)

    async def _consume(self, link: _Link, queues: Sequence[str], limit: int) -> None:
        consumer = await self._consumer(link)
        desired = max(1, len(link.handed) + limit)
        quorum = any(q in self._quorum for q in queues)
        if link.qos == 0 or (not quorum and (desired > link.qos or desired <= link.qos // 2)):
            await consumer.qos(desired, global_=not quorum)
            link.qos = desired
        for queue in queues:
            if queue not in link.consumers:
                tag = f"celeriac.{link.generation}.{len(link.queue_of) + 1}"
                link.consumers[queue] = tag
                link.queue_of[tag] = queue
                await consumer.consume(queue, tag)
        for queue in [q for q in link.consumers if q not in queues]:
            await consumer.cancel(link.consumers.pop(queue))
            for delivery in link.buffer.pop(queue, ()):
                consumer.reject(delivery.tag[1], requeue=True)
                link.settle([delivery.tag[1]])

    def _on_delivery(self, link: _Link, message: Delivered) -> None:
        """One delivery from the consuming connection, straight into the fetch buffer."""
        queue = link.queue_of.get(message.consumer_tag)
        if link.broken is not None or queue is None:
            return
        envelope = from_amqp(message.body, message.properties, exchange=message.exchange,
                             routing_key=message.routing_key)
        tag = message.delivery_tag
        link.unacked.add(tag)
        pending = link.buffer.get(queue)
        if pending is None:
            pending = link.buffer[queue] = deque()
        pending.append(Delivery(envelope, queue, (link.generation, tag), message.redelivered))
        link.wake()

    def _current(self, deliveries: Sequence[Delivery], what: str) -> tuple[_Link | None, list[int]]:
        link = self._link
        tags: list[int] = []
        for d in deliveries:
            generation, tag = d.tag
            if link is not None and generation == link.generation and tag in link.unacked:
                tags.append(tag)
            else:
                logger.debug("%s of a delivery from a lost connection ignored (tag %s); "
                             "the broker redelivers it", what, d.tag)
        return link, sorted(tags)

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        """Acknowledge: one ``multiple`` ack for the longest run of the oldest unacked
        tags that are all in the batch, one ack each for the rest.

        All frames go to the consuming connection's socket in one write.
        """
        link, tags = self._current(deliveries, "ack")
        if link is None or not tags:
            return
        try:
            consumer = await self._consumer(link)
            batch = set(tags)
            prefix = 0
            for tag in sorted(link.unacked):
                if tag not in batch:
                    break
                prefix += 1
            frames = [(tags[prefix - 1], True)] if prefix > 1 else []
            frames += [(tag, False) for tag in tags[prefix if prefix > 1 else 0:]]
            consumer.ack(frames)
        except AIO_ERRORS as exc:
            self._broken(link, exc)
            logger.debug("ack failed, the broker will redeliver: %s", exc)
        finally:
            link.settle(tags)

    async def reject(self, delivery: Delivery, *, requeue: bool, reason: str = "") -> None:
        """Requeue, or republish to the dead-letter queue with ``reason`` and ack."""
        link, tags = self._current([delivery], "reject")
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

    async def _dead_letter(self, link: _Link, delivery: Delivery, reason: str) -> None:
        await self._declare_plan(link, dead_letter_plan(delivery.queue))
        env = delivery.envelope
        headers = {**env.headers, DEAD_LETTER_REASON_HEADER: reason}
        dead = replace(env, headers=headers, exchange=DEAD_LETTER_EXCHANGE,
                       routing_key=delivery.queue, expiration=None)
        await self._publish_on(link, dead)
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
        out: list[tuple[Envelope, str]] = []
        try:
            while True:
                message = await channel.basic_get(dead_letter_queue(queue), no_ack=False)
                if not isinstance(message.delivery, spec.Basic.GetOk):
                    break
                env = _envelope(message)
                headers = dict(env.headers)
                reason = headers.pop(DEAD_LETTER_REASON_HEADER, None)
                if reason is None:
                    deaths = headers.get(DEATH_HEADER) or [{}]
                    reason = deaths[0].get("reason", "dead-lettered by the broker")
                out.append((replace(env, headers=headers), str(reason)))
        except aiormq.exceptions.ChannelNotFoundEntity:
            return []
        finally:
            if not channel.is_closed:
                await channel.close()  # unacked gets go back to the dead queue
        return out

    # -- broadcast ---------------------------------------------------------------------
    async def _broadcast_exchange(self, link: _Link, exchange: str) -> None:
        facts = exchange_facts(exchange)
        await self._declare_plan(link, Plan((DeclareExchange(exchange, facts.type,
                                                             facts.durable),), ()))

    async def broadcast(self, exchange: str, envelope: Envelope) -> None:
        """Publish to ``exchange`` (fanout/topic), declared as Celery declares it."""
        async def run(link: _Link) -> None:
            await self._broadcast_exchange(link, exchange)
            await self._publish_on(link, envelope.with_route(exchange, envelope.routing_key))

        await self._with_retry(run)

    async def publish_reply(self, envelope: Envelope) -> None:
        """Publish a control reply, declaring its (reply) exchange as Celery does first."""
        async def run(link: _Link) -> None:
            await self._broadcast_exchange(link, envelope.exchange)
            await self._publish_on(link, envelope)

        await self._with_retry(run)

    def broadcast_sync(self, exchange: str, envelope: Envelope) -> None:
        """Blocking :meth:`broadcast` over the sync publisher (confirmed)."""
        facts = exchange_facts(exchange)
        self.sync.declare(Plan((DeclareExchange(exchange, facts.type, facts.durable),), ()))
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
        try:
            name, arguments = broadcast_queue(exchange, str(uuid.uuid4()))
            await channel.queue_declare(name, exclusive=True, auto_delete=True,
                                        arguments=arguments or None)
            for key in binding_keys or ("#",):
                await channel.queue_bind(name, exchange, routing_key=key)

            async def on_message(message: aiormq.abc.DeliveredMessage) -> None:
                try:
                    outcome = handler(_envelope(message))
                    if outcome is not None:
                        await outcome
                except Exception:
                    logger.exception("broadcast handler for %r failed", exchange)

            await channel.basic_consume(name, on_message, no_ack=True)
            await asyncio.shield(channel.closing)
        finally:
            if not channel.is_closed:
                with contextlib.suppress(Exception):
                    await channel.close()
