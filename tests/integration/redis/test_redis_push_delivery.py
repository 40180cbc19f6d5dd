"""Push delivery: a message published onto an empty list goes straight to a consumer
registered idle on it (into its in-flight hash, announced on its push channel),
with no wake-up and no FETCH; nothing is lost when the consumer dies, the
announcement is lost, or the worker stops (Redis broker)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from functools import partial

import pytest
import redis

from celeriac.protocol import keys
from celeriac.protocol.envelope import Envelope
from celeriac.protocol.kombu_json import encode_element
from celeriac.transports import _redis_scripts as lua
from celeriac.transports.redis import RedisTransport

pytestmark = pytest.mark.redis

Factory = Callable[..., Awaitable[RedisTransport]]


@pytest.fixture
def make(make_transport: Factory) -> Factory:
    """Transports whose leases outlast every test here unless a test says otherwise."""
    return partial(make_transport, lease=30.0)


def envelope(queue: str, body: bytes = b"[[], {}, {}]", priority: int | None = None) -> Envelope:
    task_id = str(uuid.uuid4())
    return Envelope(body=body, headers={"id": task_id, "task": "tests.t"},
                    correlation_id=task_id, routing_key=queue, priority=priority)


async def until(condition: Callable[[], bool], within: float = 10.0) -> None:
    end = time.monotonic() + within
    while not condition():
        assert time.monotonic() < end, "condition not reached in time"
        await asyncio.sleep(0.005)


def registered(raw: redis.Redis, consumer: RedisTransport) -> bool:
    return bool(raw.hexists(keys.IDLE_CONSUMERS_HASH, consumer.consumer_id))


async def go_idle(raw: redis.Redis, consumer: RedisTransport, queues: list[str]) -> None:
    """Fetch (finding nothing) until the consumer is registered idle on ``queues``."""
    end = time.monotonic() + 10.0
    while not registered(raw, consumer):
        assert time.monotonic() < end, "never registered idle"
        assert await consumer.fetch(queues, 4, 0.02) == []


def held(raw: redis.Redis, consumer: RedisTransport) -> dict[bytes, bytes]:
    return raw.hgetall(keys.inflight_key(consumer.consumer_id))  # type: ignore[return-value]


async def test_an_idle_consumer_gets_a_message_without_a_fetch(
        make: Factory, raw: redis.Redis) -> None:
    consumer, producer = await make(), await make()
    await go_idle(raw, consumer, ["q"])
    fetches = consumer.fetch_round_trips
    await producer.publish(envelope("q", b"[[1, 1], {}, {}]"))
    assert raw.llen("q") == 0  # never on the list: straight into the consumer's hash
    assert len(held(raw, consumer)) == 1
    await until(lambda: consumer.pushed_deliveries == 1)
    got = await consumer.fetch(["q"], 4, 1.0)
    assert [d.envelope.body for d in got] == [b"[[1, 1], {}, {}]"]
    assert got[0].queue == "q" and not got[0].redelivered
    assert consumer.fetch_round_trips == fetches  # no FETCH script ran for it
    await consumer.ack(got)
    assert held(raw, consumer) == {}


async def test_sync_publish_is_pushed_too(make: Factory, raw: redis.Redis) -> None:
    consumer, producer = await make(), await make()
    await go_idle(raw, consumer, ["q"])
    await asyncio.to_thread(producer.publish_sync, envelope("q"))
    await until(lambda: consumer.pushed_deliveries == 1)
    assert len(await consumer.fetch(["q"], 4, 1.0)) == 1


async def test_two_idle_consumers_get_one_message_each(make: Factory, raw: redis.Redis) -> None:
    first, second, producer = await make(), await make(), await make()
    await go_idle(raw, first, ["q"])
    await go_idle(raw, second, ["q"])
    await producer.publish(envelope("q", b"1"))
    await producer.publish(envelope("q", b"2"))
    await until(lambda: first.pushed_deliveries + second.pushed_deliveries == 2)
    assert (first.pushed_deliveries, second.pushed_deliveries) == (1, 1)
    bodies = {d.envelope.body for c in (first, second) for d in await c.fetch(["q"], 4, 1.0)}
    assert bodies == {b"1", b"2"}
    assert raw.llen("q") == 0


async def test_a_registration_lasts_as_long_as_the_room_left(
        make: Factory, raw: redis.Redis) -> None:
    consumer, producer = await make(), await make()
    await go_idle(raw, consumer, ["q"])  # fetch of 4, none taken: room for 4
    for i in range(6):
        await producer.publish(envelope("q", b"%d" % i))
    await until(lambda: consumer.pushed_deliveries == 4)
    assert raw.llen("q") == 2 and not registered(raw, consumer)
    got = await consumer.fetch(["q"], 10, 1.0)
    got += await consumer.fetch(["q"], 10, 1.0)
    assert sorted(d.envelope.body for d in got) == [b"%d" % i for i in range(6)]


async def test_a_busy_list_is_not_jumped(make: Factory, raw: redis.Redis) -> None:
    # A message already waits (a Celery producer pushes no wake-up): the next
    # one queues behind it instead of going to the idle consumer.
    consumer, producer = await make(poll=5.0), await make()
    await go_idle(raw, consumer, ["q"])
    raw.lpush("q", encode_element(envelope("q", b"first")))
    await producer.publish(envelope("q", b"second"))
    assert raw.llen("q") == 2 and consumer.pushed_deliveries == 0


async def test_priority_sub_lists_are_pushed_with_their_queue(
        make: Factory, raw: redis.Redis) -> None:
    consumer, producer = await make(), await make()
    await go_idle(raw, consumer, ["q"])
    await producer.publish(envelope("q", b"urgent", priority=9))
    await until(lambda: consumer.pushed_deliveries == 1)
    got = await consumer.fetch(["q"], 4, 1.0)
    assert [(d.queue, d.envelope.body) for d in got] == [("q", b"urgent")]
    assert got[0].tag.list_name == keys.priority_queue("q", 9)  # type: ignore[attr-defined]
    await consumer.reject(got[0], requeue=True)  # back on its sub-list, flagged
    assert raw.llen(keys.priority_queue("q", 9)) == 1
    again = await consumer.fetch(["q"], 4, 1.0)
    assert again[0].redelivered and again[0].envelope.body == b"urgent"


async def test_a_consumer_whose_lease_ran_out_is_skipped(
        make_transport: Factory, raw: redis.Redis) -> None:
    consumer = await make_transport(lease=0.3)
    producer = await make_transport(lease=30.0)
    await go_idle(raw, consumer, ["q"])
    score = raw.zscore(keys.LEASES_ZSET, consumer.consumer_id)
    assert score is not None

    def lapsed() -> bool:
        seconds, micros = raw.time()
        return seconds + micros / 1e6 > score

    await until(lapsed)  # nobody renews it: as if the consumer died
    await producer.publish(envelope("q"))
    assert raw.llen("q") == 1 and held(raw, consumer) == {}
    assert not registered(raw, consumer)  # the stale registration was dropped
    assert raw.zcard(keys.idle_consumers_prefix() + "q") == 0


async def test_a_registration_no_fetch_renewed_lapses(
        make_transport: Factory, raw: redis.Redis) -> None:
    # A consumer that stopped fetching (gone, or blocked) stops being handed
    # messages once its registration lapses, long before its lease does.
    consumer = await make_transport(lease=30.0, idle_registration_seconds=0.2)
    producer = await make_transport(lease=30.0)
    await go_idle(raw, consumer, ["q"])
    room = raw.hget(keys.IDLE_CONSUMERS_HASH, consumer.consumer_id)
    assert room is not None
    expires = float(room.split()[2])

    def lapsed() -> bool:
        seconds, micros = raw.time()
        return seconds + micros / 1e6 > expires

    await until(lapsed)
    await producer.publish(envelope("q"))
    assert raw.llen("q") == 1 and held(raw, consumer) == {}
    assert raw.zcard(keys.idle_consumers_prefix() + "q") == 0
    got = await consumer.fetch(["q"], 4, 1.0)  # the wake-up path, which registers anew
    assert len(got) == 1 and registered(raw, consumer)


_IDLE_CONSUMER = """
import asyncio, sys
from celeriac.transports.base import TransportOptions
from celeriac.transports.redis import RedisTransport
import redis
from celeriac.protocol import keys

