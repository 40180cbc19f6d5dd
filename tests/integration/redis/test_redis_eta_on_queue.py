"""The ``eta_on_queue`` option: ETA messages wait on their queue, as Celery sends them."""

from __future__ import annotations

import time
import uuid

import redis

from celeriac.protocol import keys
from celeriac.protocol.envelope import Envelope
from celeriac.transports.base import TransportOptions
from celeriac.transports.redis import RedisTransport


def _envelope(queue: str) -> Envelope:
    task_id = str(uuid.uuid4())
    return Envelope(
        body=b"[[], {}, {}]",
        headers={"id": task_id, "task": "tests.t"},
        correlation_id=task_id,
        routing_key=queue,
    )


async def test_eta_on_queue_pushes_to_the_list_and_defer_still_holds(redis_url: str) -> None:
    options = TransportOptions(lease_seconds=2.0, poll_interval=0.05, extra={"eta_on_queue": True})
    transport = RedisTransport(redis_url, options)
    raw = redis.Redis.from_url(redis_url)
    try:
        await transport.connect()
        queue = f"q-{uuid.uuid4().hex[:8]}"
        await transport.publish(_envelope(queue), eta=time.time() + 60)
        assert raw.llen(queue) == 1
        assert raw.zcard(keys.DELAYED_ZSET) == 0
        (got,) = await transport.fetch([queue], 1, 2.0)
        await transport.defer(got, time.time() + 0.5)
        assert raw.zcard(keys.DELAYED_ZSET) == 1
        assert await transport.fetch([queue], 1, 0.1) == []
        (again,) = await transport.fetch([queue], 1, 3.0)
        assert again.envelope.headers["id"] == got.envelope.headers["id"]
        await transport.ack([again])
    finally:
        await transport.close()
        raw.close()
