"""In-process broker: ``memory://`` (or ``memory://name`` for a separate one).

Every :class:`MemoryTransport` built from the same URL in one process shares
one store, so a producer and a worker in the same process (users' unit tests,
eager-ish setups) meet. It has the semantics of the real brokers: leases that
run out and bring an unacked message back (flagged ``redelivered``), ETA,
priority (higher number first, like AMQP), dead letters with reasons, exchange
emulation and broadcast. It is safe to use from several threads and event loops
at once: state sits behind a :class:`threading.Lock` and waiting consumers are
woken with ``call_soon_threadsafe``.

It is not for our own tests of the real brokers (those run against real
servers); :func:`drop_store` forgets a named store, for test isolation.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from celeriac.protocol.envelope import Envelope
from celeriac.transports import _virtual
from celeriac.transports._named import NamedStores
from celeriac.transports.base import (
    Binding,
    Delivery,
    OnBroadcast,
    QueueSpec,
    Transport,
    TransportOptions,
    raise_if_cancelled,
)

__all__ = ["MemoryTransport", "drop_store"]

log = logging.getLogger(__name__)


@dataclass(slots=True, eq=False)
class _Message:
    id: int
    queue: str
    priority: int
    envelope: Envelope
    visible_at: float = 0.0
    owner: str | None = None
    delivered: int = 0


@dataclass(slots=True, eq=False)
class _Subscriber:
    exchange: str
    patterns: tuple[str, ...]
    loop: asyncio.AbstractEventLoop
    inbox: asyncio.Queue[Envelope]


@dataclass(slots=True, eq=False)
class _Store:
    """The shared state of one named in-process broker (all access under ``lock``)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    ready: dict[str, list[tuple[int, int, _Message]]] = field(default_factory=dict)
    # Delayed and leased messages by the time they become ready again; entries
    # whose message moved on since (acked, renewed, requeued) are skipped lazily.
    timed: list[tuple[float, int, _Message]] = field(default_factory=list)
    inflight: dict[int, _Message] = field(default_factory=dict)
    dead: dict[str, list[tuple[Envelope, str]]] = field(default_factory=dict)
    bindings: list[Binding] = field(default_factory=list)
    waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = field(default_factory=set)
    subscribers: list[_Subscriber] = field(default_factory=list)

    # -- helpers, called with the lock held --------------------------------
    def push_ready(self, msg: _Message) -> None:
        msg.visible_at = 0.0
        msg.owner = None
        heapq.heappush(self.ready.setdefault(msg.queue, []), (-msg.priority, msg.id, msg))

    def push_timed(self, msg: _Message, when: float) -> None:
        msg.visible_at = when
        heapq.heappush(self.timed, (when, msg.id, msg))

    def promote(self, now: float) -> None:
        timed = self.timed
        while timed and timed[0][0] <= now:
            when, _, msg = heapq.heappop(timed)
            if msg.visible_at != when:
                continue  # stale entry
            self.inflight.pop(msg.id, None)
            self.push_ready(msg)

    def next_due(self) -> float | None:
        timed = self.timed
        while timed and timed[0][2].visible_at != timed[0][0]:
            heapq.heappop(timed)
        return timed[0][0] if timed else None

    def owned(self, tag: int, owner: str) -> _Message | None:
        msg = self.inflight.get(tag)
        if msg is None or msg.owner != owner:
            return None
        return msg

    def wake(self) -> None:
        for loop, event in list(self.waiters):
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # that loop is closed: its waiter is gone
                self.waiters.discard((loop, event))


_STORES: NamedStores[_Store] = NamedStores(_Store)


def drop_store(name: str = "") -> None:
    """Forget the in-process broker ``memory://name`` and everything in it."""
    _STORES.drop(name)


def _name_of(url: str) -> str:
    _, _, rest = url.partition("://")
    return rest.strip("/")


