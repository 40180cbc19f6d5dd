"""TLS to RabbitMQ (``amqps://``, ``broker_use_ssl``) against the real server.

The shared RabbitMQ is not reconfigured: a CA and a server certificate are made
in a tmp dir, and an in-test TLS-terminating proxy (an asyncio ssl server on a
free loopback port, in a thread) forwards the bytes to 127.0.0.1:5672. The
proxy counts the connections that completed a TLS handshake, so the tests see
that TLS was really spoken, by the worker (async faces) and by the client
(py-amqp, and the rpc:// reply reader).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from tests.helpers.tls import TLSProxy, make_certificates

from celeriac import Celery
from celeriac.errors import BrokerUnreachable, ConfigurationError
from celeriac.protocol.envelope import Envelope
from celeriac.testing.worker_thread import run_worker
from celeriac.transports.amqp import AMQPTransport
from celeriac.transports.base import QueueSpec, TransportOptions


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def proxy(certificates: tuple[Path, Path, Path], amqp_url: str) -> Iterator[TLSProxy]:
    parts = urlsplit(amqp_url)
    _ca, cert, key = certificates
    with TLSProxy(cert, key, (parts.hostname or "127.0.0.1", parts.port or 5672)) as made:
        yield made


def _via_proxy(amqp_url: str, port: int, scheme: str = "amqps") -> str:
    parts = urlsplit(amqp_url)
    auth = parts.netloc.rpartition("@")[0]
    return f"{scheme}://{auth}@127.0.0.1:{port}{parts.path}"


def _roundtrip_app(app: Celery) -> None:
    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    try:
        with run_worker(app, pool="threads", concurrency=2):
            results = [add.delay(i, 1) for i in range(5)]
            assert [r.get(timeout=15) for r in results] == [i + 1 for i in range(5)]
    finally:
        app.close()


def test_worker_and_client_over_amqps_with_ca_certs(
        amqp_url: str, proxy: TLSProxy, certificates: tuple[Path, Path, Path]) -> None:
    ca, _cert, _key = certificates
    app = Celery("tlsca", broker=_via_proxy(amqp_url, proxy.port), backend="rpc://")
    app.conf.broker_use_ssl = {"ca_certs": str(ca), "cert_reqs": ssl.CERT_REQUIRED}
    _roundtrip_app(app)
    # The worker's link and consuming connection, the client's publisher and its
    # reply reader: every connection went through the TLS proxy.
    assert proxy.handshakes >= 4


def test_broker_use_ssl_with_an_amqp_url_turns_tls_on_ssl_spellings(
        amqp_url: str, proxy: TLSProxy, certificates: tuple[Path, Path, Path]) -> None:
    ca, _cert, _key = certificates
    app = Celery("tlsplain", broker=_via_proxy(amqp_url, proxy.port, "amqp"), backend="rpc://")
    app.conf.broker_use_ssl = {"ssl_ca_certs": str(ca), "ssl_cert_reqs": "required"}
    _roundtrip_app(app)
    assert proxy.handshakes >= 4


def test_broker_use_ssl_true_uses_the_system_trust_store(
        amqp_url: str, proxy: TLSProxy, certificates: tuple[Path, Path, Path],
        monkeypatch: pytest.MonkeyPatch) -> None:
    # True means: TLS with verification against the default CAs, which OpenSSL
    # reads from SSL_CERT_FILE when it is set.
    ca, _cert, _key = certificates
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))
    url = _via_proxy(amqp_url, proxy.port, "amqp")
    transport = AMQPTransport(url, TransportOptions(connect_timeout=5.0, ssl=True))
    try:
        transport.declare_sync([QueueSpec("tls.true")])
        transport.publish_sync(Envelope(body=b"x", routing_key="tls.true"))
        assert transport.queue_length_sync("tls.true") == 1
    finally:
        transport.close_sync()
    assert proxy.handshakes >= 1


async def test_verification_fails_clearly_without_the_ca(
        amqp_url: str, proxy: TLSProxy) -> None:
    transport = AMQPTransport(_via_proxy(amqp_url, proxy.port), TransportOptions(
        connect_timeout=5.0, connect_retry=False, ssl={"cert_reqs": ssl.CERT_REQUIRED}))
    with pytest.raises(BrokerUnreachable) as sync_failure:
        transport.publish_sync(Envelope(body=b"x", routing_key="tls.nothing"))
    with pytest.raises(BrokerUnreachable) as async_failure:
        await transport.connect()
    for failure in (sync_failure, async_failure):
        text = str(failure.value)
        assert "certificate verification failed" in text
        assert "broker_use_ssl" in text and "ca_certs" in text
        assert "\n" not in text
    assert proxy.handshakes == 0  # the proxy saw no completed handshake
    transport.close_sync()


async def test_cert_none_connects_without_the_ca(amqp_url: str, proxy: TLSProxy) -> None:
    transport = AMQPTransport(_via_proxy(amqp_url, proxy.port), TransportOptions(
        connect_timeout=5.0, ssl={"cert_reqs": ssl.CERT_NONE}))
    queue = QueueSpec("tls.none")
    try:
        await transport.declare([queue])
        await transport.purge("tls.none")
        transport.publish_sync(Envelope(body=b"sync", routing_key="tls.none"))
        await transport.publish(Envelope(body=b"async", routing_key="tls.none"))
        got: list[bytes] = []
        async with asyncio.timeout(10):
            while len(got) < 2:
                deliveries = await transport.fetch(["tls.none"], 10, 1.0)
                await transport.ack(deliveries)
                got += [d.envelope.body for d in deliveries]
        assert sorted(got) == [b"async", b"sync"]
    finally:
        await transport.close()
        transport.close_sync()
    # aiormq link, consuming connection, py-amqp publisher.
    assert proxy.handshakes >= 3


async def test_a_missing_ca_file_is_one_clear_error(amqp_url: str, proxy: TLSProxy,
                                                    tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    transport = AMQPTransport(_via_proxy(amqp_url, proxy.port), TransportOptions(
        connect_timeout=5.0, ssl={"ca_certs": str(missing)}))
    expected = r"^setting 'broker_use_ssl': the ca_certs file .* does not exist"
    with pytest.raises(ConfigurationError, match=expected) as sync_failure:
        transport.publish_sync(Envelope(body=b"x", routing_key="tls.nothing"))
    with pytest.raises(ConfigurationError, match=expected) as async_failure:
        await transport.connect()
    assert str(missing) in str(sync_failure.value) and str(missing) in str(async_failure.value)
    assert proxy.handshakes == 0
