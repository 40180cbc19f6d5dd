"""The Redis result store against the real local Redis: the backend contract."""

from __future__ import annotations

from pathlib import Path

import pytest

from celeriac.testing.contracts import BackendContract

pytestmark = pytest.mark.redis


class TestRedisBackend(BackendContract):
    """Everything every result backend does, on ``redis://`` (a private database)."""

    expiry_seconds = 0.5

    @pytest.fixture(autouse=True)
    def _database(self, redis_url: str) -> None:
        self._url = redis_url

    def make_url(self, tmp_path: Path) -> str:
        return self._url
