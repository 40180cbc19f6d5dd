"""Retries through a real worker: ``self.retry``, ``autoretry_for``, backoff, exhaustion."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable

import pytest

from celeriac.errors import MaxRetriesExceededError
from tests.execution.conftest import Project
from tests.helpers.procs import wait_until

TASKS = '''
import time
from datetime import UTC, datetime, timedelta


def attempt(name):
    with open(name + ".log", "a") as fh:
        fh.write(f"{time.monotonic()}\\n")
    with open(name + ".log") as fh:
        return len(fh.read().split())


@app.task(bind=True)
def flaky(self, key, fails):
    n = attempt(key)
    if n <= fails:
        raise self.retry(exc=OSError(f"attempt {n}"), countdown=0.1, max_retries=5)
    return [n, self.request.retries]


@app.task(bind=True, max_retries=2)
def exhaust_plain(self):
    attempt("plain")
    raise self.retry(countdown=0.05)


@app.task(bind=True)
def exhaust_exc(self):
    attempt("exc")
    raise self.retry(exc=KeyError("gone"), countdown=0.05, max_retries=1)


@app.task(bind=True, default_retry_delay=1.5, max_retries=1)
def slow_retry(self):
    if attempt("slow") == 1:
        raise self.retry()
    return "second"


@app.task(bind=True)
def at_eta(self):
    if attempt("eta") == 1:
        raise self.retry(eta=datetime.now(UTC) + timedelta(seconds=0.4))
    return self.request.retries


@app.task(autoretry_for=(ConnectionError,), retry_backoff=0.2, retry_backoff_max=0.5,
          retry_jitter=False, retry_kwargs={"max_retries": 3})
def auto():
    attempt("auto")
    raise ConnectionError("down")


@app.task(autoretry_for=(ValueError,), retry_kwargs={"max_retries": 2, "countdown": 0.05})
def auto_then_ok():
    if attempt("auto_ok") < 3:
        raise ValueError("not yet")
    return "ok"
'''


@pytest.fixture
def project(make_project: Callable[[str], Project]) -> Project:
    project = make_project(TASKS)
    project.worker("-c", "2")
    return project


def _gaps(project: Project, name: str) -> list[float]:
    times = [float(x) for x in project.read(name + ".log")]
    return [b - a for a, b in itertools.pairwise(times)]


def test_retry_paths(project: Project) -> None:
    slow = project.send("slow_retry")
    flaky = project.send("flaky", "flaky", 2)
    plain = project.send("exhaust_plain")
    exc = project.send("exhaust_exc")
    eta = project.send("at_eta")
    auto = project.send("auto")
    auto_ok = project.send("auto_then_ok")

    # RETRY is the visible state while the retried message waits for its countdown.
    wait_until(lambda: slow.state == "RETRY", timeout=10, what="state RETRY")
    assert len(project.read("slow.log")) == 1

    assert flaky.get(timeout=15) == [3, 2]
    with pytest.raises(MaxRetriesExceededError):
        plain.get(timeout=15)
    assert len(project.read("plain.log")) == 3  # first run + max_retries=2
    with pytest.raises(KeyError):
        exc.get(timeout=15)
    assert len(project.read("exc.log")) == 2
    assert eta.get(timeout=15) == 1
    assert _gaps(project, "eta")[0] >= 0.35
    with pytest.raises(ConnectionError):
        auto.get(timeout=20)
    gaps = _gaps(project, "auto")
    assert len(gaps) == 3  # retry_kwargs max_retries=3
    # retry_backoff=0.2 doubles each time, capped by retry_backoff_max=0.5, no jitter.
    for gap, want in zip(gaps, (0.2, 0.4, 0.5), strict=True):
        assert want - 0.05 <= gap < want + 1.5, gaps
    assert auto_ok.get(timeout=15) == "ok"
    assert slow.get(timeout=15) == "second"
    assert _gaps(project, "slow")[0] >= 1.4
    started = time.monotonic()
    assert project.workers[0].wait_for(r"tasks\.flaky\[[0-9a-f-]+\] retry: OSError",
                                       timeout=5, count=2)
    assert time.monotonic() - started < 5
