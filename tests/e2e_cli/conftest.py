"""Fixtures that write a task module into a temp dir and run the real CLI there."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.procs import CliProcess

TASKS = '''
import os, time
from celeriac import Celery

app = Celery("tasks", broker="sqlite:///broker.db", backend="sqlite:///broker.db")
app.conf.broker_transport_options = {"lease_seconds": float(os.environ.get("LEASE", "30"))}


@app.task
def add(x, y):
    return x + y


@app.task
def fail(msg):
    raise ValueError(msg)


@app.task
def slow(i, seconds):
    with open("started.log", "a") as fh:
        fh.write(f"{i}\\n")
    time.sleep(seconds)
    with open("done.log", "a") as fh:
        fh.write(f"{i}\\n")
    return i
'''


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A directory holding ``tasks.py`` with an app on a local SQLite file."""
    (tmp_path / "tasks.py").write_text(textwrap.dedent(TASKS))
    return tmp_path


@pytest.fixture
def start_worker(project: Path) -> Iterator[object]:
    """Start ``celeriac -A tasks worker`` in the project dir; stopped at teardown."""
    procs: list[CliProcess] = []

    def start(*extra: str, env: dict[str, str] | None = None, ready: bool = True) -> CliProcess:
        proc = CliProcess(["-A", "tasks", "worker", "-l", "INFO", *extra], project, env)
        procs.append(proc)
        if ready:
            proc.wait_for(r"ready\.", timeout=30)
        return proc

    yield start
    for proc in procs:
        proc.stop()
