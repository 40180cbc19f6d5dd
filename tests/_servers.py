"""Real servers for the test run: start them when they are down, fail when impossible.

Tests never skip for a missing server (DESIGN.md section 9): a server that
cannot be reached after an attempt to start it fails the test with the reason.

Redis: :func:`ensure_redis` pings 127.0.0.1:6379 and starts ``redis-server`` if
needed. :func:`redis_db_lease` hands each test session its own database number
(2..15 but 7) under an ``flock``, so concurrent sessions on this machine (other
engineers' runs, xdist workers) never flush each other's data.

RabbitMQ: :func:`ensure_rabbitmq` checks 127.0.0.1:5672 and runs
``rabbitmq-server -detached`` if needed; :func:`rabbitmq_vhost` gives each test
session its own vhost (``celeriac-test-<random>``), deleted at the end.

Chromium (for the dashboard's browser tests): :func:`ensure_chromium` installs
Debian's ``chromium`` package with apt-get when ``/usr/bin/chromium`` is missing.
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

__all__ = [
    "CHROMIUM",
    "RABBITMQ_HOST",
    "RABBITMQ_PORT",
    "REDIS_HOST",
    "REDIS_PORT",
    "amqp_url",
    "ensure_chromium",
    "ensure_rabbitmq",
    "ensure_redis",
    "rabbitmq_vhost",
    "rabbitmq_vhost_lease",
    "redis_db",
    "redis_db_lease",
    "redis_url",
]

REDIS_HOST = "127.0.0.1"
REDIS_PORT = 6379
_REDIS_DBS = (*range(2, 7), *range(8, 16))  # 0, 1: users' own data; 7: bench/
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
    """Hold one Redis database number (2..15 but 7) for this process until the block ends."""
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
            pytest.fail("every Redis test database (2..15 but 7) is held by another test session")
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


# -- RabbitMQ ------------------------------------------------------------------------

RABBITMQ_HOST = "127.0.0.1"
RABBITMQ_PORT = 5672


def _rabbitmq_open(timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((RABBITMQ_HOST, RABBITMQ_PORT), timeout=timeout) as sock:
            sock.sendall(b"AMQP\x00\x00\x09\x01")
            return sock.recv(8) != b""
    except OSError:
        return False


def _rabbitmqctl(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["rabbitmqctl", *args], check=False, capture_output=True,
                          text=True, timeout=timeout)


def ensure_rabbitmq(wait: float = 60.0) -> None:
    """Make sure RabbitMQ answers on 127.0.0.1:5672, starting it if it is down."""
    if _rabbitmq_open():
        return
    try:
        subprocess.run(["rabbitmq-server", "-detached"], check=False, capture_output=True,
                       timeout=wait)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.fail(f"RabbitMQ is down on {RABBITMQ_HOST}:{RABBITMQ_PORT} and cannot be "
                    f"started: {exc}")
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if _rabbitmq_open():
            _rabbitmqctl("await_startup", timeout=wait)
            return
        time.sleep(0.2)
    pytest.fail(f"RabbitMQ is down on {RABBITMQ_HOST}:{RABBITMQ_PORT} and did not start "
                f"within {wait}s")


@contextlib.contextmanager
def rabbitmq_vhost_lease() -> Iterator[str]:
    """A fresh vhost ``celeriac-test-<random>`` (guest has all rights), deleted afterwards."""
    import uuid

    name = f"celeriac-test-{uuid.uuid4().hex[:10]}"
    made = _rabbitmqctl("add_vhost", name)
    if made.returncode != 0:
        pytest.fail(f"rabbitmqctl add_vhost {name} failed: {made.stderr.strip()}")
    perms = _rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
    if perms.returncode != 0:
        _rabbitmqctl("delete_vhost", name)
        pytest.fail(f"rabbitmqctl set_permissions -p {name} failed: {perms.stderr.strip()}")
    try:
        yield name
    finally:
        _rabbitmqctl("delete_vhost", name)


@pytest.fixture(scope="session")
def rabbitmq_vhost() -> Iterator[str]:
    """This session's own RabbitMQ vhost (RabbitMQ started if it was down)."""
    ensure_rabbitmq()
    with rabbitmq_vhost_lease() as vhost:
        yield vhost


@pytest.fixture
def amqp_url(rabbitmq_vhost: str) -> str:
    """``amqp://guest:guest@127.0.0.1:5672/<this session's vhost>``."""
    return f"amqp://guest:guest@{RABBITMQ_HOST}:{RABBITMQ_PORT}/{rabbitmq_vhost}"


CHROMIUM = "/usr/bin/chromium"


def ensure_chromium(wait: float = 900.0) -> str:
    """Debian's Chromium at :data:`CHROMIUM`, installed with apt-get when missing
    (as root, or through ``sudo -n``); fails the test when that is impossible."""
    if os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    prefix = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    with open(os.path.join(_LOCK_DIR, "celeriac-test-apt.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one installer at a time on this machine
        try:
            if not os.access(CHROMIUM, os.X_OK):
                subprocess.run([*prefix, "apt-get", "update"], check=False,
                               capture_output=True, timeout=wait, env=env)
                done = subprocess.run([*prefix, "apt-get", "install", "-y", "chromium",
                                       "chromium-driver"], check=False, capture_output=True,
                                      text=True, timeout=wait, env=env)
                if done.returncode != 0:
                    pytest.fail(f"Chromium is missing and apt-get could not install it: "
                                f"{done.stderr.strip()[-500:]}")
        except (OSError, subprocess.TimeoutExpired) as exc:
            pytest.fail(f"Chromium is missing at {CHROMIUM} and cannot be installed: {exc}")
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"Chromium is still missing at {CHROMIUM} after apt-get install")
    return CHROMIUM
