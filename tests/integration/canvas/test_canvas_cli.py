"""The canvas workflows through the real ``celeriac worker`` command (prefork pool),
on SQLite, on Redis, and on RabbitMQ with the Redis result backend.

The task module is written to a temporary directory; the worker subprocess
imports it with ``-A``, and this test process sends the workflows as a client.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from _canvas_workflows import SYNC_CHECKS, load_tasks, write_tasks

from _servers import RABBITMQ_HOST, RABBITMQ_PORT, REDIS_HOST, REDIS_PORT
from helpers.procs import CliProcess


def _start(directory: Path, broker: str, backend: str) -> tuple[CliProcess, ModuleType]:
    write_tasks(directory)
    env = {"CANVAS_BROKER": broker, "CANVAS_BACKEND": backend}
    worker = CliProcess(["-A", "canvas_tasks", "worker", "-P", "prefork", "-c", "2",
                         "--loglevel=info"], cwd=directory, env=env)
    worker.wait_for(r"ready\.", timeout=60)
    import os

    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        client = load_tasks(directory / "canvas_tasks.py", f"canvas_cli_{uuid.uuid4().hex}")
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return worker, client


@pytest.fixture(scope="module", params=[
    "sqlite",
    pytest.param("redis", marks=pytest.mark.redis),
    # RabbitMQ carries the messages; Redis counts the chords (rpc:// cannot).
    pytest.param("amqp-redis", marks=[pytest.mark.amqp, pytest.mark.redis]),
])
def cli_tasks(request: pytest.FixtureRequest,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    directory = tmp_path_factory.mktemp(f"canvas_cli_{request.param}")
    if request.param == "sqlite":
        broker = backend = f"sqlite:///{directory}/broker.db"
    else:
        import redis

        db = request.getfixturevalue("redis_db")
        client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=db)
        client.flushdb()
        client.close()
        broker = backend = f"redis://{REDIS_HOST}:{REDIS_PORT}/{db}"
        if request.param == "amqp-redis":
            vhost = request.getfixturevalue("rabbitmq_vhost")
            broker = f"amqp://guest:guest@{RABBITMQ_HOST}:{RABBITMQ_PORT}/{vhost}"
    worker, mod = _start(directory, broker, backend)
    try:
        yield mod
    finally:
        mod.app.close()
        worker.stop()
    assert worker.proc.returncode == 0, worker.output[-3000:]


@pytest.mark.parametrize("check", SYNC_CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
def test_workflow_through_cli_worker(cli_tasks: ModuleType, check: object) -> None:
    check(cli_tasks)  # type: ignore[operator]
