"""Fixtures of the execution-semantics tests: a task module, a real CLI worker, a client.

Every test module defines its own ``TASKS`` source; :func:`make_project` writes
it as ``tasks.py`` into a temp dir whose app reads its broker from the
``BROKER_URL``/``BACKEND_URL`` environment variables. Each test runs through
real ``celeriac`` worker processes on the embedded default (SQLite) and on
Redis, and also on RabbitMQ (a fresh vhost, results in Redis) when its module
lists ``"amqp"`` in ``BROKERS`` (the bullets that concern the broker).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

_TESTS = str(Path(__file__).resolve().parents[1])
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

from _servers import ensure_rabbitmq, rabbitmq_vhost_lease  # noqa: E402
from celeriac import Celery  # noqa: E402
from tests.helpers.procs import CliProcess  # noqa: E402

__all__ = ["Project"]

HEADER = '''
import os
from celeriac import Celery

app = Celery("tasks", broker=os.environ["BROKER_URL"], backend=os.environ["BACKEND_URL"])
app.conf.broker_transport_options = {"lease_seconds": float(os.environ.get("LEASE", "30"))}
'''


@dataclass
class Project:
    """A temp dir with ``tasks.py``, its broker URL, workers started in it, and a client app."""

    path: Path
    broker_url: str
    kind: str
    backend_url: str
    workers: list[CliProcess] = field(default_factory=list)
    _client: Celery | None = None

    @property
    def env(self) -> dict[str, str]:
        return {"BROKER_URL": self.broker_url, "BACKEND_URL": self.backend_url}

    def worker(self, *extra: str, env: dict[str, str] | None = None, ready: bool = True,
               app: str = "tasks") -> CliProcess:
        """Start ``celeriac -A tasks worker -l INFO <extra>``; wait for 'ready.' by default."""
        proc = CliProcess(["-A", app, "worker", "-l", "INFO", *extra], self.path,
                          {**self.env, **(env or {})})
        self.workers.append(proc)
        if ready:
            proc.wait_for(r"ready\.", timeout=30)
        return proc

    @property
    def client(self) -> Celery:
        """An app in the test process on the same broker and result store."""
        if self._client is None:
            self._client = Celery("client", broker=self.broker_url, backend=self.backend_url,
                                  set_as_current=False)
        return self._client

    def send(self, name: str, *args: Any, **options: Any) -> Any:
        """``send_task('tasks.<name>', args, **options)`` from the test process."""
        return self.client.send_task(f"tasks.{name}", args, **options)

    def python(self, code: str, timeout: float = 60.0, env: dict[str, str] | None = None) -> str:
        """Run ``code`` in a fresh interpreter in the project dir; its stdout (must exit 0)."""
        env = {**os.environ, "PYTHONPATH": str(self.path), **self.env, **(env or {})}
        done = subprocess.run([sys.executable, "-c", code], cwd=self.path, env=env, text=True,
                              capture_output=True, timeout=timeout)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def read(self, name: str) -> list[str]:
        """Lines of a file the tasks wrote (empty when it does not exist yet)."""
        path = self.path / name
        return path.read_text().splitlines() if path.exists() else []


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run each test on the brokers its module lists in ``BROKERS`` (default SQLite, Redis)."""
    if "broker_kind" in metafunc.fixturenames:
        kinds = getattr(metafunc.module, "BROKERS", ("sqlite", "redis"))
        metafunc.parametrize("broker_kind", kinds)


def _flushed_redis(request: pytest.FixtureRequest) -> str:
    db = request.getfixturevalue("redis_db")
    import redis

    client = redis.Redis(host="127.0.0.1", port=6379, db=db)
    try:
        client.flushdb()
    finally:
        client.close()
    return f"redis://127.0.0.1:6379/{db}"


@pytest.fixture
def broker(request: pytest.FixtureRequest, tmp_path: Path, broker_kind: str) -> Iterator[str]:
    """A broker URL: an SQLite file in the temp dir, a flushed Redis db, a fresh RabbitMQ vhost."""
    if broker_kind == "sqlite":
        yield f"sqlite:///{tmp_path}/broker.db"
    elif broker_kind == "redis":
        yield _flushed_redis(request)
    else:
        ensure_rabbitmq()
        with rabbitmq_vhost_lease() as vhost:
            yield f"amqp://guest:guest@127.0.0.1:5672/{vhost}"


@pytest.fixture
def backend(request: pytest.FixtureRequest, broker: str) -> str:
    """The result store: the broker itself, or Redis when the broker is RabbitMQ."""
    return _flushed_redis(request) if broker.startswith("amqp") else broker


@pytest.fixture
def make_project(tmp_path: Path, broker: str,
                 backend: str) -> Iterator[Callable[..., Project]]:
    """Write ``HEADER + source`` as ``tasks.py``; workers are stopped at teardown."""
    made: list[Project] = []

    def make(source: str, header: str = HEADER) -> Project:
        (tmp_path / "tasks.py").write_text(textwrap.dedent(header) + textwrap.dedent(source))
        kind = broker.partition(":")[0]
        project = Project(tmp_path, broker, kind, backend)
        made.append(project)
        return project

    yield make
    procs = [proc for project in made for proc in project.workers]
    for proc in procs:  # all at once: they shut down in parallel
        if proc.proc.poll() is None:
            proc.signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.proc.kill()
            proc.wait(5)
    for project in made:
        if project._client is not None:
            project._client.close()
