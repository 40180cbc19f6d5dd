"""Fewer round trips per task: acks riding with the next fetch, and no fetch
after a short one until a push announces work (Redis broker)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from functools import partial

import pytest
import redis
import redis.exceptions

from celeriac.errors import BrokerUnreachable
from celeriac.protocol import keys
from celeriac.protocol.envelope import Envelope
from celeriac.protocol.kombu_json import encode_element
from celeriac.transports.redis import RedisTransport

pytestmark = pytest.mark.redis

Factory = Callable[..., Awaitable[RedisTransport]]


@pytest.fixture
def make(make_transport: Factory) -> Factory:
    """Transports whose leases outlast every test here (nobody renews them)."""
    return partial(make_transport, lease=5.0)


def envelope(queue: str, body: bytes = b"[[], {}, {}]") -> Envelope:
    task_id = str(uuid.uuid4())
    return Envelope(body=body, headers={"id": task_id, "task": "tests.t"},
                    correlation_id=task_id, routing_key=queue)


async def until(condition: Callable[[], bool], within: float = 5.0) -> bool:
    end = time.monotonic() + within
    while not condition():
        if time.monotonic() > end:
            return False
        await asyncio.sleep(0.005)
    return True


def inflight(raw: redis.Redis, transport: RedisTransport) -> int:
    return int(raw.hlen(keys.inflight_key(transport.consumer_id)))


async def test_ack_soon_lands_without_another_call(make: Factory, raw: redis.Redis) -> None:
    consumer = await make()
    await consumer.publish(envelope("q"))
    got = await consumer.fetch(["q"], 1, 1.0)
    assert inflight(raw, consumer) == 1
    await consumer.ack_soon(got)
    # No fetch follows (an idle worker): the ack goes out on its own.
    assert await until(lambda: inflight(raw, consumer) == 0)


async def test_ack_soon_rides_with_the_next_fetch(make: Factory, raw: redis.Redis) -> None:
    consumer = await make()
    await consumer.publish_many([(envelope("q", b"%d" % i), None) for i in range(2)])
    first = await consumer.fetch(["q"], 1, 1.0)
    await consumer.ack_soon(first)
    second = await consumer.fetch(["q"], 1, 1.0)
    assert len(second) == 1
    held = raw.hkeys(keys.inflight_key(consumer.consumer_id))
    assert held == [second[0].tag.seq.encode()]  # type: ignore[attr-defined]
    await consumer.ack(second)
    assert inflight(raw, consumer) == 0


async def test_a_fetch_that_carries_the_acks_disarms_the_ack_timer(make: Factory) -> None:
    consumer = await make()
    await consumer.publish_many([(envelope("q", b"%d" % i), None) for i in range(2)])
    first = await consumer.fetch(["q"], 1, 1.0)
    await consumer.ack_soon(first)
    assert consumer._linger is not None  # armed: no fetch may come
    await consumer.fetch(["q"], 1, 1.0)
    assert consumer._linger is None  # the fetch took the acks: no HDEL of their own follows


async def test_acks_of_a_failed_fetch_still_go_out_on_their_own(
        make: Factory, raw: redis.Redis) -> None:
    consumer = await make()
    await consumer.publish(envelope("q"))
    got = await consumer.fetch(["q"], 1, 1.0)
    await consumer.ack_soon(got)
    real_script = consumer._script

    async def failing(*args: object) -> object:
        raise redis.exceptions.ConnectionError("injected: the fetch's reply was lost")

    consumer._script = failing  # type: ignore[method-assign]
    try:
        with pytest.raises(BrokerUnreachable):
            await consumer.fetch(["q"], 1, 0.0)
    finally:
        consumer._script = real_script  # type: ignore[method-assign]
    # The acks went back to the pending list and the timer sends them alone.
    assert await until(lambda: inflight(raw, consumer) == 0)


async def test_acked_soon_messages_are_not_given_back_on_close(
        make: Factory, raw: redis.Redis) -> None:
    consumer = await make()
    await consumer.publish_many([(envelope("q", b"%d" % i), None) for i in range(3)])
    got = await consumer.fetch(["q"], 3, 1.0)
    await consumer.ack_soon(got[:2])
    await consumer.close()
    assert raw.llen("q") == 1  # only the unacked one went back


async def test_after_a_short_fetch_a_push_wakes_the_next_one(make: Factory) -> None:
    # A long poll interval: only the wake-up can bring the message this fast.
    consumer, producer = await make(poll=5.0), await make()
    await producer.publish(envelope("q"))
    assert len(await consumer.fetch(["q"], 4, 1.0)) == 1  # short: the list is empty now
    waits = []
    for _ in range(5):
        waiting = asyncio.create_task(consumer.fetch(["q"], 4, 5.0))
        await asyncio.sleep(0.05)
        started = time.perf_counter()
        await producer.publish(envelope("q"))
        got = await waiting
        waits.append(time.perf_counter() - started)
        assert len(got) == 1
        await consumer.ack(got)
    assert sorted(waits)[2] < 0.02, waits


async def test_pushes_without_wake_ups_are_still_fetched_after_a_short_fetch(
        make: Factory, raw: redis.Redis) -> None:
    # Celery producers LPUSH and publish no wake-up: the short poll bound finds
    # their messages, and once one was found that way, a short fetch is again
    # followed by another at once.
    consumer, producer = await make(poll=0.05), await make()
    await producer.publish(envelope("q"))
    assert len(await consumer.fetch(["q"], 4, 1.0)) == 1
    for i in range(5):
        waiting = asyncio.create_task(consumer.fetch(["q"], 4, 5.0))
        await asyncio.sleep(0.02)
        raw.lpush("q", encode_element(envelope("q", b"%d" % i)))
        got = await asyncio.wait_for(waiting, 3.0)
        assert len(got) == 1
        await consumer.ack(got)


async def test_a_wake_up_that_comes_with_pushes_is_not_lost(make: Factory) -> None:
    # Pushes run out of room: the next publish lands on the list and its wake-up
    # arrives with the pushes. Returning the pushes uses that wake-up up, so the
    # fetch after them must look at the list at once -- not wait, find the message
    # unannounced, and take our own producer for one that publishes no wake-ups
    # (which would add a fetch round trip to every task for the next 30 s).
    consumer, producer = await make(poll=5.0), await make()
    await consumer.fetch(["q"], 2, 0.05)  # subscribes to wake-ups and pushes
    assert await until(lambda: consumer._wake is not None and consumer._wake.push_ready.is_set())
    assert await consumer.fetch(["q"], 2, 0.05) == []  # registered idle: room for 2 pushes
    for i in range(3):
        await producer.publish(envelope("q", b"[[%d], {}, {}]" % i))
    assert await until(lambda: len(consumer._pushed.buffer) == 2
                       and consumer._wake is not None and consumer._wake._lists_woken)
    pushed = await consumer.fetch(["q"], 2, 1.0)
    listed = await consumer.fetch(["q"], 2, 1.0)
    assert [d.envelope.body for d in pushed + listed] == \
        [b"[[%d], {}, {}]" % i for i in range(3)]
    assert consumer.pushed_deliveries == 2
    assert consumer._silent_until == 0.0  # no producer was taken for a silent one
