"""The sync rpc:// reply reader (transports/_amqp_replies.py) against the real RabbitMQ."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import amqp
import pytest

from celeriac import errors
from celeriac.backends.base import BackendOptions
from celeriac.backends.rpc import RPCBackend
from celeriac.protocol import states
from celeriac.protocol.results import ResultMeta, now_iso


def _success(task_id: str, result: object, reply_to: str) -> ResultMeta:
    return ResultMeta(task_id, states.SUCCESS, result, None, [], now_iso(), reply_to=reply_to)


@pytest.fixture
def pair(amqp_url: str) -> Iterator[tuple[RPCBackend, RPCBackend]]:
    """(client, worker): two backends on this run's vhost, closed afterwards."""
    client = RPCBackend("rpc://", BackendOptions(extra={"broker_url": amqp_url}))
    worker = RPCBackend("rpc://", BackendOptions(extra={"broker_url": amqp_url}))
    client.subscribe_early("any")  # the reply queue exists before results are sent
    yield client, worker
    client.close_sync()
    worker.close_sync()


def test_backlog_is_read_before_the_first_get_returns(
        pair: tuple[RPCBackend, RPCBackend]) -> None:
    client, worker = pair
    ids = [str(uuid.uuid4()) for _ in range(500)]
    worker.sync.publish_many([worker._envelope(_success(t, i, client.oid))
                              for i, t in enumerate(ids)])
    # The first get opens the reader: it returns the last one waiting, not PENDING.
    last = client.get_sync(ids[-1])
    assert last is not None and last.result == len(ids) - 1
    assert [client.wait_sync(t, 0.01).result for t in ids] == list(range(len(ids)))


def test_large_reply_spans_frames_and_reads(pair: tuple[RPCBackend, RPCBackend]) -> None:
    client, worker = pair
    big = "x" * (3 * 1024 * 1024)  # more than one body frame and one recv
    ids = [str(uuid.uuid4()) for _ in range(3)]
    client.get_sync("nothing")  # reader open and idle: the replies arrive while waiting
    for task_id in ids:
        worker.store_sync(_success(task_id, big + task_id, client.oid))
    assert [client.wait_sync(t, 10.0).result for t in ids] == [big + t for t in ids]


def test_deleted_reply_queue_raises_once_then_reconnects(
        pair: tuple[RPCBackend, RPCBackend], rabbitmq_vhost: str) -> None:
    client, worker = pair
    first = str(uuid.uuid4())
    worker.store_sync(_success(first, 1, client.oid))
    assert client.wait_sync(first, 5.0).result == 1
    conn = amqp.Connection("127.0.0.1:5672", virtual_host=rabbitmq_vhost)
    conn.connect()
    try:
        conn.channel().queue_delete(client.oid)  # the broker cancels the client's consumer
    finally:
        conn.close()
    with pytest.raises(errors.OperationalError, match="cancelled the consumer"):
        client.wait_sync(str(uuid.uuid4()), 5.0)
    # The next call opens a new reader (and declares the queue again).
    second = str(uuid.uuid4())
    assert client.get_sync(second) is None
    worker.store_sync(_success(second, 2, client.oid))
    assert client.wait_sync(second, 5.0).result == 2


async def test_async_backlog_is_read_before_the_first_get_returns(
        pair: tuple[RPCBackend, RPCBackend]) -> None:
    client, worker = pair
    ids = [str(uuid.uuid4()) for _ in range(300)]
    worker.sync.publish_many([worker._envelope(_success(t, i, client.oid))
                              for i, t in enumerate(ids)])
    try:
        last = await client.get(ids[-1])
        assert last is not None and last.result == len(ids) - 1
        assert [(await client.wait(t, 0.01)).result for t in ids] == list(range(len(ids)))
    finally:
        await client.close()
