"""A Redis server that stops answering but keeps its sockets open (``SIGSTOP``).

This is what a server stuck saving its data during ``SHUTDOWN``, or a frozen
host, looks like to a client: no error, no reply. Every command must give up
after the socket timeout with an error naming the (masked) URL, idle pub/sub
listeners must notice, and a worker's result write must wait the outage out
(saying so once) instead of failing its task. Private server, password on, so
the masking is checked too. Bounded waits only (``asyncio.wait_for`` guards).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.asyncio
import redis.exceptions

from celeriac.backends.base import BackendOptions
from celeriac.backends.redis import RedisBackend
from celeriac.errors import BrokerUnreachable, OperationalError
from celeriac.protocol import states
from celeriac.protocol.envelope import Envelope
from celeriac.protocol.results import ResultMeta
from celeriac.transports._redis_pubsub import next_message
from celeriac.transports.base import TransportOptions
from celeriac.transports.redis import RedisTransport

_ROOT = str(Path(__file__).resolve().parents[3])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from tests.helpers.redis_servers import RedisServer  # noqa: E402

pytestmark = pytest.mark.redis

PASSWORD = "s3cret-pw"
GUARD = 20.0  # a hang would otherwise stall the suite; far above every bound used here


class Frozen:
    """A private password-protected server that can be frozen and thawed."""

    def __init__(self, server: RedisServer) -> None:
        self.server = server
        self.url = f"redis://:{PASSWORD}@127.0.0.1:{server.port}/0"
        self.masked = f"redis://:**@127.0.0.1:{server.port}/0"

    def freeze(self) -> None:
        assert self.server.proc is not None
        os.kill(self.server.proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        if self.server.proc is not None and self.server.proc.poll() is None:
            os.kill(self.server.proc.pid, signal.SIGCONT)


@pytest.fixture
def frozen(tmp_path: Path) -> Iterator[Frozen]:
    server = RedisServer(tmp_path)
    server.start()
    # Set after start: the helper's readiness probe connects without a password.
    with server.client() as admin:
        admin.config_set("requirepass", PASSWORD)
    made = Frozen(server)
    yield made
    made.thaw()
    server.stop()


async def test_broker_command_to_a_frozen_server_fails_with_the_masked_url(frozen: Frozen) -> None:
    options = TransportOptions(extra={"socket_timeout": 0.5, "max_retries": 0})
    transport = RedisTransport(frozen.url, options)
    queue = f"q-{uuid.uuid4().hex[:8]}"
    try:
        await transport.connect()
        frozen.freeze()
        with pytest.raises(BrokerUnreachable) as caught:
            await asyncio.wait_for(transport.fetch([queue], 1, 0.1), GUARD)
        message = str(caught.value)
        assert frozen.masked in message and PASSWORD not in message
        assert "\n" not in message
    finally:
        frozen.thaw()
        await transport.close()


async def test_sync_publish_to_a_frozen_server_fails_with_the_masked_url(frozen: Frozen) -> None:
    # The sync publisher does its own reads and writes on its kept socket: the
    # kernel's send/receive timeouts bound them as redis-py's socket timeout would.
    options = TransportOptions(extra={"socket_timeout": 0.5, "max_retries": 0})
    transport = RedisTransport(frozen.url, options)
    queue = f"q-{uuid.uuid4().hex[:8]}"
    message = Envelope(b"[[], {}, {}]", headers={"id": "t-1", "task": "t"},
                       correlation_id="t-1", routing_key=queue)
    try:
        await asyncio.to_thread(transport.publish_sync, message)  # the kept connection
        frozen.freeze()
        with pytest.raises(BrokerUnreachable) as caught:
            await asyncio.wait_for(asyncio.to_thread(transport.publish_sync, message), GUARD)
        text = str(caught.value)
        assert frozen.masked in text and PASSWORD not in text
        frozen.thaw()
        await asyncio.to_thread(transport.publish_sync, message)  # a new connection
    finally:
        frozen.thaw()
        transport.close_sync()


async def test_idle_listener_notices_a_frozen_server(frozen: Frozen) -> None:
    client = redis.asyncio.Redis.from_url(frozen.url, socket_timeout=0.5)
    pubsub = client.pubsub()
    try:
        await pubsub.subscribe("celeriac-test-idle")
        confirmation = await asyncio.wait_for(next_message(pubsub, idle=0.2), GUARD)
        assert confirmation is not None and confirmation["type"] == "subscribe"
        # Silent but alive: the PING is answered, the listener goes on.
        pong = await asyncio.wait_for(next_message(pubsub, idle=0.2), GUARD)
        assert pong is not None and pong["type"] == "pong"
        frozen.freeze()
        with pytest.raises(redis.exceptions.TimeoutError):
            await asyncio.wait_for(next_message(pubsub, idle=0.2), GUARD)
    finally:
        frozen.thaw()
        await pubsub.aclose()  # type: ignore[no-untyped-call]
        await client.aclose()


async def test_result_write_waits_out_a_frozen_server(
    frozen: Frozen, caplog: pytest.LogCaptureFixture
) -> None:
    backend = RedisBackend(frozen.url, BackendOptions(extra={"socket_timeout": 0.5}))
    task_id = str(uuid.uuid4())
    try:
        await backend.connect()
        frozen.freeze()
        with caplog.at_level(logging.WARNING, "celeriac.backends.redis"):
            write = asyncio.ensure_future(
                backend.store(ResultMeta(task_id, states.SUCCESS, 42))
            )
            deadline = asyncio.get_running_loop().time() + GUARD
            while "result store: cannot reach Redis" not in caplog.text:
                assert asyncio.get_running_loop().time() < deadline, caplog.text
                assert not write.done(), "the write gave up while Redis was frozen"
                await asyncio.sleep(0.05)
            frozen.thaw()
            await asyncio.wait_for(write, GUARD)
        meta = await backend.get(task_id)
        assert meta is not None and (meta.status, meta.result) == (states.SUCCESS, 42)
        errors = [r for r in caplog.records if "cannot reach Redis" in r.getMessage()]
        assert len(errors) == 1, "the outage is reported once, not per attempt"
        assert errors[0].levelno == logging.ERROR
        line = errors[0].getMessage()
        assert frozen.masked in line and PASSWORD not in line and "retrying" in line
        assert "reconnected to Redis" in caplog.text
    finally:
        frozen.thaw()
        await backend.close()


async def test_result_write_gives_up_after_retry_seconds(frozen: Frozen) -> None:
    # The worker then does not acknowledge the task: it is redelivered, not lost.
    options = BackendOptions(extra={"socket_timeout": 0.3, "retry_seconds": 1})
    backend = RedisBackend(frozen.url, options)
    try:
        await backend.connect()
        frozen.freeze()
        with pytest.raises(OperationalError, match="cannot reach Redis"):
            await asyncio.wait_for(
                backend.store(ResultMeta(str(uuid.uuid4()), states.SUCCESS, 1)), GUARD
            )
    finally:
        frozen.thaw()
        await backend.close()


async def test_a_write_the_frozen_server_cannot_take_times_out_and_drops_the_connection(
    frozen: Frozen,
) -> None:
    # Commands are handed to the socket without a timer; only a write that has to
    # wait for room (the server stopped reading) is bounded, by the socket timeout.
    transport = RedisTransport(frozen.url, TransportOptions(extra={"socket_timeout": 0.5}))
    client = transport._async_client()
    pool = client.connection_pool
    conn = await pool.get_connection()  # type: ignore[no-untyped-call]
    try:
        frozen.freeze()
        value = b"x" * (64 * 1024 * 1024)  # far more than the socket buffers hold
        with pytest.raises(redis.exceptions.TimeoutError, match="Timeout writing"):
            await asyncio.wait_for(conn.send_command("SET", "celeriac-test-big", value), GUARD)
        assert not conn.is_connected  # a half-written command never reaches the next caller
    finally:
        frozen.thaw()
        await pool.release(conn)
        await transport.close()