class MemoryTransport(Transport):
    """The in-process broker behind ``memory://[name]``."""

    schemes = ("memory",)
    supports_delayed = True
    supports_priority = True

    def __init__(self, url: str = "memory://", options: TransportOptions | None = None) -> None:
        super().__init__(url, options)
        self.name = _name_of(url)
        self._store = _STORES.get(self.name)
        self._consumer = f"memory-{id(self):x}"
        self._held: set[int] = set()

    # -- topology ----------------------------------------------------------
    async def declare(self, queues: Sequence[QueueSpec]) -> None:
        """Record the bindings of ``queues`` (queues themselves need no creation)."""
        self.declare_sync(queues)

    def declare_sync(self, queues: Sequence[QueueSpec]) -> None:
        """Sync face of :meth:`declare`."""
        new = _virtual.bindings_for(queues)
        with self._store.lock:
            for binding in new:
                if binding not in self._store.bindings:
                    self._store.bindings.append(binding)

    # -- publishing --------------------------------------------------------
    async def publish(self, envelope: Envelope, *, eta: float | None = None) -> None:
        """Route and store one envelope (never blocks: the store is in memory)."""
        self.publish_many_sync([(envelope, eta)])

    async def publish_many(self, items: Sequence[tuple[Envelope, float | None]]) -> None:
        """Route and store many envelopes under one lock."""
        self.publish_many_sync(items)

    def publish_sync(self, envelope: Envelope, *, eta: float | None = None) -> None:
        """Blocking :meth:`publish` (the same call)."""
        self.publish_many_sync([(envelope, eta)])

    def publish_many_sync(self, items: Sequence[tuple[Envelope, float | None]]) -> None:
        """Blocking :meth:`publish_many`."""
        store = self._store
        now = time.time()
        with store.lock:
            for envelope, eta in items:
                queues = _virtual.route(store.bindings, envelope.exchange, envelope.routing_key)
                if not queues:
                    reason = _virtual.unroutable_reason(envelope)
                    log.warning("%s", reason)
                    store.dead.setdefault(envelope.routing_key, []).append((envelope, reason))
                    continue
                for queue in queues:
                    msg = _Message(next(store.ids), queue, envelope.priority or 0, envelope)
                    if eta is not None and eta > now:
                        store.push_timed(msg, eta)
                    else:
                        store.push_ready(msg)
            store.wake()

    # -- consuming ---------------------------------------------------------
    async def fetch(self, queues: Sequence[str], limit: int, timeout: float) -> list[Delivery]:
        """Take up to ``limit`` ready messages; wait up to ``timeout`` for the first."""
        store = self._store
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + timeout
        event = asyncio.Event()
        waiter = (loop, event)
        with store.lock:
            store.waiters.add(waiter)
        try:
            while True:
                event.clear()
                out, due = self._claim(queues, limit)
                remaining = deadline - time.monotonic()
                if out or remaining <= 0:
                    return out
                if due is not None:
                    remaining = min(remaining, max(due - time.time(), 0.0) + 0.001)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), remaining)
                raise_if_cancelled()
        finally:
            with store.lock:
                store.waiters.discard(waiter)

    def _claim(self, queues: Sequence[str], limit: int) -> tuple[list[Delivery], float | None]:
        store = self._store
        now = time.time()
        lease_until = now + self.options.lease_seconds
        out: list[Delivery] = []
        with store.lock:
            store.promote(now)
            for queue in queues:
                heap = store.ready.get(queue)
                while heap and len(out) < limit:
                    _, _, msg = heapq.heappop(heap)
                    msg.delivered += 1
                    store.push_timed(msg, lease_until)
                    msg.owner = self._consumer
                    store.inflight[msg.id] = msg
                    self._held.add(msg.id)
                    out.append(Delivery(msg.envelope, queue, msg.id, msg.delivered > 1))
            return out, store.next_due()

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        """Forget acknowledged deliveries (a no-op for leases lost to another consumer)."""
        store = self._store
        with store.lock:
            for delivery in deliveries:
                self._held.discard(delivery.tag)
                if store.owned(delivery.tag, self._consumer) is not None:
                    msg = store.inflight.pop(delivery.tag)
                    msg.visible_at = -1.0  # makes its timed entry stale

    async def reject(self, delivery: Delivery, *, requeue: bool, reason: str = "") -> None:
        """Put a delivery back at the head of its queue, or dead-letter it with ``reason``."""
        store = self._store
        with store.lock:
            self._held.discard(delivery.tag)
            msg = store.owned(delivery.tag, self._consumer)
            if msg is None:
                return
            del store.inflight[msg.id]
            if requeue:
                store.push_ready(msg)
                store.wake()
            else:
                msg.visible_at = -1.0
                store.dead.setdefault(msg.queue, []).append((msg.envelope, reason))

    async def defer(self, delivery: Delivery, eta: float) -> None:
        """Hold a fetched message until ``eta``; it counts as acked by this consumer."""
        store = self._store
        with store.lock:
            self._held.discard(delivery.tag)
            msg = store.owned(delivery.tag, self._consumer)
            if msg is None:
                return
            del store.inflight[msg.id]
            msg.owner = None
            msg.delivered = 0
            store.push_timed(msg, eta)
            store.wake()

    async def maintain(self) -> None:
        """Renew the leases this consumer holds every third of ``lease_seconds``."""
        period = self.options.lease_seconds / 3
        while True:
            await asyncio.sleep(period)
            self._renew()

    def _renew(self) -> None:
        store = self._store
        until = time.time() + self.options.lease_seconds
        with store.lock:
            for tag in list(self._held):
                msg = store.owned(tag, self._consumer)
                if msg is None:
                    self._held.discard(tag)
                else:
                    store.push_timed(msg, until)

    # -- inspection --------------------------------------------------------
    async def queue_length(self, queue: str) -> int:
        """Ready messages in ``queue``."""
        return self.queue_length_sync(queue)

    def queue_length_sync(self, queue: str) -> int:
        """Sync face of :meth:`queue_length`."""
        store = self._store
        with store.lock:
            store.promote(time.time())
            return len(store.ready.get(queue, ()))

    async def purge(self, queue: str) -> int:
        """Drop the ready messages of ``queue`` (not delayed or in-flight ones)."""
        store = self._store
        with store.lock:
            store.promote(time.time())
            heap = store.ready.pop(queue, [])
            for _, _, msg in heap:
                msg.visible_at = -1.0
            return len(heap)

    async def dead_letters(self, queue: str) -> list[tuple[Envelope, str]]:
        """Messages dead-lettered from ``queue`` with their reasons, oldest first."""
        with self._store.lock:
            return list(self._store.dead.get(queue, ()))

    async def delayed(self, queues: Sequence[str], limit: int) -> list[tuple[str, float, Envelope]]:
        """ETA messages of ``queues`` held until due (not leased ones), earliest first."""
        wanted = set(queues)
        with self._store.lock:
            due = sorted((when, msg.id, msg) for when, _, msg in self._store.timed
                         if msg.visible_at == when and msg.owner is None and msg.queue in wanted)
        return [(msg.queue, when, msg.envelope) for when, _, msg in due[:limit]]

    # -- broadcast ---------------------------------------------------------
    async def broadcast(self, exchange: str, envelope: Envelope) -> None:
        """Hand ``envelope`` to every current subscriber of ``exchange`` whose keys match."""
        self.broadcast_sync(exchange, envelope)

    def broadcast_sync(self, exchange: str, envelope: Envelope) -> None:
        """Blocking :meth:`broadcast` (the same: nothing here waits)."""
        store = self._store
        with store.lock:
            subscribers = list(store.subscribers)
        for sub in subscribers:
            if sub.exchange == exchange and _virtual.matches_any(
                sub.patterns, envelope.routing_key
            ):
                with contextlib.suppress(RuntimeError):  # subscriber's loop closed
                    sub.loop.call_soon_threadsafe(sub.inbox.put_nowait, envelope)

    async def subscribe(
        self, exchange: str, binding_keys: Sequence[str], handler: OnBroadcast
    ) -> None:
        """Call ``handler`` for each broadcast on ``exchange`` matching ``binding_keys``
        (topic patterns; none means all) until cancelled."""
        sub = _Subscriber(
            exchange, tuple(binding_keys), asyncio.get_running_loop(), asyncio.Queue()
        )
        store = self._store
        with store.lock:
            store.subscribers.append(sub)
        try:
            while True:
                envelope = await sub.inbox.get()
                await _virtual.call_handler(handler, envelope)
        finally:
            with store.lock:
                store.subscribers.remove(sub)
