"""RabbitMQ transport beyond the contract: Celery wire compatibility, confirms, errors,
reconnects, prefetch and quorum queues (real broker, this session's vhost)."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import kombu
import pika
import pytest

from celeriac import errors
from celeriac.protocol.message import TaskMessage, build_task_envelope, parse_task_envelope
from celeriac.transports.amqp import AMQPTransport
from celeriac.transports.base import QueueSpec, Transport, TransportOptions

VECTORS = Path("/work/shared/protocol/vectors")
DEADLINE = 5.0


def _name(prefix: str = "amqp") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def transport(connected_transport: AMQPTransport) -> AMQPTransport:
    return connected_transport


async def _fetch(transport: Transport, queues: list[str], n: int) -> list[Any]:
    out: list[Any] = []
    end = time.monotonic() + DEADLINE
    while len(out) < n and time.monotonic() < end:
        out += await transport.fetch(queues, n - len(out), 0.5)
    return out


def _pika(vhost: str) -> pika.BlockingConnection:
    return pika.BlockingConnection(pika.ConnectionParameters(
        "127.0.0.1", 5672, vhost, pika.PlainCredentials("guest", "guest")))


# -- confirms and the sync face ---------------------------------------------------------


async def test_returned_sync_publish_is_already_queued_once_flushed(
    transport: AMQPTransport, rabbitmq_vhost: str
) -> None:
    queue = _name()
    await asyncio.to_thread(transport.declare_sync, [QueueSpec(queue, routing_key=queue)])
    env = build_task_envelope(TaskMessage("tasks.add", str(uuid.uuid4()), (2, 3)), queue=queue)

    def publish() -> None:
        transport.publish_sync(env)
        transport.flush_sync()  # pipelined confirms: see test_amqp_confirms.py

    await asyncio.to_thread(publish)
    # Counted at once over a second, unrelated connection: the broker had it.
    conn = _pika(rabbitmq_vhost)
    try:
        assert conn.channel().queue_declare(queue, passive=True).method.message_count == 1
    finally:
        conn.close()


async def test_sync_publish_from_threads_uses_one_connection_each(
    transport: AMQPTransport,
) -> None:
    queue = _name()
    await transport.declare([QueueSpec(queue)])
    env = build_task_envelope(TaskMessage("tasks.add", str(uuid.uuid4()), (1, 1)), queue=queue)
    def publish() -> None:
        transport.publish_sync(env)
        transport.flush_sync()

    await asyncio.gather(*(asyncio.to_thread(publish) for _ in range(8)))
    assert await transport.queue_length(queue) == 8
    assert len(transport.sync._open) >= 2


# -- Celery on the wire, both ways ------------------------------------------------------


async def test_celery_message_published_raw_is_fetched_and_decoded(
    transport: AMQPTransport, rabbitmq_vhost: str
) -> None:
    vector = json.loads((VECTORS / "amqp_delay_add.json").read_text())
    props = vector["properties"]
    queue = _name("celery")
    await transport.declare([QueueSpec(queue)])
    conn = _pika(rabbitmq_vhost)
    try:
        conn.channel().basic_publish("", queue, vector["body"]["utf8"].encode(),
                                     pika.BasicProperties(**props))
    finally:
        conn.close()
    (got,) = await _fetch(transport, [queue], 1)
    assert got.envelope.headers == props["headers"]
    assert got.envelope.correlation_id == props["correlation_id"]
    assert got.envelope.reply_to == props["reply_to"]
    message = parse_task_envelope(got.envelope, ["json"])
    assert (message.task, message.args, message.kwargs) == ("tasks.add", (2, 3), {})
    assert message.timelimit == (None, None)
    await transport.ack([got])


async def test_what_we_publish_is_read_by_kombu(transport: AMQPTransport, amqp_url: str) -> None:
    vector = json.loads((VECTORS / "amqp_delay_add.json").read_text())
    queue = _name("celery")
    task_id = str(uuid.uuid4())
    msg = TaskMessage("tasks.add", task_id, (2, 3), origin="gen9820@vm",
                      reply_to="207e8971-d40c-3681-be59-6d61c69a5d84")
    env = build_task_envelope(msg, queue=queue)
    await transport.declare([QueueSpec(queue)])
    await transport.publish(env)
    with kombu.Connection(amqp_url.replace("amqp://", "pyamqp://")) as conn:
        channel = conn.default_channel
        raw = channel.basic_get(queue, no_ack=True)
        assert raw is not None
        decoded = channel.message_to_python(raw)
        assert decoded.decode() == vector["body_json"]
        assert decoded.content_type == "application/json"
        expected = {**vector["properties"]["headers"], "id": task_id, "root_id": task_id}
        assert decoded.headers == expected
        props = decoded.properties
        assert props["delivery_mode"] == 2
        assert props["priority"] == 0
        assert props["correlation_id"] == task_id
        assert props["reply_to"] == msg.reply_to


async def test_celery_declared_queue_is_used_as_is(
    transport: AMQPTransport, rabbitmq_vhost: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A queue Celery declared without arguments: our priority declaration warns, no crash,
    and dead letters still work (republished, never x-dead-letter-exchange)."""
    queue = _name("celery")
    conn = _pika(rabbitmq_vhost)
    try:
        conn.channel().queue_declare(queue, durable=True)
    finally:
        conn.close()
    with caplog.at_level(logging.WARNING, "celeriac.transports.amqp"):
        await transport.declare([QueueSpec(queue, max_priority=10)])
    assert "exists with different flags or arguments" in caplog.text
    env = build_task_envelope(TaskMessage("tasks.add", str(uuid.uuid4()), (1, 2)), queue=queue)
    await transport.publish(env)
    (got,) = await _fetch(transport, [queue], 1)
    await transport.reject(got, requeue=False, reason="unknown content type 'x/y'")
    dead = await transport.dead_letters(queue)
    assert [(e.body, r) for e, r in dead] == [(env.body, "unknown content type 'x/y'")]
    assert await transport.queue_length(queue) == 0


