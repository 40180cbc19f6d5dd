"""The rpc:// result backend against the real RabbitMQ (this session's vhost)."""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import threading
import uuid
from pathlib import Path

import amqp
import pytest

from celeriac import errors
from celeriac.backends.base import BackendOptions, ChordPart, ResultBackend
from celeriac.backends.rpc import RPCBackend
from celeriac.protocol import states
from celeriac.protocol.results import ResultMeta, now_iso
from celeriac.testing.contracts import BackendContract


def _success(task_id: str, result: object, reply_to: str | None = None) -> ResultMeta:
    return ResultMeta(task_id, states.SUCCESS, result, None, [], now_iso(), reply_to=reply_to)


class TestRPCBackendContract(BackendContract):
    """The shared contract; instances of one test share a client oid (one reply queue)."""

    @pytest.fixture(autouse=True)
    def _setup(self, amqp_url: str) -> None:
        self._amqp_url = amqp_url
        self._oid = str(uuid.uuid4())

    def make_url(self, tmp_path: Path) -> str:
        return "rpc://"

    def make_backend(self, url: str, options: BackendOptions) -> ResultBackend:
        extra = {**options.extra, "broker_url": self._amqp_url, "oid": self._oid}
        return RPCBackend(url, BackendOptions(
            expires=options.expires, poll_interval=options.poll_interval, extra=extra))

    # Groups and chords need a store that keeps state: rpc says so clearly.
    async def test_group_save_restore_forget(self, backend: ResultBackend) -> None:
        with pytest.raises(errors.ImproperlyConfigured, match="keeps state"):
            backend.save_group_sync("g", ["a"])
        with pytest.raises(errors.ImproperlyConfigured):
            backend.restore_group_sync("g")

    async def test_chord_completes_once_with_ordered_parts(self, backend: ResultBackend) -> None:
        with pytest.raises(errors.ImproperlyConfigured, match="chords need a result backend"):
            backend.set_chord_size_sync("g", 2)
        with pytest.raises(errors.ImproperlyConfigured, match="use redis:// or sqlite://"):
            await backend.chord_part_return(ChordPart("g", "t", 0, states.SUCCESS, 1))

    async def test_chord_part_counted_once_per_task(self, backend: ResultBackend) -> None:
        with pytest.raises(errors.ImproperlyConfigured):
            await backend.set_chord_size("g", 2)

    async def test_chord_concurrent_parts_complete_exactly_once(self) -> None:
        """Not applicable: covered by the two tests above."""

    async def test_results_expire(self, backend: ResultBackend, rabbitmq_vhost: str) -> None:
        # A reply queue nobody uses expires (x-expires); results once read live in the client.
        await backend.get(str(uuid.uuid4()))
        listing = subprocess.run(
            ["rabbitmqctl", "list_queues", "-p", rabbitmq_vhost, "name", "durable",
             "auto_delete", "arguments"], capture_output=True, text=True, check=True).stdout
        line = next(row for row in listing.splitlines() if row.startswith(self._oid))
        assert line.split("\t")[1:3] == ["true", "true"]
        assert '"x-expires",3600000' in line


@pytest.fixture
async def client(amqp_url: str) -> RPCBackend:
    backend = RPCBackend("rpc://", BackendOptions(extra={"broker_url": amqp_url}))
    yield backend
    await backend.close()
    backend.close_sync()


async def test_twenty_tasks_complete_out_of_order(client: RPCBackend, amqp_url: str) -> None:
    worker = RPCBackend("rpc://", BackendOptions(extra={"broker_url": amqp_url}))
    ids = [str(uuid.uuid4()) for _ in range(20)]
    order = ids[:]
    random.Random(7).shuffle(order)
    try:
        for task_id in order:
            await worker.store(ResultMeta(task_id, states.STARTED, reply_to=client.oid))
            await worker.store(_success(task_id, task_id[:8], reply_to=client.oid))
        # Waited for in sending order while they completed in another one.
        got = [await client.wait(task_id, 5.0) for task_id in ids]
        assert [m.result for m in got] == [task_id[:8] for task_id in ids]
        assert all(m.status == states.SUCCESS for m in got)
    finally:
        await worker.close()


def test_sync_wait_many_threads_out_of_order(client: RPCBackend, amqp_url: str) -> None:
    worker = RPCBackend("rpc://", BackendOptions(extra={"broker_url": amqp_url}))
    ids = [str(uuid.uuid4()) for _ in range(20)]
    results: dict[str, object] = {}

    def waiter(task_id: str) -> None:
        results[task_id] = client.wait_sync(task_id, 10.0).result

    threads = [threading.Thread(target=waiter, args=(t,)) for t in ids]
    for thread in threads:
        thread.start()
    try:
        for task_id in reversed(ids):
            worker.store_sync(_success(task_id, task_id[:4], reply_to=client.oid))
    finally:
        for thread in threads:
            thread.join(15)
        worker.close_sync()
    assert results == {t: t[:4] for t in ids}


def test_other_client_sees_pending(client: RPCBackend, amqp_url: str) -> None:
    other = RPCBackend("rpc://", BackendOptions(extra={"broker_url": amqp_url}))
    task_id = str(uuid.uuid4())
    try:
        client.store_sync(_success(task_id, 1, reply_to=client.oid))
        assert client.wait_sync(task_id, 5.0).result == 1
        assert other.get_sync(task_id) is None
    finally:
        other.close_sync()


def test_reply_message_is_celerys(
    amqp_url: str, rabbitmq_vhost: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A reply is what a Celery worker publishes (vector amqp_rpc_result_success)."""
    reply_to = f"celery-client-{uuid.uuid4()}"
    conn = amqp.Connection("127.0.0.1:5672", virtual_host=rabbitmq_vhost)
    conn.connect()
    try:
        channel = conn.channel()
        # A Celery client declared its reply queue like this; ours must match it.
        channel.queue_declare(reply_to, durable=True, auto_delete=True,
                              arguments={"x-expires": 3600000})
        worker = RPCBackend("rpc://", BackendOptions(expires=3600.0,
                                                     extra={"broker_url": amqp_url}))
        task_id = str(uuid.uuid4())
        worker.store_sync(_success(task_id, 5, reply_to=reply_to))
        message = channel.basic_get(reply_to, no_ack=True)
        worker.close_sync()
        assert message is not None
        props = message.properties
        assert props["correlation_id"] == task_id
        assert props["delivery_mode"] == 1
        assert props["content_type"] == "application/json"
        assert props["content_encoding"] == "utf-8"
        assert props["priority"] == 0
        # Celery's field order (Celery clients parse it; the separators are JSON's business).
        reply = json.loads(message.body)
        assert list(reply)[:3] == ["status", "result", "traceback"]
        assert list(reply)[-1] == "task_id"
        assert (reply["status"], reply["result"], reply["task_id"]) == ("SUCCESS", 5, task_id)
        assert not [r for r in caplog.records if r.levelname == "WARNING"]  # flags matched
    finally:
        conn.close()


async def test_bad_broker_credentials_one_line() -> None:
    backend = RPCBackend("rpc://", BackendOptions(
        extra={"broker_url": "amqp://guest:wrong@127.0.0.1:5672//"}))
    with pytest.raises(errors.BrokerUnreachable) as info:
        await backend.wait(str(uuid.uuid4()), 1.0)
    assert "refused login" in str(info.value)
    assert "wrong" not in str(info.value)
    await asyncio.sleep(0)
