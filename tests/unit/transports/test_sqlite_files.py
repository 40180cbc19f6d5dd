"""SQLite URLs and file errors (shared by the broker and the result backend)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from celeriac.backends.sqlite import SqliteBackend
from celeriac.errors import BadURLError, BrokerUnreachable, OperationalError
from celeriac.protocol.envelope import Envelope
from celeriac.transports._sqlite_db import sqlite_path
from celeriac.transports.sqlite import SqliteTransport, decode_envelope, encode_props


def test_url_forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert sqlite_path("sqlite://") == str(tmp_path / "celeriac.sqlite")
    assert sqlite_path("sqlite:///") == str(tmp_path / "celeriac.sqlite")
    assert sqlite_path("sqlite:///jobs.db") == str(tmp_path / "jobs.db")
    assert sqlite_path("sqlite:////var/tmp/jobs.db") == "/var/tmp/jobs.db"
    assert sqlite_path("db+sqlite:///results.sqlite?timeout=3") == str(tmp_path / "results.sqlite")


@pytest.mark.parametrize("url", ["sqlite:///:memory:", "sqlite:///file::memory:?cache=shared"])
def test_in_memory_database_is_refused(url: str) -> None:
    with pytest.raises(BadURLError, match="cannot be shared between processes"):
        SqliteTransport(url)


def test_host_in_url_is_refused() -> None:
    with pytest.raises(BadURLError, match="no host"):
        sqlite_path("sqlite://host/db")


async def test_unopenable_broker_file_raises_broker_unreachable(tmp_path: Path) -> None:
    path = tmp_path / "missing-dir" / "broker.sqlite"
    transport = SqliteTransport(f"sqlite:///{path}")
    with pytest.raises(BrokerUnreachable, match=str(path)):
        await transport.connect()
    with pytest.raises(BrokerUnreachable, match=str(path)):
        transport.publish_sync(Envelope(b"x", routing_key="q"))
    await transport.close()


def test_corrupt_results_file_raises_operational_error(tmp_path: Path) -> None:
    path = tmp_path / "results.sqlite"
    path.write_bytes(os.urandom(4096))
    backend = SqliteBackend(f"sqlite:///{path}")
    with pytest.raises(OperationalError, match=str(path)):
        backend.get_sync("some-id")
    backend.close_sync()


def test_envelope_codec_round_trip() -> None:
    envelope = Envelope(
        body=b"\x00\xffbinary",
        content_type="application/x-python-serialize",
        content_encoding="binary",
        headers={"id": "1", "nested": {"a": [1, 2]}},
        correlation_id="1",
        reply_to="r",
        priority=7,
        delivery_mode=1,
        expiration="1000",
        exchange="ex",
        routing_key="rk",
        delivery_tag="tag",
    )
    assert decode_envelope(encode_props(envelope), envelope.body) == envelope


def test_big_integers_survive_the_results_table(tmp_path: Path) -> None:
    from celeriac.protocol.results import ResultMeta

    backend = SqliteBackend(f"sqlite:///{tmp_path / 'r.sqlite'}")
    backend.store_sync(ResultMeta(task_id="t", status="SUCCESS", result=[2**80, 1]))
    got = backend.get_sync("t")
    assert got is not None
    assert got.result == [2**80, 1]
    backend.close_sync()
