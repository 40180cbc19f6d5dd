"""The Redis broker against the real local Redis: the transport contract."""

from __future__ import annotations

from pathlib import Path

import pytest

from celeriac.testing.contracts import TransportContract
from celeriac.transports.base import Transport

pytestmark = pytest.mark.redis


class TestRedisTransport(TransportContract):
    """Everything every transport does, on ``redis://`` (a private database)."""

    @pytest.fixture(autouse=True)
    def _database(self, redis_url: str) -> None:
        self._url = redis_url

    def make_url(self, tmp_path: Path) -> str:
        return self._url

    async def test_higher_priority_first(self, transport: Transport) -> None:
        # Celery's Redis semantics (and wire layout) win over AMQP's: on Redis
        # a LOWER priority number is served first, rounded down to the steps
        # 0/3/6/9, FIFO within a step (protocol README section 1.2).
        (queue,) = await self.queues(transport)
        for prio in (1, 5, 3, 9, 0):
            await transport.publish(self.envelope(queue, body=str(prio).encode(), priority=prio))
        got = await self.fetch_n(transport, [queue], 5)
        assert [d.envelope.body for d in got] == [b"1", b"0", b"5", b"3", b"9"]
        await transport.ack(got)
