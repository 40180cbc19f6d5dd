"""Redis URL forms: parsed without I/O, passwords never shown."""

from __future__ import annotations

import re
import ssl
from pathlib import Path

import pytest

from celeriac.errors import BadURLError, ConfigurationError
from celeriac.transports._redis_conn import RedisTarget, parse_redis_url, target_from_options


def test_plain_url_with_password_and_db() -> None:
    target = parse_redis_url("redis://user:p%40ss@example.org:6380/4")
    assert (target.host, target.port, target.db) == ("example.org", 6380, 4)
    assert (target.username, target.password) == ("user", "p@ss")
    assert "p@ss" not in target.masked and "**" in target.masked


def test_tls_url_carries_certificate_options() -> None:
    target = parse_redis_url("rediss://h:6390/1?ssl_cert_reqs=none&ssl_ca_certs=/ca.pem")
    assert target.ssl
    assert target.ssl_options == {"ssl_cert_reqs": "none", "ssl_ca_certs": "/ca.pem"}


def test_unix_socket_url() -> None:
    target = parse_redis_url("redis+socket:///run/redis/redis.sock?virtual_host=3")
    assert (target.unix_path, target.db) == ("/run/redis/redis.sock", 3)


def test_sentinel_url_lists_every_sentinel() -> None:
    url = "sentinel://:pw@10.0.0.1:26379;sentinel://10.0.0.2:26380/2"
    target = parse_redis_url(url, master_name="mymaster")
    assert target.sentinels == (("10.0.0.1", 26379), ("10.0.0.2", 26380))
    assert (target.master_name, target.db, target.password) == ("mymaster", 2, "pw")


def test_sentinel_without_service_name_says_how_to_set_it() -> None:
    with pytest.raises(ConfigurationError, match="master_name"):
        parse_redis_url("sentinel://10.0.0.1:26379")


@pytest.mark.parametrize("url", ["amqp://h", "redis://h:port/0", "redis://h/notanumber"])
def test_bad_urls(url: str) -> None:
    with pytest.raises(BadURLError):
        parse_redis_url(url)


def _with_setting(url: str, value: object, setting: str = "broker_use_ssl") -> RedisTarget:
    return target_from_options(url, {"master_name": "m"}, connect_default=None,
                               use_ssl=value, ssl_setting=setting)  # type: ignore[arg-type]


def test_use_ssl_setting_turns_tls_on_for_a_redis_url() -> None:
    target = _with_setting("redis://h:6390/1", {"ssl_cert_reqs": "none"})
    assert target.ssl
    assert target.ssl_options == {"ssl_cert_reqs": ssl.CERT_NONE, "ssl_check_hostname": False}
    assert _with_setting("redis://h:6390/1", True).ssl_options == {
        "ssl_cert_reqs": ssl.CERT_REQUIRED, "ssl_check_hostname": True}


def test_use_ssl_off_leaves_the_url_alone() -> None:
    for value in (False, None, {}):
        assert not _with_setting("redis://h:6390/1", value).ssl
    assert _with_setting("rediss://h/0?ssl_cert_reqs=optional", False).ssl_options == {
        "ssl_cert_reqs": "optional"}


def test_the_urls_own_ssl_parameters_win_over_the_setting(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not read here")
    target = _with_setting("rediss://h/0?ssl_cert_reqs=none",
                           {"cert_reqs": "required", "ca_certs": str(ca)})
    assert target.ssl_options == {"ssl_cert_reqs": "none", "ssl_check_hostname": False,
                                  "ssl_ca_certs": str(ca)}


@pytest.mark.parametrize(("url", "value", "expected"), [
    ("redis://h/0", {"server_hostname": "other"}, "server_hostname is not supported for Redis"),
    ("redis://h/0", {"ca_certs": "/no/such/ca.pem"}, "the ca_certs file '/no/such/ca.pem' does"),
    ("redis://h/0", {"ca_file": "x"}, "must be True, False or a dict"),
    ("sentinel://h:26379/0", True, "over Sentinel is not supported"),
    ("redis+socket:///tmp/r.sock", True, "over a Unix socket is not supported"),
])
def test_bad_tls_settings_are_one_line_errors(url: str, value: object, expected: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(expected)) as failure:
        _with_setting(url, value, "redis_backend_use_ssl")
    assert str(failure.value).startswith("setting 'redis_backend_use_ssl'")
    assert "\n" not in str(failure.value)
