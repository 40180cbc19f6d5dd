"""URL scheme registries for transports and result backends."""

from __future__ import annotations

import re

import pytest

from celeriac.backends.memory import MemoryBackend
from celeriac.backends.registry import BACKENDS, _lookup, backend_class, backend_for_url
from celeriac.backends.sqlite import SqliteBackend
from celeriac.errors import BadURLError, ConfigurationError
from celeriac.transports.base import Transport
from celeriac.transports.memory import MemoryTransport
from celeriac.transports.registry import (
    Plugin,
    load_plugin,
    transport_class,
    transport_for_url,
)
from celeriac.transports.sqlite import SqliteTransport


def test_builtin_transports() -> None:
    assert transport_class("memory://") is MemoryTransport
    assert transport_class("SQLITE:///x.db") is SqliteTransport
    transport = transport_for_url("memory://named")
    assert isinstance(transport, MemoryTransport)
    assert transport.name == "named"


def test_unknown_broker_scheme_names_the_choices_and_masks_the_password() -> None:
    with pytest.raises(BadURLError) as info:
        transport_for_url("xyz://user:secret@host/1")
    text = str(info.value)
    assert "unknown broker URL scheme 'xyz'" in text
    assert "xyz://user:**@host/1" in text
    assert "secret" not in text
    assert "memory, sqlite, redis, rediss" in text
    assert "amqp" in text


def test_url_without_scheme() -> None:
    with pytest.raises(BadURLError, match="has no scheme"):
        transport_for_url("localhost:6379")


def test_missing_optional_dependency_names_the_extra() -> None:
    plugin = Plugin("json:JSONDecoder", "amqp", "amqp")
    with pytest.raises(ConfigurationError, match="not a Transport subclass"):
        load_plugin(plugin, Transport, "broker")
    missing = Plugin("celeriac_no_such_dependency_xyz:Thing", "amqp", "amqp")
    with pytest.raises(ConfigurationError) as info:
        load_plugin(missing, Transport, "broker")
    assert "the amqp broker needs the 'amqp' extra: pip install 'celeriac[amqp]'" in str(info.value)


def test_builtin_backends() -> None:
    assert backend_class("memory://") is MemoryBackend
    assert backend_class("cache+memory://") is MemoryBackend
    assert backend_class("sqlite:///r.db") is SqliteBackend
    assert backend_class("db+sqlite:///r.db") is SqliteBackend
    assert isinstance(backend_for_url("memory://x"), MemoryBackend)


def test_sqlalchemy_driver_urls_use_the_dialect_entry() -> None:
    assert _lookup("db+postgresql+psycopg") is BACKENDS["db+postgresql"]
    assert _lookup("db+mysql+pymysql") is BACKENDS["db+mysql"]
    with pytest.raises(
        BadURLError, match=re.escape("unknown result backend URL scheme 'db+oracle'")
    ):
        backend_class("db+oracle://scott:tiger@host/db")
