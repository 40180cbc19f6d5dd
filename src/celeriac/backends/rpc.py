"""The ``rpc://`` result backend: results travel back on the sender's reply queue.

As Celery's rpc backend: every client (an app instance) has a reply queue named
after its ``oid``, which is also the ``reply_to`` of every task message it
sends. The worker publishes each state of a task (JSON, as stored by other
backends) to the default exchange with that queue as routing key,
``correlation_id`` = task id, ``delivery_mode`` 1. The queue is durable,
auto-delete and expires after ``result_expires`` unused (``x-expires``), the
flags Celery declares it with, so Celery workers can answer celeriac clients.

The client consumes its queue and keeps the latest state of every task it has
heard of, so results of many outstanding tasks can arrive in any order.
Consequences, as in Celery: only the client that sent a task can ``get()``
its result (another process sees PENDING), and a result is read from the
broker once (it lives in this process afterwards). Group save/restore and
chord counting need a store that keeps state: they raise
:class:`~celeriac.errors.ImproperlyConfigured`.

The backend needs the broker URL and the client's ``oid``: the app passes
them as ``options.extra["broker_url"]`` and ``options.extra["oid"]``. A URL
with a host (``rpc://user:pw@host/vhost``) is read as the broker URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import aiormq

from celeriac.backends._rules import may_replace, wait_timeout
from celeriac.backends.base import BackendOptions, ChordPart, ResultBackend
from celeriac.errors import ContentDisallowed, DecodeError, ImproperlyConfigured
from celeriac.protocol.amqp_topology import RPC_BARRIER_CONTENT_TYPE, rpc_reply_queue_arguments
from celeriac.protocol.envelope import Envelope
from celeriac.protocol.results import ResultMeta, decode_meta, encode_meta
from celeriac.protocol.serializers import content_type_for, serializer_name_for
from celeriac.protocol.states import READY_STATES
from celeriac.transports._amqp_common import (
    AMQPParams,
    connect_error,
    lost_error,
    parse_amqp_url,
    plan_declarations,
)
from celeriac.transports._amqp_replies import ReplyReader
from celeriac.transports._amqp_sync import CONNECTION_ERRORS, SyncAMQP
from celeriac.transports.amqp import AIO_ERRORS, AMQPTransport
from celeriac.transports.base import QueueSpec, Transport, TransportOptions

__all__ = ["RPCBackend"]

logger = logging.getLogger("celeriac.backends.rpc")

_NO_CHORDS = ("chords need a result backend that can count: use redis:// or sqlite:// "
              "(the rpc:// backend keeps results in the sending client only)")
_NO_GROUPS = ("saving a group result needs a result backend that keeps state: use redis:// "
              "or sqlite:// (the rpc:// backend keeps results in the sending client only)")
#: Longest a ``get`` waits for its barrier marker to come back through the queue.
_BARRIER_WAIT = 5.0
#: Results kept per client; the oldest are dropped beyond this.
CACHE_SIZE = 65536


def _broker_url(url: str) -> str:
    rest = url.partition("://")[2]
    if rest.strip("/"):
        return "amqp://" + rest
    return "amqp://guest:guest@localhost:5672//"


class RPCBackend(ResultBackend):
    """Results over per-client reply queues on RabbitMQ (see the module docstring)."""

    schemes = ("rpc",)
    pushes = True

    def __init__(self, url: str = "rpc://", options: BackendOptions | None = None) -> None:
        super().__init__(url, options)
        extra = self.options.extra
        self.broker_url = str(extra.get("broker_url") or _broker_url(url))
        use_ssl = extra.get("broker_use_ssl", False)  # replies go as the broker's messages
        self.params = parse_amqp_url(self.broker_url, use_ssl=use_ssl)
        #: This client's reply queue (the ``reply_to`` of the tasks it sends).
        self.oid = str(extra.get("oid") or uuid.uuid4())
        self.reply_to = self.oid
        connect_timeout = float(extra.get("connect_timeout", 5.0))
        self.sync = SyncAMQP(self.params, connect_timeout=connect_timeout)
        self.transport = AMQPTransport(
            self.broker_url, TransportOptions(connect_timeout=connect_timeout, ssl=use_ssl))
        self._arguments = rpc_reply_queue_arguments(self.options.expires)
        self._results: OrderedDict[str, ResultMeta] = OrderedDict()
        self._cond = threading.Condition()
        self._drain_lock = threading.Lock()
        self._sync_consumer: ReplyReader | None = None
        self._declared: set[str] = set()
        self._barriers: set[str] = set()
        self._async_events: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._aconsumer: aiormq.abc.AbstractConnection | None = None
        self._aconsumer_lock: asyncio.Lock | None = None
        self._broker: AMQPTransport | None = None

    def _reply_spec(self, queue: str) -> QueueSpec:
        return QueueSpec(name=queue, durable=True, auto_delete=True,
                         arguments=dict(self._arguments))

    # -- what a message means ------------------------------------------------------
    def _envelope(self, meta: ResultMeta) -> Envelope:
        body = encode_meta(meta, self.options.serializer)
        return Envelope(
            body=body,
            content_type=content_type_for(self.options.serializer),
            content_encoding="utf-8" if self.options.serializer in ("json", "yaml") else "binary",
            headers={},
            correlation_id=meta.task_id,
            priority=0,
            delivery_mode=1,
            routing_key=meta.reply_to or self.oid,
        )

    def _barrier(self) -> tuple[str, Envelope]:
        marker = f"barrier-{uuid.uuid4()}"
        return marker, Envelope(body=b"", content_type=RPC_BARRIER_CONTENT_TYPE,
                                correlation_id=marker, delivery_mode=1, routing_key=self.oid)

    def _absorb(self, body: bytes, properties: dict[str, Any]) -> None:
        content_type = str(properties.get("content_type") or "application/json")
        correlation = properties.get("correlation_id")
        task_id = correlation.decode() if isinstance(correlation, bytes) else correlation
        if content_type == RPC_BARRIER_CONTENT_TYPE:
            with self._cond:
                self._barriers.add(str(task_id))
                self._cond.notify_all()
                events = list(self._async_events)
            for loop, event in events:
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(event.set)
            return
        try:
            meta = decode_meta(body, serializer_name_for(content_type) or "json",
                               task_id=task_id, accept=set(self.options.accept))
        except (DecodeError, ContentDisallowed) as exc:
            logger.error("rpc: dropped a reply for task %s: %s", task_id or "unknown", exc)
            return
        with self._cond:
            current = self._results.get(meta.task_id)
            if may_replace(current.status if current else None, meta.status):
                self._results[meta.task_id] = meta
                self._results.move_to_end(meta.task_id)
                while len(self._results) > CACHE_SIZE:
                    self._results.popitem(last=False)
            self._cond.notify_all()
            events = list(self._async_events)
        for loop, event in events:
            with contextlib.suppress(RuntimeError):  # that loop is closed
                loop.call_soon_threadsafe(event.set)

    def _cached(self, task_id: str) -> ResultMeta | None:
        with self._cond:
            return self._results.get(task_id)

    def _ready(self, task_id: str) -> ResultMeta | None:
        meta = self._cached(task_id)
        return meta if meta is not None and meta.status in READY_STATES else None

    # -- async face ----------------------------------------------------------------------
    async def connect(self) -> None:
        """Connect for publishing (consuming starts with the first ``get``/``wait``)."""
        await self.transport.connect()

    async def close(self) -> None:
        """Close the async connections; idempotent."""
        consumer, self._aconsumer = self._aconsumer, None
        if consumer is not None:
            with contextlib.suppress(Exception):
                await consumer.close()
        await self.transport.close()

    def share_broker(self, transport: Transport) -> None:
        """In a worker: publish replies on its consuming connection when it is
        the same broker and vhost (see :meth:`store_many`)."""
        if isinstance(transport, AMQPTransport) and _same_broker(transport.params, self.params):
            self._broker = transport

    async def store(self, meta: ResultMeta) -> None:
        """Publish ``meta`` to the reply queue of the client that sent the task."""
        await self.store_many([meta])

    async def store_many(self, metas: Sequence[ResultMeta]) -> None:
        """Publish results to their reply queues; return once they are ahead of any ack.

        In a worker that shares its broker connection (:meth:`share_broker`)
        the replies are written on the consuming channel without confirms:
        the broker routes them before it handles the acks written after them,
        and a reply is transient anyway (docs/decisions-amqp.md). Otherwise
        (no consuming connection yet, a resource alarm, a client) they are
        published pipelined on the backend's own connection with one wait for
        all their confirms.
        """
        envelopes = [self._envelope(meta) for meta in metas]
        missing = {env.routing_key for env in envelopes} - self._declared
        if missing:
            await self.transport.declare([self._reply_spec(q) for q in sorted(missing)])
            self._declared |= missing
        if self._broker is not None and self._broker.publish_ahead_of_acks(envelopes):
            return
        await self.transport.publish_many([(env, None) for env in envelopes])

    async def _consuming(self) -> None:
        consumer = self._aconsumer
        if consumer is not None and not consumer.is_closed:
            return
        if self._aconsumer_lock is None:
            self._aconsumer_lock = asyncio.Lock()
        async with self._aconsumer_lock:
            if self._aconsumer is not None and not self._aconsumer.is_closed:
                return
            tls = self.params.aiormq_kwargs()
            try:
                conn = await asyncio.wait_for(aiormq.connect(self.params.aiormq_url(), **tls),
                                              self.transport.options.connect_timeout)
            except Exception as exc:
                raise connect_error(self.params, exc) from None
            try:
                channel = await conn.channel()
                declared = await channel.queue_declare(
                    self.oid, durable=True, auto_delete=True, arguments=self._arguments)
                # What is already waiting is read now, so get() right after sees it: the
                # broker pushes it to the new consumer at once (one round trip, not one
                # basic.get per message).
                backlog = int(declared.message_count or 0)
                seen = 0
                caught_up = asyncio.Event()

                async def on_message(message: aiormq.abc.DeliveredMessage) -> None:
                    nonlocal seen
                    self._absorb(message.body, _aio_properties(message))
                    seen += 1
                    if seen >= backlog:
                        caught_up.set()

                await channel.basic_consume(self.oid, on_message, no_ack=True)
                if backlog:
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(caught_up.wait(), _BARRIER_WAIT)
            except AIO_ERRORS as exc:
                with contextlib.suppress(Exception):
                    await conn.close()
                raise lost_error(self.params, exc) from None
            self._aconsumer = conn

    async def get(self, task_id: str) -> ResultMeta | None:
        """The latest state that reached this client's queue before the call (``None``: PENDING)."""
        if self._aconsumer is None or self._aconsumer.is_closed:
            await self._consuming()  # reads everything waiting before it consumes
            return self._cached(task_id)
        marker, envelope = self._barrier()
        loop = asyncio.get_running_loop()
        event = asyncio.Event()
        entry = (loop, event)
        with self._cond:
            self._async_events.add(entry)
        try:
            await self.transport.publish(envelope)
            deadline = loop.time() + _BARRIER_WAIT
            while marker not in self._barriers and loop.time() < deadline:
                event.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(event.wait(), deadline - loop.time())
        finally:
            with self._cond:
                self._async_events.discard(entry)
                self._barriers.discard(marker)
        return self._cached(task_id)

    async def wait(self, task_id: str, timeout: float | None) -> ResultMeta:
        """Wait for a ready state pushed to this client's reply queue."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        event = asyncio.Event()
        entry = (loop, event)
        with self._cond:
            self._async_events.add(entry)
        try:
            while True:
                await self._consuming()
                event.clear()
                meta = self._ready(task_id)
                if meta is not None:
                    return meta
                remaining = None if deadline is None else deadline - loop.time()
                if remaining is not None and remaining <= 0:
                    raise wait_timeout(task_id, timeout)
                # Wake at least every second to notice a consumer connection that died.
                step = 1.0 if remaining is None else min(remaining, 1.0)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(event.wait(), step)
        finally:
            with self._cond:
                self._async_events.discard(entry)

    async def forget(self, task_id: str) -> None:
        """Drop what this client received for ``task_id``."""
        await self.get(task_id)
        with self._cond:
            self._results.pop(task_id, None)

    # -- sync face ------------------------------------------------------------------------
    def store_sync(self, meta: ResultMeta) -> None:
        """Blocking :meth:`store` over this thread's py-amqp connection."""
        envelope = self._envelope(meta)
        self.sync.declare(plan_declarations([self._reply_spec(envelope.routing_key)]))
        self.sync.publish(envelope)

    def subscribe_early(self, task_id: str) -> None:
        """Declare this client's reply queue before a task is sent.

        A Celery worker publishes a result to ``reply_to`` without declaring the
        queue (Celery's client declares it when sending), and the broker drops a
        message routed to a queue that does not exist. The declaration is made
        once per connection (the transport remembers it).
        """
        self.sync.declare(plan_declarations([self._reply_spec(self.oid)]))

    async def asubscribe_early(self, task_id: str) -> None:
        """Async :meth:`subscribe_early` (``adelay``), on this loop's connection."""
        await self.transport.declare([self._reply_spec(self.oid)])

    def _drive(self, wait: float) -> None:
        """Read replies for up to ``wait`` seconds (call with the drain lock held)."""
        try:
            reader = self._sync_consumer
            if reader is None:
                reader = ReplyReader(self.sync, self.oid, self._arguments, self._absorb)
                reader.open()  # reads everything waiting, so get_sync() right after sees it
                self._sync_consumer = reader
                return
            reader.drive(wait)
        except CONNECTION_ERRORS as exc:
            self._drop_sync_consumer()
            raise lost_error(self.params, exc) from None

    def _drop_sync_consumer(self) -> None:
        reader, self._sync_consumer = self._sync_consumer, None
        if reader is not None:
            reader.close()

    def get_sync(self, task_id: str) -> ResultMeta | None:
        """Blocking :meth:`get`: the latest state that reached the queue before the call."""
        with self._drain_lock:
            if self._sync_consumer is None:
                self._drive(0)  # reads everything waiting before it consumes
                return self._cached(task_id)
            marker, envelope = self._barrier()
            self.sync.publish(envelope)
            deadline = time.monotonic() + _BARRIER_WAIT
            try:
                while marker not in self._barriers and time.monotonic() < deadline:
                    self._drive(deadline - time.monotonic())
            finally:
                with self._cond:
                    self._barriers.discard(marker)
        return self._cached(task_id)

    def wait_sync(self, task_id: str, timeout: float | None) -> ResultMeta:
        """Blocking :meth:`wait`; one thread reads the queue, the others are woken."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            meta = self._ready(task_id)
            if meta is not None:
                return meta
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise wait_timeout(task_id, timeout)
            step = 1.0 if remaining is None else min(remaining, 1.0)
            if self._drain_lock.acquire(blocking=False):
                try:
                    if self._ready(task_id) is None:
                        self._drive(step)
                finally:
                    self._drain_lock.release()
                    with self._cond:
                        self._cond.notify_all()
            else:
                with self._cond:
                    if self._ready(task_id) is None:
                        self._cond.wait(min(step, 0.5))

    def forget_sync(self, task_id: str) -> None:
        """Blocking :meth:`forget`."""
        self.get_sync(task_id)
        with self._cond:
            self._results.pop(task_id, None)

    def close_sync(self) -> None:
        """Close the sync connections; idempotent."""
        with self._drain_lock:
            self._drop_sync_consumer()
        self.sync.close_all()
        self.transport.close_sync()

    # -- groups and chords: not with rpc ------------------------------------------------
    def save_group_sync(self, group_id: str, task_ids: Sequence[str]) -> None:
        """Not supported by rpc: raises :class:`~celeriac.errors.ImproperlyConfigured`."""
        raise ImproperlyConfigured(_NO_GROUPS)

    def restore_group_sync(self, group_id: str) -> list[str] | None:
        """Not supported by rpc: raises :class:`~celeriac.errors.ImproperlyConfigured`."""
        raise ImproperlyConfigured(_NO_GROUPS)

    def forget_group_sync(self, group_id: str) -> None:
        """Not supported by rpc: raises :class:`~celeriac.errors.ImproperlyConfigured`."""
        raise ImproperlyConfigured(_NO_GROUPS)

    def set_chord_size_sync(self, group_id: str, size: int) -> None:
        """Not supported by rpc: raises :class:`~celeriac.errors.ImproperlyConfigured`."""
        raise ImproperlyConfigured(_NO_CHORDS)

    async def set_chord_size(self, group_id: str, size: int) -> None:
        """Not supported by rpc: raises :class:`~celeriac.errors.ImproperlyConfigured`."""
        raise ImproperlyConfigured(_NO_CHORDS)

    async def chord_part_return(self, part: ChordPart) -> list[ChordPart] | None:
        """Not supported by rpc: raises :class:`~celeriac.errors.ImproperlyConfigured`."""
        raise ImproperlyConfigured(_NO_CHORDS)


def _same_broker(a: AMQPParams, b: AMQPParams) -> bool:
    return (a.host, a.port, a.vhost, a.user, a.tls) == (b.host, b.port, b.vhost, b.user, b.tls)


def _aio_properties(message: aiormq.abc.DeliveredMessage) -> dict[str, Any]:
    props = message.header.properties
    return {"content_type": props.content_type, "correlation_id": props.correlation_id}
