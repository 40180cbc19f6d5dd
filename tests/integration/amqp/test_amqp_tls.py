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
import contextlib
import datetime
import ipaddress
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from celeriac import Celery
from celeriac.errors import BrokerUnreachable, ConfigurationError
from celeriac.protocol.envelope import Envelope
from celeriac.testing.worker_thread import run_worker
from celeriac.transports.amqp import AMQPTransport
from celeriac.transports.base import QueueSpec, TransportOptions


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A CA, and a server certificate it signed for 127.0.0.1 and localhost:
    ``(ca.pem, server.pem, server.key)``."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("celeriac test CA"))
          .issuer_name(_name("celeriac test CA")).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                         critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    server = (x509.CertificateBuilder().subject_name(_name("localhost"))
              .issuer_name(ca.subject).public_key(key.public_key())
              .serial_number(x509.random_serial_number())
              .not_valid_before(now - datetime.timedelta(minutes=5))
              .not_valid_after(now + datetime.timedelta(days=1))
              .add_extension(x509.SubjectAlternativeName([
                  x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                  critical=False)
              .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                             critical=False)
              .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                  ca_key.public_key()), critical=False)
              .sign(ca_key, hashes.SHA256()))
    ca_pem, cert_pem = directory / "ca.pem", directory / "server.pem"
    key_pem = directory / "server.key"
    ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_pem.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    _write_key(key_pem, key)
    return ca_pem, cert_pem, key_pem


class TLSProxy:
    """TLS on a free loopback port, plain bytes to RabbitMQ on 127.0.0.1:5672."""

    def __init__(self, certfile: Path, keyfile: Path, upstream: tuple[str, int]) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(certfile, keyfile)
        self.upstream = upstream
        self.handshakes = 0  # connections whose TLS handshake completed
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._loop.set_exception_handler(lambda _loop, _ctx: None)  # failed handshakes
        self._tasks: set[asyncio.Task[None]] = set()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(
            self._handle, "127.0.0.1", 0, ssl=self.context))
        self.port = server.sockets[0].getsockname()[1]
        self._started.set()
        self._loop.run_forever()
        server.close()
        for task in list(self._tasks):
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*self._tasks, return_exceptions=True))
        self._loop.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        if writer.get_extra_info("ssl_object") is not None:
            self.handshakes += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
            await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer))
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()

    @staticmethod
    async def _pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        finally:
            with contextlib.suppress(Exception):
                sink.close()

    def __enter__(self) -> TLSProxy:
        self._thread.start()
        assert self._started.wait(10), "the TLS proxy did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


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
