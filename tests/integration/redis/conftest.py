"""Fixtures of the Redis integration tests: the real server, a private database."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
import redis

_TESTS = str(Path(__file__).resolve().parents[2])
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)


from celeriac.transports.base import TransportOptions  # noqa: E402
from celeriac.transports.redis import RedisTransport  # noqa: E402

__all__ = ["TransportFactory"]

TransportFactory = Callable[..., Awaitable[RedisTransport]]


@pytest.fixture
def raw(redis_url: str) -> Iterator[redis.Redis]:
    """A plain redis-py client on the test's database, to look behind the transport."""
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
async def make_transport(redis_url: str) -> AsyncIterator[TransportFactory]:
    """Connected Redis transports (``lease``, ``poll`` and extra options), closed afterwards."""
    made: list[RedisTransport] = []

    async def build(lease: float = 1.0, poll: float = 0.05, **extra: object) -> RedisTransport:
        options = TransportOptions(lease_seconds=lease, poll_interval=poll, extra=dict(extra))
        transport = RedisTransport(redis_url, options)
        await transport.connect()
        made.append(transport)
        return transport

    yield build
    for transport in made:
        await transport.close()
        transport.close_sync()
