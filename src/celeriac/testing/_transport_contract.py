"""The behaviour every transport must show; see :mod:`celeriac.testing.contracts`."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest

from celeriac.protocol.envelope import Envelope
from celeriac.transports.base import Delivery, QueueSpec, Transport, TransportOptions
from celeriac.transports.registry import transport_for_url

__all__ = ["TransportContract", "TransportFactory"]

TransportFactory = Callable[[], Awaitable[Transport]]

#: The longest any single contract check waits for something that should happen.
DEADLINE = 5.0


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


class TransportContract:
    """Reusable pytest tests for a :class:`~celeriac.transports.base.Transport`.

    Subclass it in a test module as ``class TestMyTransport(TransportContract)``
    and override :meth:`make_url`. Every test uses fresh queue names, so the
    broker may be shared. Override ``leases = False`` for brokers that return
    an unacked message when the consumer goes away rather than when a lease
    runs out (AMQP); the redelivery test then closes the consumer instead.
    """

    #: Unacked messages come back when a lease runs out (else: when the consumer closes).
    leases: ClassVar[bool] = True
    #: Lease length used by the tests: short, so that redelivery tests are quick.
    lease_seconds: ClassVar[float] = 0.5
    #: Envelope fields a round trip must preserve.
    preserved_fields: ClassVar[tuple[str, ...]] = (
        "body",
        "content_type",
        "content_encoding",
        "headers",
        "correlation_id",
        "reply_to",
        "routing_key",
    )

    # -- hooks ---------------------------------------------------------------
    def make_url(self, tmp_path: Path) -> str:
        """The broker URL the tests use (override)."""
        raise TypeError(f"{type(self).__name__} must define make_url() (TransportContract)")

    def transport_options(self) -> TransportOptions:
        """Options for every transport the tests build."""
        return TransportOptions(lease_seconds=self.lease_seconds, poll_interval=0.05)

    def make_transport(self, url: str, options: TransportOptions) -> Transport:
        """Build one transport (default: through the URL registry)."""
        return transport_for_url(url, options)

    # -- fixtures --------------------------------------------------------------
    @pytest.fixture
    def broker_url(self, tmp_path: Path) -> str:
        """The URL from :meth:`make_url`."""
        return self.make_url(tmp_path)

    @pytest.fixture
    async def transport_factory(self, broker_url: str) -> AsyncIterator[TransportFactory]:
        """Builds connected transports on the same broker; closes them afterwards."""
        made: list[Transport] = []

        async def make() -> Transport:
            transport = self.make_transport(broker_url, self.transport_options())
            made.append(transport)
            await transport.connect()
            return transport

        yield make
        for transport in made:
            await transport.close()
            transport.close_sync()

    @pytest.fixture
    async def transport(self, transport_factory: TransportFactory) -> Transport:
        """One connected transport."""
        return await transport_factory()

    # -- helpers ---------------------------------------------------------------
    async def queues(self, transport: Transport, count: int = 1) -> list[str]:
        """Declare ``count`` fresh queues (priority-capable) and return their names."""
        names = [_unique("contract") for _ in range(count)]
        await transport.declare(
            [QueueSpec(name=name, routing_key=name, max_priority=10) for name in names]
        )
        return names

    @staticmethod
    def envelope(queue: str, body: bytes = b"[[], {}, {}]", **kwargs: Any) -> Envelope:
        """A task-like envelope for ``queue`` on the default exchange."""
        task_id = str(uuid.uuid4())
        fields: dict[str, Any] = {
            "headers": {"id": task_id, "task": "contract.task", "retries": 0},
            "correlation_id": task_id,
            "reply_to": "reply-queue",
            "routing_key": queue,
            "delivery_tag": str(uuid.uuid4()),
        }
        fields.update(kwargs)
        return Envelope(body=body, **fields)

    @staticmethod
    async def fetch_n(
        transport: Transport, queues: Sequence[str], n: int, deadline: float = DEADLINE
    ) -> list[Delivery]:
        """Fetch until ``n`` deliveries arrived or ``deadline`` passed."""
        out: list[Delivery] = []
        end = time.monotonic() + deadline
        while len(out) < n and time.monotonic() < end:
            out += await transport.fetch(queues, n - len(out), min(0.5, end - time.monotonic()))
        return out

    @staticmethod
    async def eventually(check: Callable[[], Awaitable[bool]], deadline: float = DEADLINE) -> None:
        """Poll ``check`` until true; fail after ``deadline`` seconds."""
        end = time.monotonic() + deadline
        while not await check():
            assert time.monotonic() < end, "condition not reached in time"
            await asyncio.sleep(0.02)

    # -- publish / fetch -------------------------------------------------------
    async def test_publish_fetch_round_trip(self, transport: Transport) -> None:
        (queue,) = await self.queues(transport)
        sent = self.envelope(queue, body=b'{"x": "\xc3\xa9\x00"}', content_encoding="utf-8")
        await transport.publish(sent)
        (got,) = await self.fetch_n(transport, [queue], 1)
        for name in self.preserved_fields:
            assert getattr(got.envelope, name) == getattr(sent, name), name
        assert got.queue == queue
        assert not got.redelivered
        await transport.ack([got])

    async def test_fifo_within_a_priority(self, transport: Transport) -> None:
        (queue,) = await self.queues(transport)
        for i in range(10):
            await transport.publish(self.envelope(queue, body=str(i).encode()))
        got = await self.fetch_n(transport, [queue], 10)
        assert [d.envelope.body for d in got] == [str(i).encode() for i in range(10)]
        await transport.ack(got)

    async def test_higher_priority_first(self, transport: Transport) -> None:
        (queue,) = await self.queues(transport)
        for prio in (1, 5, 3, 9, 0):
            await transport.publish(self.envelope(queue, body=str(prio).encode(), priority=prio))
        got = await self.fetch_n(transport, [queue], 5)
        bodies = [d.envelope.body for d in got]
        if transport.supports_priority:
            assert bodies == [b"9", b"5", b"3", b"1", b"0"]
        else:
            assert sorted(bodies) == [b"0", b"1", b"3", b"5", b"9"]
        await transport.ack(got)

    async def test_earlier_queue_preferred(self, transport: Transport) -> None:
        first, second = await self.queues(transport, 2)
        await transport.publish(self.envelope(second, body=b"second"))
        await transport.publish(self.envelope(first, body=b"first"))
        await self.eventually(lambda: _has(transport, first, 1))
        got = await self.fetch_n(transport, [first, second], 2)
        assert [(d.queue, d.envelope.body) for d in got] == [
            (first, b"first"),
            (second, b"second"),
        ]
        await transport.ack(got)

    async def test_fetch_respects_limit(self, transport: Transport) -> None:
        (queue,) = await self.queues(transport)
        await transport.publish_many([(self.envelope(queue), None) for _ in range(5)])
        got = await transport.fetch([queue], 2, DEADLINE)
        assert 1 <= len(got) <= 2
        rest = await self.fetch_n(transport, [queue], 5 - len(got))
        assert len(got) + len(rest) == 5
        await transport.ack(got + rest)

    async def test_publish_many(self, transport: Transport) -> None:
        (queue,) = await self.queues(transport)
        await transport.publish_many(
            [(self.envelope(queue, body=b"%d" % i), None) for i in range(50)]
        )
        got = await self.fetch_n(transport, [queue], 50)
        assert sorted(int(d.envelope.body) for d in got) == list(range(50))
        await transport.ack(got)

    async def test_sync_publish_then_async_fetch(self, transport: Transport) -> None:
        (queue,) = await self.queues(transport)
        transport.declare_sync([QueueSpec(name=queue, routing_key=queue, max_priority=10)])
        await asyncio.to_thread(transport.publish_sync, self.envelope(queue, body=b"one"))
        await asyncio.to_thread(
            transport.publish_many_sync, [(self.envelope(queue, body=b"two"), None)]
        )
        got = await self.fetch_n(transport, [queue], 2)
        assert sorted(d.envelope.body for d in got) == [b"one", b"two"]
        await transport.ack(got)

    async def test_fetch_timeout_returns_empty_in_bounded_time(self, transport: Transport) -> None:
        (queue,) = await self.queues(transport)
        started = time.monotonic()
        assert await transport.fetch([queue], 10, 0.3) == []
        assert 0.25 <= time.monotonic() - started < 2.0

    async def test_waiting_fetch_wakes_on_publish(
        self, transport_factory: TransportFactory
    ) -> None:
        consumer, producer = await transport_factory(), await transport_factory()
        (queue,) = await self.queues(consumer)
        waiting = asyncio.create_task(consumer.fetch([queue], 1, DEADLINE))
        await asyncio.sleep(0.1)
        started = time.monotonic()
        await producer.publish(self.envelope(queue))
        got = await waiting
        assert len(got) == 1
        assert time.monotonic() - started < 2.0
        await consumer.ack(got)

    async def test_sync_publish_from_a_thread_wakes_a_waiting_fetch(
        self, transport: Transport
    ) -> None:
        (queue,) = await self.queues(transport)
        waiting = asyncio.create_task(transport.fetch([queue], 1, DEADLINE))
        await asyncio.sleep(0.1)
        started = time.monotonic()
        await asyncio.to_thread(transport.publish_sync, self.envelope(queue, body=b"threaded"))
        got = await waiting
        assert [d.envelope.body for d in got] == [b"threaded"]
        assert time.monotonic() - started < 2.0
        await transport.ack(got)

    async def test_two_consumers_share_without_duplicates(
        self, transport_factory: TransportFactory
    ) -> None:
        one, two = await transport_factory(), await transport_factory()
        (queue,) = await self.queues(one)
        await one.publish_many([(self.envelope(queue, body=b"%d" % i), None) for i in range(40)])
        seen: list[bytes] = []

        async def drain(consumer: Transport) -> None:
            end = time.monotonic() + DEADLINE
            while len(seen) < 40 and time.monotonic() < end:
                got = await consumer.fetch([queue], 4, 0.2)
                seen.extend(d.envelope.body for d in got)
                await consumer.ack(got)

        await asyncio.gather(drain(one), drain(two))
        assert sorted(int(b) for b in seen) == list(range(40))

    # -- acks, leases, rejects ----------------------------------------------
    async def test_ack_removes_for_good(self, transport_factory: TransportFactory) -> None:
        consumer, other = await transport_factory(), await transport_factory()
        (queue,) = await self.queues(consumer)
        await consumer.publish(self.envelope(queue))
        got = await self.fetch_n(consumer, [queue], 1)
        await consumer.ack(got)
        await consumer.close()
        assert await other.fetch([queue], 1, self.lease_seconds * 2) == []
        assert await other.queue_length(queue) == 0

    async def test_unacked_comes_back_redelivered(
        self, transport_factory: TransportFactory
    ) -> None:
        consumer, other = await transport_factory(), await transport_factory()
        (queue,) = await self.queues(consumer)
        sent = self.envelope(queue, body=b"lost")
        await consumer.publish(sent)
        (first,) = await self.fetch_n(consumer, [queue], 1)
        assert not first.redelivered
        if not self.leases:
            await consumer.close()
        # The other consumer's maintenance may be what restores expired leases.
        upkeep = asyncio.create_task(other.maintain())
        try:
            (again,) = await self.fetch_n(other, [queue], 1, self.lease_seconds + DEADLINE)
        finally:
            upkeep.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await upkeep
        assert again.envelope.body == b"lost"
        assert again.redelivered
        await other.ack([again])

    async def test_maintain_keeps_leases_alive(self, transport_factory: TransportFactory) -> None:
        consumer, other = await transport_factory(), await transport_factory()
        (queue,) = await self.queues(consumer)
        await consumer.publish(self.envelope(queue))
        got = await self.fetch_n(consumer, [queue], 1)
        upkeep = asyncio.create_task(consumer.maintain())
        try:
            assert await other.fetch([queue], 1, self.lease_seconds * 2.5) == []
        finally:
            upkeep.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await upkeep
        await consumer.ack(got)

    async def test_reject_requeue_comes_back(self, transport: Transport) -> None:
        (queue,) = await self.queues(transport)
        await transport.publish(self.envelope(queue, body=b"again"))
        (got,) = await self.fetch_n(transport, [queue], 1)
        await transport.reject(got, requeue=True)
        started = time.monotonic()
        (again,) = await self.fetch_n(transport, [queue], 1)
        assert again.envelope.body == b"again"
        assert time.monotonic() - started < self.lease_seconds + 2.0
        await transport.ack([again])

    async def test_reject_dead_letters_with_reason(self, transport: Transport) -> None:
        (queue,) = await self.queues(transport)
        sent = self.envelope(queue, body=b"poison")
        await transport.publish(sent)
        (got,) = await self.fetch_n(transport, [queue], 1)
        await transport.reject(got, requeue=False, reason="undecodable body")
        assert await transport.fetch([queue], 1, self.lease_seconds * 2) == []
        dead = await transport.dead_letters(queue)
        assert [(env.body, reason) for env, reason in dead] == [(b"poison", "undecodable body")]

    # -- delayed messages ------------------------------------------------------
    async def test_eta_not_fetched_before_due(self, transport: Transport) -> None:
        (queue,) = await self.queues(transport)
        eta = time.time() + 0.6
        await transport.publish(self.envelope(queue, body=b"later"), eta=eta)
        if not transport.supports_delayed:
            assert len(await self.fetch_n(transport, [queue], 1)) == 1
            return
        assert await transport.fetch([queue], 1, 0.2) == []
        (got,) = await self.fetch_n(transport, [queue], 1)
        assert time.time() >= eta - 0.01
        assert got.envelope.body == b"later"
        await transport.ack([got])

    async def test_defer_holds_until_eta(self, transport: Transport) -> None:
        if not transport.supports_delayed:
            return  # the worker keeps ETA messages itself on such brokers
        (queue,) = await self.queues(transport)
        await transport.publish(self.envelope(queue, body=b"deferred"))
        (got,) = await self.fetch_n(transport, [queue], 1)
        eta = time.time() + 0.6
        await transport.defer(got, eta)
        assert await transport.fetch([queue], 1, 0.2) == []
        (again,) = await self.fetch_n(transport, [queue], 1)
        assert time.time() >= eta - 0.01
        assert again.envelope.body == b"deferred"
        await transport.ack([again])

    # -- inspection --------------------------------------------------------------
    async def test_queue_length_and_purge(self, transport: Transport) -> None:
        (queue,) = await self.queues(transport)
        await transport.publish_many([(self.envelope(queue), None) for _ in range(3)])
        await self.eventually(lambda: _has(transport, queue, 3))
        assert await asyncio.to_thread(transport.queue_length_sync, queue) == 3
        assert await transport.purge(queue) == 3
        assert await transport.queue_length(queue) == 0
        assert await transport.fetch([queue], 1, 0.1) == []

    # -- routing -----------------------------------------------------------------
    async def test_direct_exchange_routes_by_key(self, transport: Transport) -> None:
        exchange, queue, other = _unique("ex"), _unique("contract"), _unique("contract")
        await transport.declare(
            [
                QueueSpec(name=queue, exchange=exchange, routing_key="red"),
                QueueSpec(name=other, exchange=exchange, routing_key="blue"),
            ]
        )
        await transport.publish(self.envelope("red", exchange=exchange, body=b"r"))
        (got,) = await self.fetch_n(transport, [queue], 1)
        assert got.envelope.body == b"r"
        assert await transport.fetch([other], 1, 0.2) == []
        await transport.ack([got])

    async def test_topic_exchange_patterns(self, transport: Transport) -> None:
        exchange, star, hash_ = _unique("ex"), _unique("contract"), _unique("contract")
        await transport.declare(
            [
                QueueSpec(name=star, exchange=exchange, exchange_type="topic", routing_key="*.b"),
                QueueSpec(name=hash_, exchange=exchange, exchange_type="topic", routing_key="a.#"),
            ]
        )
        await transport.publish(self.envelope("a.b", exchange=exchange, body=b"both"))
        await transport.publish(self.envelope("a.c.d", exchange=exchange, body=b"hash"))
        got_hash = await self.fetch_n(transport, [hash_], 2)
        got_star = await self.fetch_n(transport, [star], 1)
        assert sorted(d.envelope.body for d in got_hash) == [b"both", b"hash"]
        assert [d.envelope.body for d in got_star] == [b"both"]
        assert await transport.fetch([star], 1, 0.2) == []
        await transport.ack(got_hash + got_star)

    async def test_fanout_exchange_copies_to_all(self, transport: Transport) -> None:
        exchange = _unique("ex")
        names = [_unique("contract") for _ in range(3)]
        await transport.declare(
            [QueueSpec(name=n, exchange=exchange, exchange_type="fanout") for n in names]
        )
        await transport.publish(self.envelope("ignored", exchange=exchange, body=b"all"))
        for name in names:
            (got,) = await self.fetch_n(transport, [name], 1)
            assert got.envelope.body == b"all"
            await transport.ack([got])

    # -- broadcast ---------------------------------------------------------------
    async def test_broadcast_reaches_every_subscriber(
        self, transport_factory: TransportFactory
    ) -> None:
        sender = await transport_factory()
        subscribers = [await transport_factory() for _ in range(2)]
        exchange = _unique("bcast")
        inboxes: list[list[bytes]] = [[], []]
        tasks = [
            asyncio.create_task(sub.subscribe(exchange, ["#"], inbox.append_envelope))
            for sub, inbox in zip(subscribers, map(_Inbox, inboxes), strict=True)
        ]
        try:
            await _until_subscribed(sender, exchange, "probe", inboxes)
            await sender.broadcast(exchange, self.envelope("worker.ping", body=b"ping"))
            await self.eventually(lambda: _all_have(inboxes, b"ping"))
        finally:
            await _cancel(tasks)

    async def test_broadcast_binding_keys_filter(self, transport_factory: TransportFactory) -> None:
        sender, sub = await transport_factory(), await transport_factory()
        exchange = _unique("bcast")
        inbox: list[bytes] = []
        task = asyncio.create_task(
            sub.subscribe(exchange, ["task.*"], _Inbox(inbox).append_envelope)
        )
        try:
            await _until_subscribed(sender, exchange, "task.probe", [inbox])
            await sender.broadcast(exchange, self.envelope("worker.online", body=b"worker"))
            await sender.broadcast(exchange, self.envelope("task.sent", body=b"task"))
            await self.eventually(lambda: _all_have([inbox], b"task"))
            assert b"worker" not in inbox
        finally:
            await _cancel([task])

    # -- lifecycle ---------------------------------------------------------------
    async def test_close_is_idempotent(self, transport: Transport) -> None:
        (queue,) = await self.queues(transport)
        transport.publish_sync(self.envelope(queue))
        await transport.close()
        await transport.close()
        transport.close_sync()
        transport.close_sync()


class _Inbox:
    def __init__(self, bodies: list[bytes]) -> None:
        self.bodies = bodies

    def append_envelope(self, envelope: Envelope) -> None:
        self.bodies.append(envelope.body)


async def _has(transport: Transport, queue: str, n: int) -> bool:
    return await transport.queue_length(queue) >= n


async def _all_have(inboxes: list[list[bytes]], body: bytes) -> bool:
    return all(body in inbox for inbox in inboxes)


async def _until_subscribed(
    sender: Transport, exchange: str, key: str, inboxes: list[list[bytes]]
) -> None:
    # A subscription starts some time after its task does; broadcasts sent
    # before that are (correctly) not seen, so probe until every inbox got one.
    end = time.monotonic() + DEADLINE
    while not all(b"probe" in inbox for inbox in inboxes):
        assert time.monotonic() < end, "subscribers never received a broadcast"
        await sender.broadcast(exchange, Envelope(body=b"probe", routing_key=key))
        await asyncio.sleep(0.05)


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
