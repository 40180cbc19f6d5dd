"""broker_use_ssl for RabbitMQ: what the setting accepts, and what the URL parser makes of it.

The TLS connections themselves are tested against the real server in
tests/integration/amqp/test_amqp_tls.py.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest

from celeriac import Celery
from celeriac.errors import BrokerUnreachable, ConfigurationError
from celeriac.transports._amqp_common import connect_error, parse_amqp_url
from celeriac.transports._tls import TLSOptions, ssl_context


def _setting(value: Any) -> Any:
    app = Celery("tlsopts", broker="amqp://")
    app.conf.broker_use_ssl = value
    return app.conf.settings.broker_use_ssl


def test_the_setting_reads_back_as_given() -> None:
    given = {"ssl_ca_certs": "/ca.pem", "ssl_cert_reqs": "required"}
    assert _setting(given) == given


def test_celery_and_ssl_prefixed_spellings_are_normalised_for_the_transport() -> None:
    tls = parse_amqp_url("amqp://h/v", use_ssl={
        "ssl_ca_certs": "/ca.pem", "ssl_cert_reqs": "required",
        "ssl_certfile": "/c.pem", "ssl_keyfile": "/k.pem"}).tls
    assert tls == TLSOptions(ca_certs="/ca.pem", cert_reqs=ssl.CERT_REQUIRED,
                             certfile="/c.pem", keyfile="/k.pem")
    for spelling, mode in ((ssl.CERT_NONE, ssl.CERT_NONE), ("CERT_OPTIONAL", ssl.CERT_OPTIONAL),
                           (0, ssl.CERT_NONE), ("ssl.CERT_REQUIRED", ssl.CERT_REQUIRED)):
        assert parse_amqp_url("amqps://h/v", use_ssl={"cert_reqs": spelling}).tls == \
            TLSOptions(cert_reqs=mode)
    assert _setting("true") is True


@pytest.mark.parametrize("bad", [
    {"ssl_ca_cert": "/ca.pem"},  # a typo of ssl_ca_certs
    {"ciphers": "HIGH"},
    {"cert_reqs": "sometimes"},
    {"cert_reqs": 7},
    {"ca_certs": "/a.pem", "ssl_ca_certs": "/b.pem"},  # the same option twice
    {"ca_certs": 5},
    "maybe",
])
def test_a_bad_value_is_one_line_naming_the_setting_and_the_keys(bad: Any) -> None:
    with pytest.raises(ConfigurationError) as failure:
        _setting(bad)
    with pytest.raises(ConfigurationError) as direct:  # a transport built without the app
        parse_amqp_url("amqps://h/v", use_ssl=bad)
    assert str(direct.value) == str(failure.value)
    text = str(failure.value)
    assert text.startswith("setting 'broker_use_ssl' must be True, False or a dict")
    assert "ca_certs" in text and "ssl.CERT_REQUIRED" in text and "ssl_cert_reqs" in text
    assert "\n" not in text


def test_amqps_url_uses_tls_with_verification_by_default() -> None:
    params = parse_amqp_url("amqps://u:p@rabbit.example/v")
    assert params.ssl and params.port == 5671
    assert params.tls == TLSOptions(cert_reqs=ssl.CERT_REQUIRED)
    assert params.server_hostname == "rabbit.example"


def test_broker_use_ssl_turns_tls_on_for_an_amqp_url_on_5671_as_kombu() -> None:
    params = parse_amqp_url("amqp://u:p@rabbit.example/v", use_ssl=True)
    assert params.ssl and params.port == 5671
    explicit = parse_amqp_url("amqp://u:p@rabbit.example:5672/v", use_ssl=True)
    assert explicit.ssl and explicit.port == 5672
    options = parse_amqp_url("amqps://h/v", use_ssl={"ca_certs": "/ca.pem",
                                                     "cert_reqs": ssl.CERT_NONE})
    assert options.tls == TLSOptions(ca_certs="/ca.pem", cert_reqs=ssl.CERT_NONE)


def test_false_or_an_empty_dict_leaves_an_amqp_url_plain() -> None:
    for off in (False, {}, None):
        params = parse_amqp_url("amqp://h/v", use_ssl=off)
        assert not params.ssl and params.tls is None and params.port == 5672
        assert params.ssl_context() is None and params.py_amqp_ssl() is False


def test_server_hostname_overrides_the_name_checked() -> None:
    params = parse_amqp_url("amqps://10.0.0.5/v", use_ssl={"server_hostname": "rabbit"})
    assert params.server_hostname == "rabbit"
    assert params.py_amqp_ssl() == {"cert_reqs": ssl.CERT_REQUIRED, "server_hostname": "rabbit"}
    assert params.aiormq_kwargs()["server_hostname"] == "rabbit"


def test_cert_none_checks_neither_the_chain_nor_the_name() -> None:
    context = ssl_context(TLSOptions(cert_reqs=ssl.CERT_NONE))
    assert context.verify_mode == ssl.CERT_NONE and not context.check_hostname
    params = parse_amqp_url("amqps://h/v", use_ssl={"cert_reqs": "none"})
    assert params.py_amqp_ssl() == {"cert_reqs": ssl.CERT_NONE}  # no name to check


def test_required_checks_the_chain_and_the_name() -> None:
    context = ssl_context(TLSOptions())
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


@pytest.mark.parametrize("key", ["ca_certs", "certfile", "keyfile"])
def test_a_missing_file_is_one_clear_error(tmp_path: Path, key: str) -> None:
    missing = str(tmp_path / "gone.pem")
    with pytest.raises(ConfigurationError) as failure:
        ssl_context(TLSOptions(**{key: missing}))  # type: ignore[arg-type]
    assert str(failure.value) == (
        f"setting 'broker_use_ssl': the {key} file {missing!r} does not exist: give the "
        f"path of a PEM file this process can read (or leave {key} out)")


def test_a_file_that_is_not_pem_is_one_clear_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    with pytest.raises(ConfigurationError, match=r"^setting 'broker_use_ssl': cannot load .*"
                                                 r"they must be PEM files$"):
        ssl_context(TLSOptions(ca_certs=str(junk)))


def test_a_keyfile_without_its_certfile_is_refused(tmp_path: Path) -> None:
    key = tmp_path / "k.pem"
    key.write_text("x")
    with pytest.raises(ConfigurationError, match="keyfile needs certfile"):
        ssl_context(TLSOptions(keyfile=str(key)))


def test_a_failed_verification_says_how_to_trust_the_ca() -> None:
    params = parse_amqp_url("amqps://u:secret@h/v")
    cause = ssl.SSLCertVerificationError(1, "certificate verify failed")
    cause.verify_message = "unable to get local issuer certificate"
    try:
        raise OSError("wrapped") from cause
    except OSError as exc:
        error = connect_error(params, exc)
    assert isinstance(error, BrokerUnreachable)
    text = str(error)
    assert "secret" not in text
    assert "TLS certificate verification failed (unable to get local issuer certificate)" in text
    assert "broker_use_ssl={'ca_certs': '/path/to/ca.pem'}" in text
