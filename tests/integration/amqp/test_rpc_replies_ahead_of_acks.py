"""A worker's rpc replies on its consuming channel (``AMQPTransport.publish_ahead_of_acks``,
``RPCBackend.share_broker``), against the real broker: what is written lands in the
reply queue before the ack written after it is handled, and a resource alarm
(``connection.blocked``) or a missing consuming connection sends replies the
confirmed way instead."""

from __future__ import annotations

import struct
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from celeriac.backends.base import BackendOptions
from celeriac.backends.rpc import RPCBackend
from celeriac.protocol import states
from celeriac.protocol.message import TaskMessage, build_task_envelope
from celeriac.protocol.results import ResultMeta, now_iso
from celeriac.transports.amqp import AMQPTransport
from celeriac.transports.base import Delivery, QueueSpec, TransportOptions

DEADLINE = 5.0


def _method_frame(class_id: int, method_id: int, args: bytes = b"") -> bytes:
    payload = struct.pack(">HH", class_id, method_id) + args
    return struct.pack(">BHI", 1, 0, len(payload)) + payload + b"\xce"


BLOCKED = _method_frame(10, 60, b"\x0elow on memory!")
UNBLOCKED = _method_frame(10, 61)


@pytest.fixture
async def worker_transport(connected_transport: AMQPTransport) -> AMQPTransport:
    return connected_transport


@pytest.fixture
async def client(amqp_url: str) -> AsyncIterator[RPCBackend]:
    backend = RPCBackend("rpc://", BackendOptions(extra={"broker_url": amqp_url}))
    yield backend
    await backend.close()
    backend.close_sync()


@pytest.fixture
async def worker_backend(amqp_url: str, worker_transport: AMQPTransport
                         ) -> AsyncIterator[RPCBackend]:
    backend = RPCBackend("rpc://", BackendOptions(extra={"broker_url": amqp_url}))
    backend.share_broker(worker_transport)
    yield backend
    await backend.close()


async def _one_delivery(transport: AMQPTransport, reply_to: str) -> Delivery:
    queue = f"ahead-{uuid.uuid4().hex[:10]}"
    await transport.declare([QueueSpec(queue)])
    await transport.publish(build_task_envelope(
        TaskMessage("t", str(uuid.uuid4()), reply_to=reply_to), queue=queue))
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        got = await transport.fetch([queue], 1, 0.5)
        if got:
            return got[0]
    raise AssertionError("no delivery")


def _meta(task_id: str, result: Any, reply_to: str) -> ResultMeta:
    return ResultMeta(task_id, states.SUCCESS, result, None, [], now_iso(), reply_to=reply_to)


async def test_replies_written_ahead_of_the_ack_reach_the_client(
    worker_transport: AMQPTransport, worker_backend: RPCBackend, client: RPCBackend,
    amqp_url: str,
) -> None:
    delivery = await _one_delivery(worker_transport, client.oid)
    ids = [str(uuid.uuid4()) for _ in range(3)]
    await worker_backend.store_many([_meta(t, i, client.oid) for i, t in enumerate(ids)])
    await worker_transport.ack([delivery])
    # Written on the consuming connection: the backend's own connection never opened
    # a publishing channel.
    assert worker_backend.transport._link is not None
    assert worker_backend.transport._link.publisher is None
    got = [await client.wait(t, DEADLINE) for t in ids]
    assert [m.result for m in got] == [0, 1, 2]
    # The ack was handled too: after a polite close nothing comes back to the queue.
    await worker_transport.close()
    assert await client.transport.queue_length(delivery.queue) == 0


async def test_without_a_consuming_connection_nothing_is_written(
    worker_transport: AMQPTransport, client: RPCBackend,
) -> None:
    envelope = client._envelope(_meta("x", 1, client.oid))
    assert worker_transport.publish_ahead_of_acks([envelope]) is False


async def test_a_resource_alarm_sends_replies_the_confirmed_way(
    worker_transport: AMQPTransport, worker_backend: RPCBackend, client: RPCBackend,
) -> None:
    delivery = await _one_delivery(worker_transport, client.oid)
    link = worker_transport._link
    assert link is not None and link.consumer is not None
    link.consumer.data_received(BLOCKED)  # as the broker announces a memory alarm
    assert link.consumer.blocked
    first = str(uuid.uuid4())
    await worker_backend.store(_meta(first, "confirmed", client.oid))
    backend_link = worker_backend.transport._link
    assert backend_link is not None and backend_link.publisher is not None
    assert (await client.wait(first, DEADLINE)).result == "confirmed"

    link.consumer.data_received(UNBLOCKED)
    assert not link.consumer.blocked
    second = str(uuid.uuid4())
    envelope = client._envelope(_meta(second, "ahead", client.oid))
    assert worker_transport.publish_ahead_of_acks([envelope]) is True
    assert (await client.wait(second, DEADLINE)).result == "ahead"
    await worker_transport.ack([delivery])


async def test_another_broker_is_not_shared(amqp_url: str) -> None:
    other = AMQPTransport("amqp://guest:guest@127.0.0.1:5672/elsewhere",
                          TransportOptions(connect_timeout=1.0))
    backend = RPCBackend("rpc://", BackendOptions(extra={"broker_url": amqp_url}))
    backend.share_broker(other)
    assert backend._broker is None
    same = AMQPTransport(amqp_url, TransportOptions(connect_timeout=1.0))
    backend.share_broker(same)
    assert backend._broker is same
