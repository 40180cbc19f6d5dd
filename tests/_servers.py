"""Real servers for the test run: start them when they are down, fail when impossible.

Tests never skip for a missing server (DESIGN.md section 9): a server that
cannot be reached after an attempt to start it fails the test with the reason.

Redis: :func:`ensure_redis` pings 127.0.0.1:6379 and starts ``redis-server`` if
needed. :func:`redis_db_lease` hands each test session its own database number
(9..15) under an ``flock``, so concurrent sessions on this machine (other
engineers' runs, xdist workers) never flush each other's data.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

__all__ = ["REDIS_HOST", "REDIS_PORT", "ensure_redis", "redis_db", "redis_db_lease", "redis_url"]

REDIS_HOST = "127.0.0.1"
REDIS_PORT = 6379
_REDIS_DBS = range(9, 16)
_LOCK_DIR = "/tmp"


def _redis_ping(timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def ensure_redis(wait: float = 10.0) -> None:
    """Make sure Redis answers on 127.0.0.1:6379, starting it if it is down."""
    if _redis_ping():
        return
    command = [
        "redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1",
        "--port", str(REDIS_PORT), "--save", "", "--appendonly", "no",
        "--dir", "/var/lib/redis", "--logfile", "/var/log/redis/ci.log",
    ]  # fmt: skip
    try:
        subprocess.run(command, check=False, capture_output=True, timeout=wait)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.fail(f"Redis is down on {REDIS_HOST}:{REDIS_PORT} and cannot be started: {exc}")
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if _redis_ping():
            return
        time.sleep(0.05)
    pytest.fail(f"Redis is down on {REDIS_HOST}:{REDIS_PORT} and did not start within {wait}s")


@contextlib.contextmanager
def redis_db_lease(wait: float = 60.0) -> Iterator[int]:
    """Hold one Redis database number (9..15) for this process until the block ends."""
    deadline = time.monotonic() + wait
    while True:
        for db in _REDIS_DBS:
            path = os.path.join(_LOCK_DIR, f"celeriac-test-redis-db{db}.lock")
            fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            try:
                yield db
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
            return
        if time.monotonic() > deadline:
            pytest.fail("every Redis test database (9..15) is held by another test session")
        time.sleep(0.2)


@pytest.fixture(scope="session")
def redis_db() -> Iterator[int]:
    """This session's own Redis database number (Redis started if it was down)."""
    ensure_redis()
    with redis_db_lease() as db:
        yield db


@pytest.fixture
def redis_url(redis_db: int) -> str:
    """``redis://127.0.0.1:6379/<db>`` on this session's database, flushed first."""
    import redis  # test dependency of this fixture only

    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=redis_db)
    try:
        client.flushdb()
    finally:
        client.close()
    return f"redis://{REDIS_HOST}:{REDIS_PORT}/{redis_db}"