async def test_priority_property_orders_a_priority_queue(transport: AMQPTransport) -> None:
    queue = _name()
    transport.declare_sync([QueueSpec(queue, max_priority=9)])
    for prio in (0, 9, 4):
        msg = TaskMessage("tasks.add", str(uuid.uuid4()), (prio,), priority=prio)
        await asyncio.to_thread(transport.publish_sync, build_task_envelope(msg, queue=queue))
    got = await _fetch(transport, [queue], 3)
    assert [parse_task_envelope(d.envelope, ["json"]).args for d in got] == [(9,), (4,), (0,)]
    await transport.ack(got)


# -- errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("amqp://guest:wrong@127.0.0.1:5672//", "amqp://guest:**@127.0.0.1:5672//"),
        ("amqp://guest:guest@127.0.0.1:5672/nope", "amqp://guest:**@127.0.0.1:5672/nope"),
    ],
)
async def test_refused_login_is_one_clear_line(url: str, shown: str) -> None:
    expected = (f"RabbitMQ refused login for user 'guest' on {shown}: "
                f"check the user, password and vhost")
    transport = AMQPTransport(url, TransportOptions(connect_timeout=3.0))
    with pytest.raises(errors.BrokerUnreachable) as info:
        await transport.connect()
    assert str(info.value) == expected
    with pytest.raises(errors.BrokerUnreachable) as info:
        await asyncio.to_thread(transport.queue_length_sync, "celery")
    assert str(info.value) == expected
    transport.close_sync()


async def test_unreachable_broker_names_the_masked_url() -> None:
    transport = AMQPTransport("amqp://guest:secret@127.0.0.1:1//",
                              TransportOptions(connect_timeout=2.0))
    with pytest.raises(errors.BrokerUnreachable, match=r"guest:\*\*@127\.0\.0\.1:1//") as info:
        await transport.connect()
    assert "secret" not in str(info.value)


