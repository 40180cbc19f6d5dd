"""What the Redis broker does beyond the contract: Celery's wire, leases, ETA, faults."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import redis

from celeriac.errors import OperationalError
from celeriac.protocol import keys
from celeriac.protocol.envelope import Envelope
from celeriac.transports import _redis_sync_script
from celeriac.transports.base import Delivery, TransportOptions
from celeriac.transports.redis import RedisTransport

pytestmark = pytest.mark.redis

VECTORS = Path("/work/shared/protocol/vectors")
Factory = Callable[..., Awaitable[RedisTransport]]


@pytest.fixture
def make(make_transport: Factory) -> Factory:
    return make_transport


def envelope(queue: str, body: bytes = b"[[], {}, {}]") -> Envelope:
    task_id = str(uuid.uuid4())
    return Envelope(
        body=body,
        headers={"id": task_id, "task": "tests.t"},
        correlation_id=task_id,
        routing_key=queue,
    )


async def fetch_all(transport: RedisTransport, queue: str, n: int) -> list[Delivery]:
    out: list[Delivery] = []
    end = time.monotonic() + 5.0
    while len(out) < n and time.monotonic() < end:
        out += await transport.fetch([queue], n - len(out), 0.5)
    return out


@contextlib.asynccontextmanager
async def running(*coros: Awaitable[None]) -> AsyncIterator[None]:
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


# -- Celery's wire ------------------------------------------------------------------


async def test_celery_elements_are_fetched_in_celery_priority_order(
    make: Factory, raw: redis.Redis
) -> None:
    messages = json.loads((VECTORS / "redis_priority.json").read_text())["messages"]
    for message in messages:
        raw.lpush(message["redis_list_key"], message["raw_list_element"])
    consumer = await make()
    got = await fetch_all(consumer, "celery", len(messages))
    assert len(got) == len(messages)
    assert {d.envelope.headers["task"] for d in got} == {"tasks.add"}
    priorities = [d.envelope.priority or 0 for d in got]
    assert [keys.priority_step(p) for p in priorities] == sorted(
        keys.priority_step(p) for p in priorities
    )
    assert all(d.queue == "celery" for d in got)
    await consumer.ack(got)


async def test_what_we_publish_is_what_a_celery_worker_reads(
    make: Factory, raw: redis.Redis, redis_url: str
) -> None:
    producer = await make()
    body = b'[[2, 3], {}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]'
    sent = envelope("celery", body)
    await asyncio.to_thread(producer.publish_sync, sent)
    element = json.loads(raw.lindex("celery", 0))
    assert base64.b64decode(element["body"]) == body
    assert element["properties"]["delivery_info"] == {"exchange": "", "routing_key": "celery"}
    assert raw.smembers(keys.binding_set_key("celery")) == {
        keys.binding_member("celery", "", "celery").encode()
    }

    import kombu  # a Celery worker's consumer, reading the same list

    with kombu.Connection(redis_url) as connection:
        queue = connection.SimpleQueue("celery")
        message = queue.get(timeout=5)
        assert message.payload == [[2, 3], {}, {"callbacks": None, "errbacks": None,
                                                "chain": None, "chord": None}]  # fmt: skip
        assert message.headers["task"] == "tests.t"
        message.ack()
        queue.close()


# -- leases ---------------------------------------------------------------------------


async def test_dead_consumers_messages_come_back_within_the_lease(make: Factory) -> None:
    abandoned, survivor = await make(lease=1.0), await make(lease=1.0)
    await abandoned.publish_many([(envelope("q", b"%d" % i), None) for i in range(3)])
    taken = await fetch_all(abandoned, "q", 3)
    assert len(taken) == 3
    started = time.monotonic()
    async with running(survivor.maintain()):
        again = await fetch_all(survivor, "q", 3)
    assert [d.envelope.body for d in again] == [b"0", b"1", b"2"]  # fetch order kept
    assert all(d.redelivered for d in again)
    assert time.monotonic() - started < 1.0 + 2.0
    await survivor.ack(again)


async def test_two_restorers_racing_restore_once(make: Factory, raw: redis.Redis) -> None:
    abandoned = await make(lease=0.3)
    await abandoned.publish_many([(envelope("q", b"%d" % i), None) for i in range(20)])
    assert len(await fetch_all(abandoned, "q", 20)) == 20
    restorers = [await make(lease=0.3) for _ in range(3)]
    async with running(*(r.maintain() for r in restorers)):
        end = time.monotonic() + 5
        while raw.llen("q") < 20 and time.monotonic() < end:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # a duplicate restore would show up now
    assert raw.llen("q") == 20
    bodies = [base64.b64decode(json.loads(e)["body"]) for e in raw.lrange("q", 0, -1)]
    assert sorted(int(b) for b in bodies) == list(range(20))


# -- ETA ------------------------------------------------------------------------------


async def test_delayed_messages_move_exactly_once_with_concurrent_maintainers(
    make: Factory, raw: redis.Redis
) -> None:
    producer = await make()
    eta = time.time() + 0.4
    await producer.publish_many([(envelope("q", b"%d" % i), eta) for i in range(50)])
    assert raw.llen("q") == 0
    assert raw.zcard(keys.DELAYED_ZSET) == 50
    maintainers = [await make(lease=0.3) for _ in range(3)]
    async with running(*(m.maintain() for m in maintainers)):
        end = time.monotonic() + 5
        while raw.zcard(keys.DELAYED_ZSET) and time.monotonic() < end:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
    assert time.time() >= eta
    got = await fetch_all(producer, "q", 50)
    assert sorted(int(d.envelope.body) for d in got) == list(range(50))
    assert raw.llen("q") == 0
    await producer.ack(got)


async def test_celery_eta_message_deferred_survives_the_consumer(
    make: Factory, raw: redis.Redis
) -> None:
    first, second = await make(), await make()
    await first.publish(envelope("q", b"eta"))
    (got,) = await fetch_all(first, "q", 1)
    await first.defer(got, time.time() + 0.3)
    await first.close()  # a restart: nothing of it is held in memory
    assert raw.zcard(keys.DELAYED_ZSET) == 1
    (again,) = await fetch_all(second, "q", 1)
    assert again.envelope.body == b"eta"
    await second.ack([again])
    assert await second.fetch(["q"], 1, 0.3) == []


# -- bad input ------------------------------------------------------------------------


async def test_garbage_is_dead_lettered_and_logged(
    make: Factory, raw: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    consumer = await make()
    bad_b64 = json.dumps({"body": "!!!", "properties": {"body_encoding": "base64"}})
    raw.lpush("q", b"\xffnot json at all", bad_b64)
    await consumer.publish(envelope("q", b"good"))
    with caplog.at_level(logging.ERROR, logger="celeriac.transports.redis"):
        got = await fetch_all(consumer, "q", 1)
    assert [d.envelope.body for d in got] == [b"good"]
    dead = await consumer.dead_letters("q")
    assert len(dead) == 2
    assert dead[0][0].body == b"\xffnot json at all"
    assert "not JSON" in dead[0][1]
    assert "base64" in dead[1][1]
    lines = [r.getMessage() for r in caplog.records]
    assert any("'q'" in line and "not json" in line for line in lines)
    assert raw.hlen(keys.inflight_key(consumer.consumer_id)) == 1  # only the good one
    await consumer.ack(got)


# -- connections -------------------------------------------------------------------------


def kill_clients_of_db(raw: redis.Redis, db: int) -> int:
    """Kill the connections using ``db`` (ours only: the server is shared)."""
    killed = 0
    for client in raw.client_list():
        if int(client["db"]) == db:
            with contextlib.suppress(redis.ResponseError):
                killed += raw.client_kill_filter(_id=client["id"], skipme=True)
    return killed


async def test_reconnects_after_its_connections_are_killed(
    make: Factory, raw: redis.Redis, redis_db: int
) -> None:
    consumer, producer = await make(), await make()
    await producer.publish(envelope("q", b"before"))
    (got,) = await fetch_all(consumer, "q", 1)
    await consumer.ack([got])
    waiting = asyncio.create_task(consumer.fetch(["q"], 1, 5.0))
    await asyncio.sleep(0.1)
    assert kill_clients_of_db(raw, redis_db) > 0
    await asyncio.to_thread(producer.publish_sync, envelope("q", b"after"))
    got2 = await waiting or await fetch_all(consumer, "q", 1)
    assert [d.envelope.body for d in got2] == [b"after"]
    await consumer.ack(got2)


async def test_sync_publish_replaces_a_connection_closed_while_idle_without_a_retry(
    make: Factory, raw: redis.Redis, redis_db: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The sync publisher keeps one connection between calls; one that sat idle
    # longer than IDLE_CHECK_SECONDS is checked before use and, if the server
    # closed it meanwhile, replaced: no error, no retry. (0: every call is
    # "after a pause".)
    monkeypatch.setattr(_redis_sync_script, "IDLE_CHECK_SECONDS", 0.0)
    producer = await make(retry=False)
    await asyncio.to_thread(producer.publish_sync, envelope("q", b"one"))
    assert kill_clients_of_db(raw, redis_db) > 0
    await asyncio.to_thread(producer.publish_sync, envelope("q", b"two"))
    consumer = await make()
    got = await fetch_all(consumer, "q", 2)
    assert sorted(d.envelope.body for d in got) == [b"one", b"two"]
    await consumer.ack(got)


async def test_sync_publish_right_after_its_connection_was_closed_is_retried_once(
    make: Factory, raw: redis.Redis, redis_db: int, caplog: pytest.LogCaptureFixture
) -> None:
    # Within IDLE_CHECK_SECONDS of its last use the connection is used unchecked:
    # one the server closed meanwhile fails the call when no reply comes. The
    # server closed it before it could read the command, so the retry policy
    # sends it again on a new connection and it is queued exactly once.
    producer = await make()
    await asyncio.to_thread(producer.publish_sync, envelope("q", b"one"))
    assert kill_clients_of_db(raw, redis_db) > 0
    with caplog.at_level(logging.WARNING, logger="celeriac.transports.redis"):
        await asyncio.to_thread(producer.publish_sync, envelope("q", b"two"))
    assert any("retrying" in r.getMessage() for r in caplog.records)
    consumer = await make()
    got = await fetch_all(consumer, "q", 2)
    assert sorted(d.envelope.body for d in got) == [b"one", b"two"]
    assert await consumer.queue_length("q") == 0  # no second copy
    await consumer.ack(got)


async def test_sync_publish_without_retries_reports_the_closed_connection_and_queues_nothing(
    make: Factory, raw: redis.Redis, redis_db: int
) -> None:
    producer = await make(retry=False)
    await asyncio.to_thread(producer.publish_sync, envelope("q", b"one"))
    assert kill_clients_of_db(raw, redis_db) > 0
    with pytest.raises(OperationalError, match="before its reply"):
        await asyncio.to_thread(producer.publish_sync, envelope("q", b"two"))
    await asyncio.to_thread(producer.publish_sync, envelope("q", b"three"))  # a new connection
    consumer = await make()
    got = await fetch_all(consumer, "q", 2)
    assert sorted(d.envelope.body for d in got) == [b"one", b"three"]
    assert await consumer.queue_length("q") == 0
    await consumer.ack(got)


async def test_sync_publish_from_many_threads_at_once(make: Factory) -> None:
    producer = await make()

    def send(start: int) -> None:
        for i in range(start, start + 50):
            producer.publish_sync(envelope("q", b"%d" % i))

    await asyncio.gather(*(asyncio.to_thread(send, 50 * k) for k in range(4)))
    consumer = await make()
    got = await fetch_all(consumer, "q", 200)
    assert sorted(int(d.envelope.body) for d in got) == list(range(200))
    await consumer.ack(got)


async def test_publish_to_an_unreachable_redis_names_the_masked_url() -> None:
    options = TransportOptions(extra={"max_retries": 1, "interval_start": 0.01})
    transport = RedisTransport("redis://:secret@127.0.0.1:1/0", options)
    with pytest.raises(OperationalError) as info:
        transport.publish_sync(envelope("q"))
    assert "redis://:**@127.0.0.1:1/0" in str(info.value)
    assert "secret" not in str(info.value)
    transport.close_sync()


async def test_idle_fetch_wakes_fast_on_publish(make: Factory) -> None:
    # A long poll interval: only the pub/sub wake-up can be this fast.
    consumer, producer = await make(poll=5.0), await make()
    await consumer.fetch(["q"], 1, 0.05)  # subscribed to the wake channels
    waits = []
    for _ in range(5):
        waiting = asyncio.create_task(consumer.fetch(["q"], 1, 5.0))
        await asyncio.sleep(0.3)  # long idle: the fallback poll is at its slowest
        started = time.perf_counter()
        await producer.publish(envelope("q"))
        got = await waiting
        waits.append(time.perf_counter() - started)
        await consumer.ack(got)
    assert sorted(waits)[2] < 0.02, waits


async def test_close_returns_unacked_messages_to_the_head(make: Factory, raw: redis.Redis) -> None:
    consumer = await make()
    await consumer.publish_many([(envelope("q", b"%d" % i), None) for i in range(3)])
    got = await fetch_all(consumer, "q", 3)
    await consumer.ack(got[:1])
    await consumer.close()
    bodies = [base64.b64decode(json.loads(e)["body"]) for e in reversed(raw.lrange("q", 0, -1))]
    assert bodies == [b"1", b"2"]
