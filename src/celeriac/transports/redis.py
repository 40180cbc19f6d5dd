"""Redis broker: ``redis://``, ``rediss://``, ``redis+socket://``, ``sentinel://``.

Wire-compatible with Celery 5 / kombu: a queue is the Redis list kombu uses
(same name, same priority sub-lists, same JSON element, same binding sets;
names from :mod:`celeriac.protocol.keys`), so Celery clients and workers share queues with
celeriac. What is ours is how a worker takes messages, which is where this
transport is more reliable than kombu's (details: ``docs/decisions-redis.md``):

* **Fetch is atomic.** One Lua script pops up to ``limit`` elements, queues in
  priority-major order as kombu polls them, and records each in this
  consumer's in-flight hash in the same step, renewing the consumer's lease in
  the ``leases`` zset. A message is always in a list, an in-flight hash or the
  delayed zset, never only in a client's memory.
* **Leases, not visibility timeouts.** :meth:`RedisTransport.maintain` renews
  the lease every ``lease_seconds/3`` and, in the same script, puts back the
  in-flight messages of consumers whose lease ran out (head of their queue,
  fetch order kept). Scripts are atomic, so two restorers cannot duplicate.
* **ETA in a zset.** Delayed messages wait in a zset scored by due time and are
  moved to the head of their list by whichever worker runs the script first
  (maintain, or opportunistically any fetch). With the transport option
  ``eta_on_queue`` (needed when Celery workers consume the queues) they are
  pushed onto their queue with their ``eta`` header as Celery does; a celeriac
  worker then moves each into the zset when it fetches it (:meth:`defer`).
* **Push delivery to idle consumers.** A fetch that comes back short registers
  the consumer as idle (with the in-flight tags it left unused); a publish onto
  an empty list hands the message to such a consumer in the same script: into
  its in-flight hash, announced on its private pub/sub channel. An idle worker
  so gets a message with no wake-up and no FETCH round trip. Lost
  announcements are read back from the in-flight hash (after a reconnect, and
  at maintenance); a dead consumer's pushed messages come back by its lease.
* **Waking idle consumers.** A fetch that finds nothing waits on pub/sub wake
  channels, one per list, that our pushes publish to when they turn a list
  from empty to non-empty (so a busy queue costs no pub/sub traffic). Celery
  producers do not publish wake-ups, so the wait is also bounded by a short
  adaptive poll (10 ms doubling up to ``min(poll_interval, 0.25)`` s).

Elements that cannot be decoded are never returned nor lost: they go to the
queue's dead-letter list with the reason (``dead_letters`` reads them back).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from functools import partial
from typing import Any, TypeVar

import redis
import redis.asyncio
import redis.exceptions

from celeriac.errors import DecodeError
from celeriac.protocol import keys
from celeriac.protocol._ids import uuid4_str
from celeriac.protocol.batch import EnvelopeBatch, encode_elements
from celeriac.protocol.envelope import Envelope
from celeriac.protocol.kombu_json import (
    ElementTemplate,
    decode_element,
    element_template,
    encode_element,
)
from celeriac.transports import _redis_scripts as lua
from celeriac.transports import _virtual
from celeriac.transports._redis_conn import (
    AsyncScriptCaller,
    make_async_client,
    make_sync_client,
    target_from_options,
    translate_error,
)
from celeriac.transports._redis_consume import RedisConsuming
from celeriac.transports._redis_pubsub import subscribe_loop
from celeriac.transports._redis_pushed import split_located
from celeriac.transports._redis_support import (
    RetryPolicy,
    dead_record,
    read_dead_record,
    retry_async,
    retry_sync,
)
from celeriac.transports._redis_sync_script import PackedScript, SyncScriptCaller
from celeriac.transports.base import (
    Binding,
    OnBroadcast,
    QueueSpec,
    Transport,
    TransportOptions,
)

__all__ = ["RedisTransport"]

log = logging.getLogger("celeriac.transports.redis")

T = TypeVar("T")

_BINDING_CACHE_SECONDS = 5.0
# delayed(): zset members read per round trip, and at most in all (a bounded read)
_DELAYED_PAGE = 500
_DELAYED_SCAN = 10_000
# One-message batches (a sync ``delay()``) whose prototype is remembered with its
# element template and packed PUBLISH call; forgotten all at once past this many.
_ROW_SENDERS_MAX = 256
# Exchanges whose type Celery fixes (others are learnt from declare()).
_KNOWN_EXCHANGES = {
    keys.PIDBOX_EXCHANGE: "fanout",
    keys.EVENT_EXCHANGE: "topic",
    keys.PIDBOX_REPLY_EXCHANGE: "direct",
}


class RedisTransport(RedisConsuming, Transport):
    """Celery-compatible Redis broker with atomic fetch, leases and an ETA zset."""

    schemes = ("redis", "rediss", "redis+socket", "unix", "sentinel")
    supports_delayed = True
    supports_priority = True
    priority_low_first = True

    def __init__(self, url: str, options: TransportOptions | None = None) -> None:
        super().__init__(url, options)
        extra = self.options.extra
        self._target = target_from_options(
            url, extra, connect_default=self.options.connect_timeout or None,
            use_ssl=self.options.ssl)
        self._policy = RetryPolicy.from_options(extra)
        # Celery workers never read the delayed zset: where they consume, ETA
        # messages must sit on their queue (eta header) as Celery sends them.
        self._eta_on_queue = bool(extra.get("eta_on_queue", False))
        self.consumer_id = uuid.uuid4().hex
        self._wake_prefix = keys.wake_channel_prefix(self._target.db)
        self._push_channel = keys.push_channel_prefix(self._target.db) + self.consumer_id
        # PUBLISH's leading arguments: where idle consumers are found and pushed to
        self._publish_args: list[Any] = [
            self._wake_prefix, keys.idle_consumers_prefix(), keys.IDLE_CONSUMERS_HASH,
            keys.LEASES_ZSET, keys.inflight_key(""), keys.push_channel_prefix(self._target.db)]
        self._sync: redis.Redis | None = None
        self._aio: redis.asyncio.Redis | None = None
        self._declared: set[str] = set()
        self._exchange_types: dict[str, str] = dict(_KNOWN_EXCHANGES)
        self._bindings: dict[str, tuple[float, list[Binding]]] = {}
        self._scripts: AsyncScriptCaller | None = None
        self._sync_scripts: SyncScriptCaller | None = None
        # id(prototype) -> (prototype, varying, template, packed PUBLISH of its list)
        self._row_senders: dict[
            int, tuple[Envelope, tuple[str, ...], ElementTemplate, PackedScript]] = {}
        self._init_consuming()

    # -- connections ---------------------------------------------------------
    def _sync_client(self) -> redis.Redis:
        if self._sync is None:
            self._sync = make_sync_client(self._target, retries=0)
        return self._sync

    def _async_client(self) -> redis.asyncio.Redis:
        if self._aio is None:
            self._aio = make_async_client(self._target, retries=0)
        return self._aio

    async def connect(self) -> None:
        """Check that Redis answers; raise ``BrokerUnreachable`` naming the masked URL."""
        try:
            await self._async_client().ping()
        except (redis.exceptions.RedisError, OSError) as exc:
            raise translate_error(exc, self._target, "connecting") from exc

    async def close(self) -> None:
        """Give back what this consumer holds (requeued at the head), then disconnect."""
        if self._aio is None:
            return
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        if self._lingering:  # an HDEL in flight must land before the requeue below
            await asyncio.gather(*self._lingering, return_exceptions=True)
        try:
            await self._flush_acks()
            self._pushed.stop()
            # unregistered first: nothing is pushed to us after the requeue below
            await self._aio.hdel(keys.IDLE_CONSUMERS_HASH, self.consumer_id)
            await self._requeue(["*"], mark=True)
            self._pending_requeues.clear()
            self._pending_dead.clear()  # requeued with the rest; not lost
            await self._aio.zrem(keys.LEASES_ZSET, self.consumer_id)
        except (redis.exceptions.RedisError, OSError) as exc:
            log.warning("could not return in-flight messages on close: %s (%s)", exc,
                        self.describe())  # fmt: skip
        if self._wake is not None:
            await self._wake.close()
            self._wake = None
        if self._scripts is not None:
            await self._scripts.close()
            self._scripts = None
        await self._aio.aclose()
        self._aio = None

    def close_sync(self) -> None:
        """Close the sync connection pool."""
        if self._sync is not None:
            self._sync.close()
            self._sync = None
            self._sync_scripts = None
            self._row_senders.clear()

    async def _script(self, source: str, keys_: Sequence[str], args: Sequence[Any]) -> Any:
        if self._scripts is None:
            self._scripts = AsyncScriptCaller(self._async_client())
        return await self._scripts(source, list(keys_), list(args))

    def _sync_caller(self) -> SyncScriptCaller:
        if self._sync_scripts is None:
            self._sync_scripts = SyncScriptCaller(self._sync_client())
        return self._sync_scripts

    def _script_sync(self, source: str, keys_: Sequence[str], args: Sequence[Any]) -> Any:
        return self._sync_caller()(source, keys_, args)

    # -- topology ------------------------------------------------------------
    def _declare_ops(self, queues: Sequence[QueueSpec]) -> list[tuple[str, str]]:
        ops: list[tuple[str, str]] = []
        for binding in _virtual.bindings_for(queues):
            self._exchange_types[binding.exchange] = binding.exchange_type
            self._bindings.pop(binding.exchange, None)
            member = keys.binding_member(binding.routing_key, "", binding.queue)
            ops.append((keys.binding_set_key(binding.exchange), member))
            ops.append((keys.binding_permanent_key(binding.exchange), member))
            self._declared.add(binding.queue)
        return ops

    async def declare(self, queues: Sequence[QueueSpec]) -> None:
        """Write kombu's binding sets for ``queues`` (lists need no creation)."""
        ops = self._declare_ops(queues)
        if ops:
            pipe = self._async_client().pipeline(transaction=False)
            for key, member in ops:
                pipe.sadd(key, member)
            await self._retrying("declaring queues", pipe.execute)

    def declare_sync(self, queues: Sequence[QueueSpec]) -> None:
        """Sync face of :meth:`declare`."""
        ops = self._declare_ops(queues)
        if ops:
            pipe = self._sync_client().pipeline(transaction=False)
            for key, member in ops:
                pipe.sadd(key, member)
            self._retrying_sync("declaring queues", pipe.execute)

    def _cached_route(self, envelope: Envelope) -> list[str] | None:
        """Queues for ``envelope``, or ``None`` if the exchange's bindings must be read."""
        if not envelope.exchange:
            return [envelope.routing_key]
        cached = self._bindings.get(envelope.exchange)
        if cached is None or cached[0] < time.monotonic():
            return None
        return _virtual.route(cached[1], envelope.exchange, envelope.routing_key)

    def _remember_bindings(self, exchange: str, members: Iterable[bytes | str]) -> None:
        kind = self._exchange_types.get(exchange, "direct")
        bindings = []
        for raw in members:
            routing_key, _, queue = keys.parse_binding_member(raw)
            bindings.append(Binding(exchange, routing_key, queue, kind))
        self._bindings[exchange] = (time.monotonic() + _BINDING_CACHE_SECONDS, bindings)

    # -- publishing ----------------------------------------------------------
    def _plan(
        self,
        items: Sequence[tuple[Envelope, float | None]],
        elements: Sequence[Sequence[bytes]] | None = None,
    ) -> tuple[list[str], list[Any]]:
        """One PUSH-script call for a batch: keys and op triplets (all routes known).

        ``elements[i]``, when given, are already-encoded elements that all go where
        ``items[i]``'s envelope goes (a bulk send's batch); else the envelope's own.
        """
        op_keys: list[str] = []
        args: list[Any] = list(self._publish_args)
        now = time.time()
        for index, (envelope, eta) in enumerate(items):
            encoded = elements[index] if elements is not None else [encode_element(envelope)]
            queues = self._cached_route(envelope) or []
            if not queues:
                reason = _virtual.unroutable_reason(envelope)
                log.warning("%s; message set aside in %r", reason,
                            keys.dead_letter_key(envelope.exchange))  # fmt: skip
                for element in encoded:
                    op_keys.append(keys.dead_letter_key(envelope.exchange))
                    args += ["l", dead_record(envelope.exchange, reason, element), ""]
                continue
            for queue in queues:
                if not envelope.exchange and queue not in self._declared:
                    member = keys.binding_member(queue, "", queue)
                    op_keys += [keys.binding_set_key(queue),
                                keys.binding_permanent_key(queue)]  # fmt: skip
                    args += ["s", member, "", "s", member, ""]
                    self._declared.add(queue)
                list_name = keys.priority_queue(queue, envelope.priority)
                if eta is not None and eta > now and not self._eta_on_queue:
                    for element in encoded:
                        op_keys.append(keys.DELAYED_ZSET)
                        args += ["z", repr(float(eta)), lua.locate(list_name, element)]
                else:
                    for element in encoded:
                        op_keys.append(list_name)
                        args += ["p", element, ""]
        return op_keys, args

    def _unrouted(self, items: Sequence[tuple[Envelope, float | None]]) -> set[str]:
        return {env.exchange for env, _ in items if self._cached_route(env) is None}

    async def publish(self, envelope: Envelope, *, eta: float | None = None) -> None:
        """LPUSH the kombu element (or ZADD it into the ETA zset); retries per policy."""
        await self.publish_many([(envelope, eta)])

    async def publish_many(
        self,
        items: Sequence[tuple[Envelope, float | None]],
        elements: Sequence[Sequence[bytes]] | None = None,
    ) -> None:
        """Publish a batch atomically in one round trip (plus binding reads if needed)."""
        client = self._async_client()
        for exchange in self._unrouted(items):
            key = keys.binding_set_key(exchange)
            self._remember_bindings(exchange, await self._retrying(
                "reading bindings", partial(client.smembers, key)))  # fmt: skip
        op_keys, args = self._plan(items, elements)
        if op_keys:
            await self._retrying("publishing", partial(self._script, lua.PUBLISH, op_keys, args))

    def _one_list(self, envelope: Envelope, eta: float | None) -> str | None:
        """The list a batch goes to when it is one plain push to a declared queue."""
        queues = self._cached_route(envelope)
        if (queues is None or len(queues) != 1 or queues[0] not in self._declared
                or (eta is not None and eta > time.time() and not self._eta_on_queue)):
            return None
        return keys.priority_queue(queues[0], envelope.priority)

    async def publish_batch(self, batch: EnvelopeBatch, *, eta: float | None = None) -> None:
        """Publish a bulk send's batch: elements from one template, one round trip."""
        elements = encode_elements(batch)
        list_name = self._one_list(batch.prototype, eta)
        if list_name is None:
            await self.publish_many([(batch.prototype, eta)], [elements])
        elif elements:
            args = [self._wake_prefix, *elements]
            await self._retrying("publishing",
                                 partial(self._script, lua.PUSH_MANY, [list_name], args))

    def publish_sync(self, envelope: Envelope, *, eta: float | None = None) -> None:
        """Blocking :meth:`publish` over redis-py's sync client."""
        self.publish_many_sync([(envelope, eta)])

    def publish_many_sync(
        self,
        items: Sequence[tuple[Envelope, float | None]],
        elements: Sequence[Sequence[bytes]] | None = None,
    ) -> None:
        """Blocking :meth:`publish_many`."""
        client = self._sync_client()
        for exchange in self._unrouted(items):
            key = keys.binding_set_key(exchange)
            self._remember_bindings(exchange, self._retrying_sync(
                "reading bindings", partial(client.smembers, key)))  # fmt: skip
        op_keys, args = self._plan(items, elements)
        if op_keys:
            call = partial(self._script_sync, lua.PUBLISH, op_keys, args)
            self._retrying_sync("publishing", call)

    def publish_batch_sync(self, batch: EnvelopeBatch, *, eta: float | None = None) -> None:
        """Blocking :meth:`publish_batch`.

        A batch of one message (a sync ``delay()``) is published as
        :meth:`publish_sync` publishes it (handed to an idle consumer, or
        pushed), at the cost of a join: its prototype's element template and
        its packed PUBLISH call are remembered from the first message.
        """
        if len(batch.rows) == 1 and eta is None:
            sender = self._row_sender(batch)
            if sender is not None:
                correlation_id, body, values = batch.rows[0]
                element = sender[2].render(correlation_id, body, values, uuid4_str())
                if element is not None:
                    retry_sync(self._policy, self._target, "publishing",
                               partial(sender[3], element))
                    return
            self.publish_many_sync([(batch.envelope(0), None)])
            return
        elements = encode_elements(batch)
        list_name = self._one_list(batch.prototype, eta)
        if list_name is None:
            self.publish_many_sync([(batch.prototype, eta)], [elements])
        elif elements:
            args = [self._wake_prefix, *elements]
            self._retrying_sync("publishing",
                                partial(self._script_sync, lua.PUSH_MANY, [list_name], args))

    def _row_sender(
        self, batch: EnvelopeBatch
    ) -> tuple[Envelope, tuple[str, ...], ElementTemplate, PackedScript] | None:
        """The template and packed call for one-message batches of this prototype,
        or None when they take the general path (another exchange than the default
        one, a queue not declared yet, a prototype that has no template)."""
        proto = batch.prototype
        sender = self._row_senders.get(id(proto))
        if sender is not None and sender[0] is proto and sender[1] == batch.varying:
            return sender
        if proto.exchange or proto.routing_key not in self._declared:
            return None
        template = element_template(proto, batch.varying)
        if template is None:
            return None
        list_name = keys.priority_queue(proto.routing_key, proto.priority)
        packed = self._sync_caller().packed(lua.PUBLISH, [list_name],
                                            [*self._publish_args, "p"], [""])
        if len(self._row_senders) >= _ROW_SENDERS_MAX:
            self._row_senders.clear()
        sender = self._row_senders[id(proto)] = (proto, tuple(batch.varying), template, packed)
        return sender

    async def _retrying(self, doing: str, call: Callable[[], Awaitable[T]]) -> T:
        return await retry_async(self._policy, self._target, doing, call)

    def _retrying_sync(self, doing: str, call: Callable[[], T]) -> T:
        return retry_sync(self._policy, self._target, doing, call)

    # -- inspection ----------------------------------------------------------
    def _lists_of(self, queue: str) -> list[str]:
        return [keys.priority_queue(queue, step) for step in keys.PRIORITY_STEPS]

    async def queue_length(self, queue: str) -> int:
        """Ready messages in ``queue``, all priority sub-lists together."""
        pipe = self._async_client().pipeline(transaction=False)
        for name in self._lists_of(queue):
            pipe.llen(name)
        return sum(await self._retrying("reading a queue length", pipe.execute))

    def queue_length_sync(self, queue: str) -> int:
        """Sync face of :meth:`queue_length`."""
        pipe = self._sync_client().pipeline(transaction=False)
        for name in self._lists_of(queue):
            pipe.llen(name)
        return sum(self._retrying_sync("reading a queue length", pipe.execute))

    async def purge(self, queue: str) -> int:
        """Delete the ready messages of ``queue`` atomically; return how many."""
        lists = self._lists_of(queue)
        pipe = self._async_client().pipeline(transaction=True)
        for name in lists:
            pipe.llen(name)
        pipe.delete(*lists)
        counts = await self._retrying("purging", pipe.execute)
        return int(sum(counts[: len(lists)]))

    async def dead_letters(self, queue: str) -> list[tuple[Envelope, str]]:
        """Messages set aside for ``queue``, oldest first, with their reasons."""
        raw = await self._retrying("reading dead letters", lambda: self._async_client().lrange(
            keys.dead_letter_key(queue), 0, -1))  # fmt: skip
        return [read_dead_record(item) for item in reversed(raw)]

    async def delayed(self, queues: Sequence[str], limit: int) -> list[tuple[str, float, Envelope]]:
        """ETA messages of ``queues`` in the delayed zset, earliest first: pages of it
        are read until ``limit`` were found or ``_DELAYED_SCAN`` members were read."""
        lists = {name: queue for queue in queues for name in self._lists_of(queue)}
        client = self._async_client()
        out: list[tuple[str, float, Envelope]] = []
        for start in range(0, _DELAYED_SCAN, _DELAYED_PAGE):
            page: list[Any] = await self._retrying("reading delayed messages", partial(
                client.zrange, keys.DELAYED_ZSET, start, start + _DELAYED_PAGE - 1,
                withscores=True))  # fmt: skip
            for member, score in page:
                list_name, element = split_located(member)
                queue = lists.get(list_name)
                if queue is not None:
                    with contextlib.suppress(DecodeError):
                        out.append((queue, float(score), decode_element(element)))
            if len(out) >= limit or len(page) < _DELAYED_PAGE:
                break
        return out[:limit]

    async def delete_queue(self, queue: QueueSpec) -> None:
        """Remove the queue's kombu bindings and delete its lists, as kombu does for
        an auto-delete queue whose consumer went away."""
        pipe = self._async_client().pipeline(transaction=False)
        for binding in _virtual.bindings_for([queue]):
            member = keys.binding_member(binding.routing_key, "", binding.queue)
            pipe.srem(keys.binding_set_key(binding.exchange), member)
            pipe.srem(keys.binding_permanent_key(binding.exchange), member)
            self._bindings.pop(binding.exchange, None)
        pipe.delete(*self._lists_of(queue.name))
        self._declared.discard(queue.name)
        await self._retrying("deleting a queue", pipe.execute)

    # -- broadcast -------------------------------------------------------------
    def _is_topic(self, exchange: str, routing_hint: bool) -> bool:
        kind = self._exchange_types.get(exchange)
        return kind == "topic" if kind is not None else routing_hint

    async def broadcast(self, exchange: str, envelope: Envelope) -> None:
        """PUBLISH the element on kombu's fanout or topic channel for ``exchange``."""
        db = self._target.db
        if self._is_topic(exchange, bool(envelope.routing_key)):
            channel = keys.topic_channel(db, exchange, envelope.routing_key)
        else:
            channel = keys.fanout_channel(db, exchange)
        element = encode_element(envelope)
        await self._retrying("broadcasting", lambda: self._async_client().publish(
            channel, element))  # fmt: skip

    async def publish_reply(self, envelope: Envelope) -> None:
        """Publish a control reply with freshly read bindings (clients come and go);
        dropped, as kombu does, when no queue is bound for it."""
        key = keys.binding_set_key(envelope.exchange)
        self._remember_bindings(envelope.exchange, await self._retrying(
            "reading bindings", partial(self._async_client().smembers, key)))  # fmt: skip
        if self._cached_route(envelope):
            await self.publish(envelope)

    def broadcast_sync(self, exchange: str, envelope: Envelope) -> None:
        """Blocking :meth:`broadcast` (PUBLISH over the sync client)."""
        channel = (keys.topic_channel(self._target.db, exchange, envelope.routing_key)
                   if self._is_topic(exchange, bool(envelope.routing_key))
                   else keys.fanout_channel(self._target.db, exchange))
        element = encode_element(envelope)
        self._retrying_sync("broadcasting", lambda: self._sync_client().publish(channel, element))

    async def subscribe(
        self, exchange: str, binding_keys: Sequence[str], handler: OnBroadcast
    ) -> None:
        """Deliver broadcasts on ``exchange`` matching ``binding_keys`` until cancelled."""
        db = self._target.db
        patterns = tuple(key for key in binding_keys if key)
        if self._is_topic(exchange, bool(patterns)):
            prefix = keys.topic_channel(db, exchange, "")
            globs = sorted({keys.topic_pattern(db, exchange, p) for p in patterns})
            globs = globs or [prefix + "*"]
            await subscribe_loop(self._async_client(), self._target, [], globs, prefix, patterns,
                                 handler)  # fmt: skip
        else:
            channel = keys.fanout_channel(db, exchange)
            await subscribe_loop(self._async_client(), self._target, [channel], [], "", (), handler)