async def main():
    options = TransportOptions(lease_seconds=1.0, poll_interval=5.0,
                               extra={"idle_registration_seconds": 60.0})
    t = RedisTransport(sys.argv[1], options)
    raw = redis.Redis.from_url(sys.argv[1])
    while not raw.hexists(keys.IDLE_CONSUMERS_HASH, t.consumer_id):
        await t.fetch(["q"], 4, 0.02)
    print(t.consumer_id, flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


async def test_a_consumer_killed_after_a_push_loses_nothing(
        make: Factory, raw: redis.Redis, redis_url: str) -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen([sys.executable, "-c", _IDLE_CONSUMER, redis_url],
                            stdout=subprocess.PIPE, env=env, text=True)
    try:
        assert proc.stdout is not None
        dead_id = (await asyncio.to_thread(proc.stdout.readline)).strip()
        assert dead_id
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    producer = await make()
    await producer.publish(envelope("q", b"pushed"))
    assert raw.llen("q") == 0  # handed to the dead consumer while its lease ran
    assert raw.hlen(keys.inflight_key(dead_id)) == 1
    survivor = await make(lease=1.0)
    maintaining = asyncio.create_task(survivor.maintain())
    try:
        got = await survivor.fetch(["q"], 4, 0.05)
        end = time.monotonic() + 15.0
        while not got:
            assert time.monotonic() < end, "the dead consumer's message never came back"
            got = await survivor.fetch(["q"], 4, 0.2)
    finally:
        maintaining.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await maintaining
    assert [d.envelope.body for d in got] == [b"pushed"] and got[0].redelivered
    assert not raw.hexists(keys.IDLE_CONSUMERS_HASH, dead_id)


def _pubsub_address(consumer: RedisTransport) -> str:
    wake = consumer._wake  # the test cuts this very connection
    assert wake is not None and wake._pubsub is not None
    connection = wake._pubsub.connection
    assert connection is not None
    host, port = connection._writer.get_extra_info("sockname")[:2]  # type: ignore[union-attr]
    return f"{host}:{port}"


async def test_a_push_whose_announcement_was_lost_is_read_back(
        make: Factory, raw: redis.Redis, caplog: pytest.LogCaptureFixture) -> None:
    consumer, producer = await make(poll=5.0), await make()
    await go_idle(raw, consumer, ["q"])
    op_keys, args = producer._plan([(envelope("q", b"lost"), None)])
    # Cut the consumer's pub/sub connection and publish in the same transaction:
    # the announcement goes to nobody, the message is in the consumer's hash.
    pipe = raw.pipeline(transaction=True)
    pipe.execute_command("CLIENT", "KILL", "ADDR", _pubsub_address(consumer))
    pipe.eval(lua.PUBLISH, len(op_keys), *op_keys, *args)
    pipe.execute()
    assert raw.llen("q") == 0 and len(held(raw, consumer)) == 1
    got = await consumer.fetch(["q"], 4, 10.0)
    assert [d.envelope.body for d in got] == [b"lost"]
    assert consumer.pushed_deliveries == 1
    assert "took 1 pushed message(s) whose announcement was lost" in caplog.text
    await consumer.ack(got)
    # Registered again once the channel is back, and pushes flow again.
    await go_idle(raw, consumer, ["q"])
    await producer.publish(envelope("q", b"after"))
    await until(lambda: consumer.pushed_deliveries == 2)
    assert [d.envelope.body for d in await consumer.fetch(["q"], 4, 1.0)] == [b"after"]


async def test_stop_fetching_gives_back_pushed_messages(
        make: Factory, raw: redis.Redis) -> None:
    consumer, producer = await make(), await make()
    await go_idle(raw, consumer, ["q"])
    await producer.publish(envelope("q", b"1"))
    await producer.publish(envelope("q", b"2"))
    await until(lambda: consumer.pushed_deliveries == 2)
    await consumer.stop_fetching()
    assert held(raw, consumer) == {} and not registered(raw, consumer)
    assert raw.llen("q") == 2
    await producer.publish(envelope("q", b"3"))  # nothing is pushed after the stop
    assert raw.llen("q") == 3 and held(raw, consumer) == {}


async def test_close_gives_back_what_was_pushed_meanwhile(
        make: Factory, raw: redis.Redis) -> None:
    consumer, producer = await make(), await make()
    await go_idle(raw, consumer, ["q"])
    await producer.publish(envelope("q", b"1"))
    assert len(held(raw, consumer)) == 1
    await consumer.close()
    assert raw.llen("q") == 1 and not registered(raw, consumer)
    assert raw.hlen(keys.inflight_key(consumer.consumer_id)) == 0


async def test_a_stream_of_pushes_switches_to_batched_fetches(
        make: Factory, raw: redis.Redis) -> None:
    consumer, producer = await make(), await make()
    await go_idle(raw, consumer, ["q"])  # room for 4
    for i in range(3):
        await producer.publish(envelope("q", b"%d" % i))
    await until(lambda: consumer.pushed_deliveries == 3)
    assert len(await consumer.fetch(["q"], 8, 1.0)) == 3  # taken together: a stream
    raw.lpush("q", encode_element(envelope("q", b"celery")))
    # The next FETCH takes what waits and drops the registration instead of
    # renewing it: messages now wait on the list for FETCHes to take together.
    assert len(await consumer.fetch(["q"], 8, 0)) == 1
    assert not registered(raw, consumer)
    assert await consumer.fetch(["q"], 8, 0) == []  # found nothing: idle again
    await go_idle(raw, consumer, ["q"])
    await producer.publish(envelope("q"))
    await until(lambda: consumer.pushed_deliveries == 4)


async def test_a_push_while_busy_marks_a_stream(make: Factory, raw: redis.Redis) -> None:
    consumer, producer = await make(), await make()
    await go_idle(raw, consumer, ["q"])
    await producer.publish(envelope("q", b"1"))
    first = await consumer.fetch(["q"], 8, 5.0)
    await producer.publish(envelope("q", b"2"))  # the first is not finished yet
    await until(lambda: consumer.pushed_deliveries == 2)
    assert len(await consumer.fetch(["q"], 8, 1.0)) == 1
    assert await consumer.fetch(["q"], 8, 0) == []  # this FETCH did not register again
    assert not registered(raw, consumer)
    await consumer.ack(first)


async def test_a_list_no_longer_polled_pushes_no_more(make: Factory, raw: redis.Redis) -> None:
    # cancel_consumer: the worker stops polling a list; messages for it must wait
    # on the list for other consumers, not be handed to this one.
    consumer, producer = await make(), await make()
    await go_idle(raw, consumer, ["keep", "drop"])
    assert await consumer.fetch(["keep"], 4, 0.02) == []  # polls "keep" only from now
    await producer.publish(envelope("drop", b"[[2], {}, {}]"))
    assert raw.llen("drop") == 1 and held(raw, consumer) == {}


async def test_a_message_pushed_from_a_list_just_dropped_goes_back(
        make: Factory, raw: redis.Redis) -> None:
    consumer, producer = await make(), await make()
    await go_idle(raw, consumer, ["keep", "drop"])
    await producer.publish(envelope("drop", b"[[3], {}, {}]"))
    await until(lambda: consumer.pushed_deliveries == 1)
    assert await consumer.fetch(["keep"], 4, 0.05) == []  # the push is not run here
    assert raw.llen("drop") == 1 and held(raw, consumer) == {}
    other = await make()
    got = await other.fetch(["drop"], 4, 1.0)
    assert [d.envelope.body for d in got] == [b"[[3], {}, {}]"]
