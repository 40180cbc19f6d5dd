"""The transport and backend contracts, run against the SQLite file stores."""

from __future__ import annotations

from pathlib import Path

from celeriac.testing.contracts import BackendContract, TransportContract


class TestSqliteTransport(TransportContract):
    def make_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'broker.sqlite'}"


class TestSqliteBackend(BackendContract):
    def make_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'results.sqlite'}"


class TestSqliteBackendSharingTheBrokerFile(BackendContract):
    """The default setup: broker and results in one file."""

    def make_url(self, tmp_path: Path) -> str:
        return f"db+sqlite:///{tmp_path / 'celeriac.sqlite'}"
