"""Redis URL forms: parsed without I/O, passwords never shown."""

from __future__ import annotations

import pytest

from celeriac.errors import BadURLError, ConfigurationError
from celeriac.transports._redis_conn import parse_redis_url


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
