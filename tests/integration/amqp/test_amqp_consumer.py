"""The worker's own consuming connection (transports/_amqp_consumer.py) against the real
broker: big multi-frame bodies, many deliveries per read in order, a queue deleted or
missing under the consumer, acks and rejects written straight to the socket."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pika
import pytest

from celeriac import errors
from celeriac.protocol.envelope import Envelope
from celeriac.protocol.message import TaskMessage, build_task_envelope, parse_task_envelope
from celeriac.transports.amqp import AMQPTransport
from celeriac.transports.base import QueueSpec

DEADLINE = 5.0


def _name() -> str:
    return f"consumer-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def transport(connected_transport: AMQPTransport) -> AMQPTransport:
    return connected_transport


def _task(queue: str, task_id: str, *args: Any) -> Envelope:
    return build_task_envelope(TaskMessage("t", task_id, args=args), queue=queue)


async def _fetch(transport: AMQPTransport, queue: str, n: int) -> list[Any]:
    out: list[Any] = []
    end = time.monotonic() + DEADLINE
    while len(out) < n and time.monotonic() < end:
        out += await transport.fetch([queue], n - len(out), 0.5)
    return out


async def test_big_bodies_and_many_small_ones_arrive_whole_and_in_order(
    transport: AMQPTransport,
) -> None:
    queue = _name()
    await transport.declare([QueueSpec(queue)])
    big = "x" * 700_000  # several frames of frame_max (128 KiB)
    items = [(_task(queue, f"id-{i}", i), None) for i in range(300)]
    items.insert(150, (_task(queue, "big", big), None))
    await transport.publish_many(items)
    got = await _fetch(transport, queue, 301)
    messages = [parse_task_envelope(d.envelope, ["json"]) for d in got]
    assert [m.id for m in messages] == [env.correlation_id for env, _ in items]
    assert messages[150].args == (big,)
    await transport.ack(got)
    assert await transport.queue_length(queue) == 0


async def test_rejected_with_requeue_comes_back_and_acked_is_gone(
    transport: AMQPTransport,
) -> None:
    queue = _name()
    await transport.declare([QueueSpec(queue)])
    await transport.publish(_task(queue, "again"))
    (first,) = await _fetch(transport, queue, 1)
    await transport.reject(first, requeue=True)
    (second,) = await _fetch(transport, queue, 1)
    assert second.redelivered and parse_task_envelope(second.envelope, ["json"]).id == "again"
    await transport.ack([second])
    assert await transport.fetch([queue], 1, 0.3) == []


async def test_queue_deleted_under_the_consumer_is_reported_then_redeclared(
    transport: AMQPTransport, rabbitmq_vhost: str,
) -> None:
    queue = _name()
    await transport.declare([QueueSpec(queue)])
    assert await transport.fetch([queue], 1, 0.1) == []  # consuming now
    admin = pika.BlockingConnection(pika.ConnectionParameters(
        "127.0.0.1", 5672, rabbitmq_vhost, pika.PlainCredentials("guest", "guest")))
    admin.channel().queue_delete(queue)
    admin.close()
    # The broker cancels the consumer; fetch says so instead of waiting forever.
    with pytest.raises(errors.OperationalError):
        end = time.monotonic() + DEADLINE
        while time.monotonic() < end:
            await transport.fetch([queue], 1, 0.2)
    # The next call reconnects and declares the queue again; it works as before.
    await transport.publish(_task(queue, "after"))
    (back,) = await _fetch(transport, queue, 1)
    assert parse_task_envelope(back.envelope, ["json"]).id == "after"
    await transport.ack([back])


async def test_consuming_a_missing_queue_fails_cleanly_and_the_link_recovers(
    transport: AMQPTransport,
) -> None:
    with pytest.raises(errors.OperationalError, match="404"):
        await transport.fetch([_name()], 1, 0.2)
    queue = _name()
    await transport.declare([QueueSpec(queue)])
    await transport.publish(_task(queue, "fine"))
    (got,) = await _fetch(transport, queue, 1)
    await transport.ack([got])


async def test_close_returns_unacked_deliveries(transport: AMQPTransport, amqp_url: str) -> None:
    queue = _name()
    await transport.declare([QueueSpec(queue)])
    await transport.publish_many([(_task(queue, f"h{i}"), None) for i in range(3)])
    held = await _fetch(transport, queue, 3)
    await transport.ack(held[:1])
    await transport.close()
    again = AMQPTransport(amqp_url)
    try:
        back = await _fetch(again, queue, 2)
        assert sorted(parse_task_envelope(d.envelope, ["json"]).id for d in back) == ["h1", "h2"]
        assert all(d.redelivered for d in back)
        await again.ack(back)
    finally:
        await again.close()
