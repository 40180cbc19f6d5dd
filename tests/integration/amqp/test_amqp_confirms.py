"""Sync publisher confirms on RabbitMQ: one per publish by default, pipelined on request.

By default a ``publish_sync`` that returns has been confirmed by the broker. A
pipelined one (``confirm_window`` > 1) returns once its frame is written; these
tests pin what a user relies on then: a flush point (``flush_sync``, the end of a
task, ``close_sync``) returns only when the broker has every message, a
broken connection sends the unconfirmed ones again (nothing missing), and a
message the broker refuses is reported by the next call.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pika
import pytest

from celeriac import errors, signals
from celeriac.protocol.envelope import Envelope
from celeriac.transports.amqp import AMQPTransport
from celeriac.transports.base import QueueSpec, TransportOptions

pytestmark = pytest.mark.amqp


def _name() -> str:
    return f"confirms-{uuid.uuid4().hex[:10]}"


def _env(queue: str, body: bytes) -> Envelope:
    return Envelope(body=body, content_type="application/json", content_encoding="utf-8",
                    headers={}, delivery_mode=2, routing_key=queue)


def _make(amqp_url: str, **extra: Any) -> AMQPTransport:
    return AMQPTransport(amqp_url, TransportOptions(connect_timeout=3.0, extra=extra))


@pytest.fixture
async def transport(amqp_url: str) -> AsyncIterator[AMQPTransport]:
    made = _make(amqp_url)
    yield made
    await made.close()
    made.close_sync()


def _count(vhost: str, queue: str) -> int:
    """Ready messages, counted over an unrelated connection."""
    conn = pika.BlockingConnection(pika.ConnectionParameters(
        "127.0.0.1", 5672, vhost, pika.PlainCredentials("guest", "guest")))
    try:
        return int(conn.channel().queue_declare(queue, passive=True).method.message_count)
    finally:
        conn.close()


def _bodies(vhost: str, queue: str) -> list[bytes]:
    conn = pika.BlockingConnection(pika.ConnectionParameters(
        "127.0.0.1", 5672, vhost, pika.PlainCredentials("guest", "guest")))
    out: list[bytes] = []
    try:
        channel = conn.channel()
        while True:
            method, _props, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                return out
            out.append(body)
    finally:
        conn.close()


def _pending(transport: AMQPTransport) -> int:
    confirms = getattr(transport.sync._local, "confirms", None)
    return 0 if confirms is None else len(confirms.pending)


def test_by_default_a_returned_publish_is_confirmed(
    transport: AMQPTransport, rabbitmq_vhost: str
) -> None:
    queue = _name()
    transport.declare_sync([QueueSpec(queue)])
    for i in range(20):
        transport.publish_sync(_env(queue, str(i).encode()))
        assert _pending(transport) == 0
        assert _count(rabbitmq_vhost, queue) == i + 1


@pytest.mark.parametrize("bad", [0, -3, "many", 2.5j, True])
def test_a_bad_confirm_window_is_one_clear_error(amqp_url: str, bad: object) -> None:
    with pytest.raises(errors.ConfigurationError, match="confirm_window"):
        _make(amqp_url, confirm_window=bad)


def test_confirm_publish_true_waits_for_each_confirm(amqp_url: str, rabbitmq_vhost: str) -> None:
    transport = _make(amqp_url, confirm_publish=True)
    try:
        queue = _name()
        transport.declare_sync([QueueSpec(queue)])
        transport.publish_sync(_env(queue, b"1"))
        assert _pending(transport) == 0
        assert _count(rabbitmq_vhost, queue) == 1
    finally:
        transport.close_sync()


def test_pipelined_publishes_are_all_queued_after_flush(
    amqp_url: str, rabbitmq_vhost: str
) -> None:
    transport = _make(amqp_url, confirm_window=64)
    queue = _name()
    transport.declare_sync([QueueSpec(queue)])
    for i in range(300):
        transport.publish_sync(_env(queue, str(i).encode()))
        assert _pending(transport) < transport.sync.confirm_window
    transport.flush_sync()
    assert _pending(transport) == 0
    assert _bodies(rabbitmq_vhost, queue) == [str(i).encode() for i in range(300)]
    transport.close_sync()


def test_close_sync_waits_for_outstanding_confirms(amqp_url: str, rabbitmq_vhost: str) -> None:
    transport = _make(amqp_url, confirm_window=1000)
    queue = _name()
    transport.declare_sync([QueueSpec(queue)])
    for i in range(200):
        transport.publish_sync(_env(queue, str(i).encode()))
    transport.close_sync()
    assert _count(rabbitmq_vhost, queue) == 200


def test_end_of_a_task_flushes_what_it_published(
    transport: AMQPTransport, rabbitmq_vhost: str
) -> None:
    queue = _name()
    transport.declare_sync([QueueSpec(queue)])
    transport.sync.confirm_window = 1000
    for i in range(50):
        transport.publish_sync(_env(queue, str(i).encode()))
    # What the worker sends after a task ran, before it acknowledges the task.
    signals.task_postrun.send(sender=None, task_id="t", task=None, args=(), kwargs={},
                              retval=None, state="SUCCESS")
    assert _pending(transport) == 0
    assert _count(rabbitmq_vhost, queue) == 50


def test_a_broken_connection_sends_the_unconfirmed_again(
    transport: AMQPTransport, rabbitmq_vhost: str
) -> None:
    queue = _name()
    transport.declare_sync([QueueSpec(queue)])
    transport.sync.confirm_window = 1000
    for i in range(100):
        transport.publish_sync(_env(queue, str(i).encode()))
    unconfirmed = _pending(transport)
    old = transport.sync._local.connection
    old.sock.shutdown(socket.SHUT_RDWR)  # the connection dies under the publisher
    transport.publish_sync(_env(queue, b"after"))
    transport.flush_sync()
    assert transport.sync._local.connection is not old
    bodies = _bodies(rabbitmq_vhost, queue)
    expected = {str(i).encode() for i in range(100)} | {b"after"}
    assert set(bodies) == expected, "a published message is missing"
    assert len(bodies) <= 101 + unconfirmed  # duplicates only of the unconfirmed ones


def test_a_refused_message_raises_from_its_own_publish(
    transport: AMQPTransport, rabbitmq_vhost: str
) -> None:
    queue = _name()
    transport.declare_sync([QueueSpec(queue, arguments={"x-max-length": 1,
                                                         "x-overflow": "reject-publish"})])
    transport.publish_sync(_env(queue, b"0"))
    with pytest.raises(errors.OperationalError, match=r"refused \(nacked\) 1"):
        transport.publish_sync(_env(queue, b"1"))
    assert _bodies(rabbitmq_vhost, queue) == [b"0"]
    transport.flush_sync()  # reported once


def test_refused_pipelined_messages_are_reported_by_the_next_call(
    amqp_url: str, rabbitmq_vhost: str
) -> None:
    transport = _make(amqp_url, confirm_window=64)
    queue = _name()
    transport.declare_sync([QueueSpec(queue, arguments={"x-max-length": 1,
                                                         "x-overflow": "reject-publish"})])
    for i in range(3):
        transport.publish_sync(_env(queue, str(i).encode()))
    with pytest.raises(errors.OperationalError, match=r"refused \(nacked\) 2"):
        transport.flush_sync()
    assert _bodies(rabbitmq_vhost, queue) == [b"0"]
    transport.flush_sync()  # reported once
    transport.close_sync()


def test_a_batch_raises_when_the_broker_refuses_part_of_it(
    transport: AMQPTransport, rabbitmq_vhost: str
) -> None:
    queue = _name()
    transport.declare_sync([QueueSpec(queue, arguments={"x-max-length": 1,
                                                         "x-overflow": "reject-publish"})])
    with pytest.raises(errors.OperationalError, match=r"refused \(nacked\) 1"):
        transport.publish_many_sync([(_env(queue, b"a"), None), (_env(queue, b"b"), None)])
    assert _bodies(rabbitmq_vhost, queue) == [b"a"]


async def test_publishes_from_threads_flush_per_thread(
    transport: AMQPTransport, rabbitmq_vhost: str
) -> None:
    queue = _name()
    transport.declare_sync([QueueSpec(queue)])

    def publish_and_flush(n: int) -> None:
        for _ in range(n):
            transport.publish_sync(_env(queue, b"x"))
        transport.flush_sync()

    await asyncio.gather(*(asyncio.to_thread(publish_and_flush, 40) for _ in range(4)))
    assert _count(rabbitmq_vhost, queue) == 160


# -- the async face: one write per batch, every confirm awaited --------------------------


async def test_async_batch_is_confirmed_in_order_and_big_bodies_are_split(
    transport: AMQPTransport, rabbitmq_vhost: str
) -> None:
    queue = _name()
    await transport.declare([QueueSpec(queue)])
    big = bytes(range(256)) * 1200  # 307,200 bytes: more than one frame (frame_max 131,072)
    items = [(_env(queue, str(i).encode()), None) for i in range(50)] + [(_env(queue, big), None)]
    await transport.publish_many(items)
    await transport.publish(_env(queue, b"last"))
    assert _bodies(rabbitmq_vhost, queue) == [str(i).encode() for i in range(50)] + [big, b"last"]


async def test_async_batch_raises_when_the_broker_refuses_part_of_it(
    transport: AMQPTransport, rabbitmq_vhost: str
) -> None:
    queue = _name()
    await transport.declare([QueueSpec(queue, arguments={"x-max-length": 2,
                                                          "x-overflow": "reject-publish"})])
    items = [(_env(queue, str(i).encode()), None) for i in range(5)]
    with pytest.raises(errors.OperationalError, match=r"refused \(nacked\) 3 of 5"):
        await transport.publish_many(items)
    assert _bodies(rabbitmq_vhost, queue) == [b"0", b"1"]
    await transport.publish(_env(queue, b"again"))  # the channel is still usable
    assert _bodies(rabbitmq_vhost, queue) == [b"again"]


def test_a_forked_child_never_touches_the_parents_connection(
    transport: AMQPTransport, rabbitmq_vhost: str
) -> None:
    import os

    queue = _name()
    transport.declare_sync([QueueSpec(queue)])
    transport.sync.confirm_window = 1000
    for i in range(20):
        transport.publish_sync(_env(queue, str(i).encode()))
    parent_conn = transport.sync._local.connection
    pid = os.fork()
    if pid == 0:  # the child: end of a task, then a publish of its own
        code = 0
        try:
            signals.task_postrun.send(sender=None, task_id="t", task=None, args=(), kwargs={},
                                      retval=None, state="SUCCESS")
            transport.publish_sync(_env(queue, b"child"))
            transport.flush_sync()
            if transport.sync._local.connection is parent_conn:
                code = 3
        except BaseException:
            code = 2
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    transport.flush_sync()  # the parent's socket was not read by the child
    assert sorted(_bodies(rabbitmq_vhost, queue)) == sorted(
        [str(i).encode() for i in range(20)] + [b"child"])
