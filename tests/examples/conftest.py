"""Run the seeds' examples (examples/seedNNN_*) for real, from a copy in a temp dir.

The examples keep the seeds' fixed URLs (``redis://127.0.0.1:6379/5`` ...). A
test run leases its own Redis database / RabbitMQ vhost (tests/_servers.py) and
points the unchanged example at it through Celery's environment variables
``CELERY_BROKER_URL`` and ``CELERY_RESULT_BACKEND``, which win over every
setting, so parallel runs never share a queue and the example text stays as
the seed wrote it.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from tests.helpers.procs import CliProcess, run_python

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@dataclass
class Example:
    """A copy of one example directory, the env that isolates it, and its processes."""

    path: Path
    env: dict[str, str]
    procs: list[CliProcess] = field(default_factory=list)

    def cli(self, *args: str, ready: str | None = r"ready\.") -> CliProcess:
        """Start ``celeriac ARGS`` in the example dir (stopped at teardown)."""
        proc = CliProcess(list(args), self.path, self.env)
        self.procs.append(proc)
        if ready:
            proc.wait_for(ready, timeout=30)
        return proc

    def python(self, code: str, timeout: float = 60.0) -> list[str]:
        """Run client code in the example dir; fail with its stderr; its stdout lines."""
        done = run_python(code, self.path, timeout=timeout, env=self.env)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout.splitlines()


@pytest.fixture
def example(tmp_path: Path) -> Iterator[Callable[..., Example]]:
    """``example("seed002_quickstart", broker=url, backend=url)``: a runnable copy."""
    made: list[Example] = []

    def make(name: str, broker: str | None = None, backend: str | None = None) -> Example:
        target = tmp_path / name
        shutil.copytree(EXAMPLES / name, target)
        env = {"CELERY_BROKER_URL": broker or "", "CELERY_RESULT_BACKEND": backend or ""}
        ex = Example(target, env)
        made.append(ex)
        return ex

    yield make
    for ex in made:
        for proc in ex.procs:
            proc.stop()