def test_quorum_queue_must_be_durable() -> None:
    transport = AMQPTransport("amqp://guest:guest@127.0.0.1:5672//")
    spec = QueueSpec("q", auto_delete=True, arguments={"x-queue-type": "quorum"})
    with pytest.raises(errors.ImproperlyConfigured, match="quorum queue must be durable"):
        transport.declare_sync([spec])


# -- consuming ----------------------------------------------------------------------------


async def test_quorum_queue_round_trip(transport: AMQPTransport) -> None:
    queue = _name("quorum")
    await transport.declare([QueueSpec(queue, max_priority=5,
                                       arguments={"x-queue-type": "quorum"})])
    await transport.publish_many([
        (build_task_envelope(TaskMessage("t", str(uuid.uuid4()), (i,)), queue=queue), None)
        for i in range(3)
    ])
    got = await _fetch(transport, [queue], 3)
    assert [parse_task_envelope(d.envelope, ["json"]).args for d in got] == [(0,), (1,), (2,)]
    await transport.ack(got)


async def test_held_messages_do_not_starve_the_prefetch(transport: AMQPTransport) -> None:
    """Messages fetched and kept unacked (ETA held in memory) widen the prefetch."""
    queue = _name()
    await transport.declare([QueueSpec(queue)])
    await transport.publish_many([
        (build_task_envelope(TaskMessage("t", str(uuid.uuid4()), (i,)), queue=queue), None)
        for i in range(6)
    ])
    held = await _fetch(transport, [queue], 2)
    more = await _fetch(transport, [queue], 2)
    rest = await _fetch(transport, [queue], 2)
    assert len(held) + len(more) + len(rest) == 6
    await transport.ack(rest + more)
    await transport.ack(held)
    assert await transport.queue_length(queue) == 0


async def test_unacked_messages_return_when_the_consumer_goes(
    transport: AMQPTransport, amqp_url: str
) -> None:
    queue = _name()
    await transport.declare([QueueSpec(queue)])
    await transport.publish(build_task_envelope(TaskMessage("t", str(uuid.uuid4())), queue=queue))
    (held,) = await _fetch(transport, [queue], 1)
    await transport.close()  # a worker restart while holding an ETA message
    again = AMQPTransport(amqp_url)
    try:
        (back,) = await _fetch(again, [queue], 1)
        assert back.envelope.body == held.envelope.body
        assert back.redelivered
        await again.ack([back])
    finally:
        await again.close()


async def test_reconnects_after_the_broker_drops_connections(
    transport: AMQPTransport, rabbitmq_vhost: str
) -> None:
    queue = _name()
    await transport.declare([QueueSpec(queue)])
    await transport.publish(build_task_envelope(TaskMessage("t", str(uuid.uuid4())), queue=queue))
    (stale,) = await _fetch(transport, [queue], 1)
    await asyncio.to_thread(transport.publish_sync,
                            build_task_envelope(TaskMessage("t", "sync-1"), queue=queue))
    subprocess.run(["rabbitmqctl", "close_all_connections", "--vhost", rabbitmq_vhost,
                    "celeriac reconnect test"], check=True, capture_output=True)
    # fetch reports the loss (the worker backs off and retries) and then recovers.
    failures = 0
    got: list[Any] = []
    end = time.monotonic() + DEADLINE * 2
    while len(got) < 2 and time.monotonic() < end:
        try:
            got += await transport.fetch([queue], 5, 0.5)
        except errors.OperationalError:
            failures += 1
            await asyncio.sleep(0.1)
    assert failures >= 1
    # The unacked one comes back redelivered; the one still queued comes fresh.
    assert sorted(d.redelivered for d in got) == [False, True]
    await transport.ack([stale])  # from the lost connection: ignored, no error
    await transport.ack(got)
    # The sync face reconnects by itself too.
    await asyncio.to_thread(transport.publish_sync,
                            build_task_envelope(TaskMessage("t", "sync-2"), queue=queue))
    (last,) = await _fetch(transport, [queue], 1)
    assert parse_task_envelope(last.envelope, ["json"]).id == "sync-2"
    await transport.ack([last])
