"""What the broker does when Redis goes away under a live consumer (private server).

A rejection that cannot reach Redis must not strand the message: it stays in
the consumer's in-flight hash, whose lease a live worker keeps renewing, so the
transport finishes the requeue (or dead-lettering) once Redis answers again.
"""

from __future__ import annotations

import logging
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from celeriac.protocol.envelope import Envelope
from celeriac.transports.base import Delivery, TransportOptions
from celeriac.transports.redis import RedisTransport

_ROOT = str(Path(__file__).resolve().parents[3])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from tests.helpers.redis_servers import RedisServer  # noqa: E402

pytestmark = pytest.mark.redis


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    made = RedisServer(tmp_path, ["--appendonly", "yes", "--appendfsync", "always"])
    made.start()
    yield made
    made.stop()


def _envelope(queue: str) -> Envelope:
    task_id = str(uuid.uuid4())
    return Envelope(
        body=b"[[], {}, {}]",
        headers={"id": task_id, "task": "tests.t"},
        correlation_id=task_id,
        routing_key=queue,
    )


async def _fetch_one(transport: RedisTransport, queue: str) -> Delivery:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        got = await transport.fetch([queue], 1, 0.5)
        if got:
            return got[0]
    raise AssertionError("no message within 10s")


@pytest.mark.parametrize("requeue", [True, False], ids=["requeue", "dead-letter"])
async def test_reject_while_redis_is_down_is_finished_when_it_is_back(
    server: RedisServer, requeue: bool, caplog: pytest.LogCaptureFixture
) -> None:
    options = TransportOptions(lease_seconds=30, poll_interval=0.05,
                               extra={"max_retries": 1, "interval_step": 0.01})  # fmt: skip
    transport = RedisTransport(server.url, options)
    queue = f"q-{uuid.uuid4().hex[:8]}"
    try:
        await transport.connect()
        await transport.publish(_envelope(queue))
        got = await _fetch_one(transport, queue)
        server.shutdown()
        with caplog.at_level(logging.WARNING, "celeriac.transports.redis"):
            await transport.reject(got, requeue=requeue, reason="poison")  # does not raise
            server.start()
            # The lease (30 s) cannot be what brings it back within this bound.
            if requeue:
                again = await _fetch_one(transport, queue)
                assert again.envelope.headers["id"] == got.envelope.headers["id"]
                assert again.redelivered
            else:
                assert await transport.fetch([queue], 1, 0.3) == []
                dead = await transport.dead_letters(queue)
                assert [reason for _, reason in dead] == ["poison"]
        assert "once Redis answers again" in caplog.text
        assert "reconnected to Redis" in caplog.text
    finally:
        await transport.close()
