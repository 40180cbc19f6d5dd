"""The transport and backend contracts, run against the in-process memory:// stores."""

from __future__ import annotations

import uuid
from pathlib import Path

from celeriac.testing.contracts import BackendContract, TransportContract


class TestMemoryTransport(TransportContract):
    def make_url(self, tmp_path: Path) -> str:
        return f"memory://contract-{uuid.uuid4().hex}"


class TestMemoryBackend(BackendContract):
    def make_url(self, tmp_path: Path) -> str:
        return f"memory://contract-{uuid.uuid4().hex}"
