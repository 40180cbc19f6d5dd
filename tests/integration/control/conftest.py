"""Fixtures of the remote-control tests: a task module and a real prefork worker
(the ``celeriac`` CLI in a subprocess) on Redis or RabbitMQ, results in Redis."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

_TESTS = str(Path(__file__).resolve().parents[2])
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

from tests.helpers.procs import CELERIAC, CliProcess  # noqa: E402

from _servers import RABBITMQ_HOST, RABBITMQ_PORT, REDIS_HOST, REDIS_PORT  # noqa: E402
from celeriac import Celery  # noqa: E402

__all__ = ["Project", "project", "start_worker"]

_TASKS = '''
import os
import time

from celeriac import Celery

app = Celery("ctlproj", broker=os.environ["CTL_BROKER"], backend=os.environ["CTL_BACKEND"])
app.conf.task_default_queue = "ctl-q"


@app.task(name="ctl.add")
def add(x, y):
    return x + y


@app.task(name="ctl.sleep")
def sleep(seconds):
    time.sleep(seconds)
    return seconds
'''


@dataclass
class Project:
    """The task module's directory, its environment and a client app on the same servers."""

    path: Path
    env: dict[str, str]
    broker: str
    backend: str
    kind: str

    def client(self) -> Celery:
        app = Celery("ctl-client", broker=self.broker, backend=self.backend)
        app.conf.task_default_queue = "ctl-q"
        return app

    def cli(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """``celeriac -A ctlproj ARGS`` as an operator runs it."""
        env = {**os.environ, **self.env,
               "PYTHONPATH": os.pathsep.join([str(self.path), os.environ.get("PYTHONPATH", "")])}
        return subprocess.run([CELERIAC, "-A", "ctlproj", *args], cwd=self.path, env=env,
                              capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module", params=["redis", "amqp"])
def project(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
            redis_db: int, rabbitmq_vhost: str) -> Project:
    import redis

    backend = f"redis://{REDIS_HOST}:{REDIS_PORT}/{redis_db}"
    client = redis.Redis.from_url(backend)
    try:
        client.flushdb()
    finally:
        client.close()
    broker = (backend if request.param == "redis" else
              f"amqp://guest:guest@{RABBITMQ_HOST}:{RABBITMQ_PORT}/{rabbitmq_vhost}")
    path = tmp_path_factory.mktemp("ctlproj")
    (path / "ctlproj.py").write_text(textwrap.dedent(_TASKS))
    return Project(path, {"CTL_BROKER": broker, "CTL_BACKEND": backend}, broker, backend,
                   request.param)


def start_worker(project: Project, name: str, *args: str) -> CliProcess:
    """A prefork worker ``name`` with 2 children, returned once ready."""
    proc = CliProcess(["-A", "ctlproj", "worker", "-l", "INFO", "-P", "prefork", "-c", "2",
                       "-n", name, *args], project.path, env=project.env)
    try:
        proc.wait_for(r"@\S+ ready\.", timeout=60)
    except AssertionError:
        proc.stop()
        raise
    return proc


@pytest.fixture(scope="module")
def worker(project: Project) -> Iterator[str]:
    """The node name of a running prefork worker (module-wide)."""
    name = f"ctl-{project.kind}@testhost"
    proc = start_worker(project, name)
    yield name
    proc.stop()
