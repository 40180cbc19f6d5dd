"""Fixtures of the RabbitMQ integration tests: the real server, a private vhost per run."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

_TESTS = str(Path(__file__).resolve().parents[2])
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)


from celeriac.transports.amqp import AMQPTransport  # noqa: E402
from celeriac.transports.base import TransportOptions  # noqa: E402

__all__: list[str] = []


@pytest.fixture
async def connected_transport(amqp_url: str) -> AsyncIterator[AMQPTransport]:
    """A connected RabbitMQ transport on this run's vhost, closed afterwards."""
    made = AMQPTransport(amqp_url, TransportOptions(connect_timeout=3.0))
    await made.connect()
    yield made
    await made.close()
    made.close_sync()
