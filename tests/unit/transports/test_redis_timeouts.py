"""Every Redis command is bounded by a socket timeout by default; explicit settings win.

Only clients are built here (redis-py connects lazily): what is checked is the
timeout the connections will use, for the broker and for the result backend.
"""

from __future__ import annotations

from typing import Any

import pytest

from celeriac import Celery
from celeriac.backends.redis import RedisBackend
from celeriac.errors import ConfigurationError
from celeriac.transports._redis_conn import DEFAULT_CONNECT_TIMEOUT, DEFAULT_SOCKET_TIMEOUT
from celeriac.transports.base import TransportOptions
from celeriac.transports.redis import RedisTransport

URL = "redis://127.0.0.1:6399/0"


def _kwargs(face: RedisTransport | RedisBackend) -> dict[str, Any]:
    return dict(face._async_client().connection_pool.connection_kwargs)


def _sync_kwargs(face: RedisTransport | RedisBackend) -> dict[str, Any]:
    return dict(face._sync_client().connection_pool.connection_kwargs)


def test_broker_commands_are_bounded_by_default() -> None:
    transport = RedisTransport(URL)
    for kwargs in (_kwargs(transport), _sync_kwargs(transport)):
        assert kwargs["socket_timeout"] == DEFAULT_SOCKET_TIMEOUT
        assert kwargs["socket_connect_timeout"] == DEFAULT_CONNECT_TIMEOUT


@pytest.mark.parametrize(("value", "expected"), [(2.5, 2.5), ("30", 30.0), (None, None)])
def test_broker_transport_option_socket_timeout_is_respected(
    value: object, expected: float | None
) -> None:
    transport = RedisTransport(URL, TransportOptions(extra={"socket_timeout": value}))
    assert _kwargs(transport)["socket_timeout"] == expected


def test_broker_connect_timeout_follows_broker_connection_timeout() -> None:
    app = Celery("t", broker=URL)
    app.conf.broker_connection_timeout = 3.0
    assert _kwargs(app.new_transport())["socket_connect_timeout"] == 3.0  # type: ignore[arg-type]
    app.conf.broker_transport_options = {"socket_connect_timeout": 1.5}
    assert _kwargs(app.new_transport())["socket_connect_timeout"] == 1.5  # type: ignore[arg-type]


def test_url_query_wins_over_the_options() -> None:
    options = TransportOptions(extra={"socket_timeout": 9})
    transport = RedisTransport(URL + "?socket_timeout=1.5", options)
    assert _kwargs(transport)["socket_timeout"] == 1.5


@pytest.mark.parametrize("value", [0, -1, "soon"])
def test_bad_socket_timeout_is_a_configuration_error(value: object) -> None:
    with pytest.raises(ConfigurationError, match="socket_timeout"):
        RedisTransport(URL, TransportOptions(extra={"socket_timeout": value}))


def test_result_backend_uses_redis_socket_timeout_settings() -> None:
    app = Celery("t", broker=URL, backend=URL)
    backend = app.new_backend()
    assert isinstance(backend, RedisBackend)
    assert _kwargs(backend)["socket_timeout"] == DEFAULT_SOCKET_TIMEOUT
    assert _sync_kwargs(backend)["socket_connect_timeout"] == DEFAULT_CONNECT_TIMEOUT

    app.conf.redis_socket_timeout = 120
    app.conf.redis_socket_connect_timeout = 2
    backend = app.new_backend()
    assert isinstance(backend, RedisBackend)
    assert _kwargs(backend)["socket_timeout"] == 120.0
    assert _kwargs(backend)["socket_connect_timeout"] == 2.0

    app.conf.redis_socket_timeout = None
    backend = app.new_backend()
    assert isinstance(backend, RedisBackend)
    assert _kwargs(backend)["socket_timeout"] is None


def test_result_backend_transport_options_override_the_setting() -> None:
    app = Celery("t", broker=URL, backend=URL)
    app.conf.redis_socket_timeout = 120
    app.conf.result_backend_transport_options = {"socket_timeout": 3}
    backend = app.new_backend()
    assert isinstance(backend, RedisBackend)
    assert _kwargs(backend)["socket_timeout"] == 3.0
