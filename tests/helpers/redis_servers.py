"""Private ``redis-server`` processes for tests that restart or fail over a server.

The shared server on 127.0.0.1:6379 is never restarted: tests that need to stop
a server, turn persistence on, or run replicas and sentinels start their own
``redis-server`` processes on free loopback ports with their files in the test's
temp dir. Sentinels are ``redis-server <conf> --sentinel`` (the same binary as
Debian's ``redis-sentinel``), so nothing beyond ``redis-server`` is needed.

A missing ``redis-server`` binary fails the test (tests never skip).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

__all__ = ["RedisServer", "Sentinel", "free_port"]

HOST = "127.0.0.1"


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _binary() -> str:
    found = shutil.which("redis-server")
    if found is None:
        pytest.fail("redis-server is not installed (apt-get install redis-server)")
    return found


class RedisServer:
    """One ``redis-server`` on ``127.0.0.1:<port>`` with its files in ``directory``."""

    def __init__(self, directory: Path, args: Sequence[str] = (), port: int | None = None,
                 name: str = "redis") -> None:  # fmt: skip
        self.directory = directory
        self.port = port or free_port()
        self.name = name
        self.args = list(args)
        self.proc: subprocess.Popen[bytes] | None = None
        directory.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://{HOST}:{self.port}/0"

    def command(self) -> list[str]:
        """The command line that starts this server in the foreground."""
        return [
            _binary(), "--port", str(self.port), "--bind", HOST, "--daemonize", "no",
            "--dir", str(self.directory), "--logfile", str(self.directory / f"{self.name}.log"),
            "--save", "", *self.args,
        ]  # fmt: skip

    def client(self, **kwargs: object) -> redis.Redis:
        """A fresh redis-py client to this server (the caller closes it)."""
        return redis.Redis(host=HOST, port=self.port, socket_timeout=5, **kwargs)  # type: ignore[arg-type]

    def ping(self) -> bool:
        """True when the server answers PING (and has finished loading its data)."""
        client = self.client(socket_connect_timeout=0.5)
        try:
            return bool(client.ping())
        except redis.exceptions.RedisError:
            return False
        finally:
            client.close()

    def start(self, wait: float = 15.0) -> None:
        """Start the server and wait until it answers."""
        self.proc = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)  # fmt: skip
        deadline = time.monotonic() + wait
        while not self.ping():
            if self.proc.poll() is not None:
                pytest.fail(f"{self.name} on port {self.port} exited with {self.proc.returncode}:"
                            f"\n{self.log_tail()}")  # fmt: skip
            if time.monotonic() > deadline:
                pytest.fail(f"{self.name} on port {self.port} did not answer within {wait}s:"
                            f"\n{self.log_tail()}")  # fmt: skip
            time.sleep(0.02)

    def shutdown(self, wait: float = 15.0) -> None:
        """``SHUTDOWN`` (persisting per the server's settings), wait for the process to end."""
        if self.proc is None or self.proc.poll() is not None:
            return
        # No retries: redis-py would reconnect (with backoff) to the server that just left.
        client = self.client(retry=Retry(NoBackoff(), 0))
        try:
            client.shutdown()
        except redis.exceptions.ConnectionError:
            pass  # the server closes the connection as it exits
        finally:
            client.close()
        try:
            self.proc.wait(wait)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            pytest.fail(f"{self.name} on port {self.port} did not shut down within {wait}s")

    def stop(self) -> None:
        """End the process whatever its state (teardown)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the server's log file."""
        path = self.directory / f"{self.name}.log"
        if not path.exists():
            return "(no log)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


class Sentinel(RedisServer):
    """A sentinel (``redis-server <conf> --sentinel``) watching one primary."""

    def __init__(self, directory: Path, master_name: str, primary_port: int,
                 name: str = "sentinel") -> None:  # fmt: skip
        super().__init__(directory, name=name)
        self.master_name = master_name
        self.primary_port = primary_port

    def command(self) -> list[str]:
        """Sentinels read (and rewrite) a config file; options after it override."""
        conf = self.directory / f"{self.name}.conf"
        conf.write_text(
            f"port {self.port}\nbind {HOST}\ndir {self.directory}\n"
            f"logfile {self.directory / (self.name + '.log')}\n"
            f"sentinel monitor {self.master_name} {HOST} {self.primary_port} 1\n"
            f"sentinel down-after-milliseconds {self.master_name} 1000\n"
            f"sentinel failover-timeout {self.master_name} 5000\n"
        )
        return [_binary(), str(conf), "--sentinel"]

    def primary(self) -> tuple[str, int] | None:
        """The primary this sentinel names now, or ``None`` if it does not know it yet."""
        client = self.client()
        try:
            found = client.execute_command(  # type: ignore[no-untyped-call]
                "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.master_name
            )
        except redis.exceptions.RedisError:
            return None
        finally:
            client.close()
        if not found:
            return None
        host, port = found
        return (host.decode() if isinstance(host, bytes) else str(host), int(port))
