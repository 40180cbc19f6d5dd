"""TLS to Redis (``rediss://``, ``broker_use_ssl``, ``redis_backend_use_ssl``)
against the real server, through a TLS-terminating proxy (tests/helpers/tls.py).

Hosted Redis services mostly speak TLS only, so every path a worker and a
client use must work over it: the sync publisher, the blocking result reader,
the worker's fetch/ack/store connections, the wake-up and push channels, and
asyncio clients. The proxy counts completed handshakes, so a test sees that TLS
was spoken rather than a plain connection slipping through.
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
from celeriac.errors import BrokerUnreachable
from celeriac.protocol.envelope import Envelope
from celeriac.testing.worker_thread import run_worker
from celeriac.transports.base import TransportOptions
from celeriac.transports.redis import RedisTransport

pytestmark = pytest.mark.redis


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def proxy(certificates: tuple[Path, Path, Path], redis_url: str) -> Iterator[TLSProxy]:
    parts = urlsplit(redis_url)
    _ca, cert, key = certificates
    with TLSProxy(cert, key, (parts.hostname or "127.0.0.1", parts.port or 6379)) as made:
        yield made


def _via_proxy(redis_url: str, port: int, scheme: str = "rediss", query: str = "") -> str:
    db = urlsplit(redis_url).path
    return f"{scheme}://127.0.0.1:{port}{db}" + (f"?{query}" if query else "")


def _roundtrip(app: Celery, pool: str = "threads") -> None:
    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    @app.task
    async def amul(x: int, y: int) -> int:
        return x * y

    try:
        with run_worker(app, pool=pool, concurrency=2):
            results = [add.delay(i, 1) for i in range(20)]
            assert [r.get(timeout=15) for r in results] == [i + 1 for i in range(20)]

            async def asynchronous() -> list[int]:
                sent = [await amul.adelay(i, 3) for i in range(5)]
                return [await asyncio.wait_for(r, 15) for r in sent]

            assert asyncio.run(asynchronous()) == [i * 3 for i in range(5)]
    finally:
        app.close()


def test_worker_and_client_over_rediss_url_options(
        redis_url: str, proxy: TLSProxy, certificates: tuple[Path, Path, Path]) -> None:
    ca, _cert, _key = certificates
    url = _via_proxy(redis_url, proxy.port, query=f"ssl_cert_reqs=required&ssl_ca_certs={ca}")
    _roundtrip(Celery("tlsurl", broker=url, backend=url))
    # worker: fetch/ack, scripts, wake-ups, result store; client: publisher, result reader
    assert proxy.handshakes >= 4


def test_use_ssl_settings_turn_tls_on_for_redis_urls(
        redis_url: str, proxy: TLSProxy, certificates: tuple[Path, Path, Path]) -> None:
    ca, _cert, _key = certificates
    url = _via_proxy(redis_url, proxy.port, scheme="redis")
    app = Celery("tlsset", broker=url, backend=url)
    app.conf.broker_use_ssl = {"ssl_cert_reqs": ssl.CERT_REQUIRED, "ssl_ca_certs": str(ca)}
    app.conf.redis_backend_use_ssl = {"ssl_cert_reqs": "required", "ssl_ca_certs": str(ca)}
    _roundtrip(app)
    assert proxy.handshakes >= 4


def test_verification_fails_clearly_without_the_ca(redis_url: str, proxy: TLSProxy) -> None:
    transport = RedisTransport(_via_proxy(redis_url, proxy.port),
                               TransportOptions(connect_timeout=5.0, connect_retry=False))
    try:
        with pytest.raises(BrokerUnreachable) as failure:
            transport.publish_sync(Envelope(body=b"x", routing_key="tls.nothing"))
    finally:
        transport.close_sync()
    text = str(failure.value)
    assert "certificate verify failed" in text or "certificate verification failed" in text
    assert "\n" not in text
    assert proxy.handshakes == 0


def test_cert_none_connects_without_the_ca(redis_url: str, proxy: TLSProxy) -> None:
    url = _via_proxy(redis_url, proxy.port, query="ssl_cert_reqs=none")
    _roundtrip(Celery("tlsnone", broker=url, backend=url))
    assert proxy.handshakes >= 4
