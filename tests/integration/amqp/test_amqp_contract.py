"""The transport contract, run against the real RabbitMQ in this session's vhost."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest

from celeriac.testing.contracts import TransportContract


class TestAMQPTransport(TransportContract):
    leases: ClassVar[bool] = False

    @pytest.fixture(autouse=True)
    def _url(self, amqp_url: str) -> None:
        self._amqp_url = amqp_url

    def make_url(self, tmp_path: Path) -> str:
        return self._amqp_url
