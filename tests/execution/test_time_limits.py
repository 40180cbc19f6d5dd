"""Time limits through a real worker: per task, per call, per worker; prefork and asyncio."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from celeriac.errors import SoftTimeLimitExceeded, TimeLimitExceeded
from tests.execution.conftest import Project

TASKS = '''
import asyncio, os, time
from celeriac.exceptions import SoftTimeLimitExceeded


def note(name, text):
    with open(name, "a") as fh:
        fh.write(f"{text}\\n")


@app.task
def pid():
    return os.getpid()


@app.task(time_limit=1)
def hang():
    note("hang.log", os.getpid())
    time.sleep(30)


@app.task(soft_time_limit=0.5)
def soft_clean():
    try:
        time.sleep(30)
    except SoftTimeLimitExceeded:
        return "cleaned up"


@app.task
def sleeper(seconds):
    time.sleep(seconds)
    return "slept"


@app.task
def catcher(seconds):
    try:
        time.sleep(seconds)
    except SoftTimeLimitExceeded:
        return "caught"
    return "not caught"


@app.task
def stubborn():
    try:
        time.sleep(30)
    except SoftTimeLimitExceeded:
        time.sleep(30)  # ignores the soft limit: the worker's hard limit ends it


@app.task(soft_time_limit=0.5)
async def aslow():
    try:
        await asyncio.sleep(30)
    except asyncio.CancelledError:
        note("acancel.log", "cancelled")
        raise
'''


@pytest.fixture
def project(make_project: Callable[[str], Project]) -> Project:
    return make_project(TASKS)


def test_limits_on_prefork_and_asyncio(project: Project) -> None:
    worker = project.worker("-c", "2", "--soft-time-limit", "1.5", "--time-limit", "3")
    aio = project.worker("-P", "asyncio", "-Q", "aio", "-n", "aio@%h")
    before = {project.send("pid").get(timeout=10) for _ in range(4)}

    hard = project.send("hang")
    soft = project.send("soft_clean")
    per_call_hard = project.send("sleeper", 30, time_limit=1)
    per_call_soft = project.send("catcher", 30, soft_time_limit=0.5)
    per_worker_soft = project.send("catcher", 30)
    per_call_wins = project.send("sleeper", 2.5)  # under the worker's soft limit of 1.5 s
    cancelled = project.send("aslow", queue="aio")
    per_worker_hard = project.send("stubborn")

    with pytest.raises(TimeLimitExceeded):
        hard.get(timeout=15)
    assert soft.get(timeout=10) == "cleaned up"
    with pytest.raises(TimeLimitExceeded):
        per_call_hard.get(timeout=15)
    assert per_call_soft.get(timeout=10) == "caught"
    assert per_worker_soft.get(timeout=10) == "caught"
    with pytest.raises(SoftTimeLimitExceeded):
        per_call_wins.get(timeout=10)
    with pytest.raises(SoftTimeLimitExceeded):
        cancelled.get(timeout=10)
    with pytest.raises(TimeLimitExceeded):
        per_worker_hard.get(timeout=15)
    assert project.read("acancel.log") == ["cancelled"]

    # The hard limit killed the child that ran ``hang``; the worker still serves
    # and its replacement child has a new pid.
    worker.wait_for(r"[Hh]ard time limit|TimeLimitExceeded", timeout=5)
    killed = {int(p) for p in project.read("hang.log")}
    after = {project.send("pid").get(timeout=10) for _ in range(6)}
    assert not killed & after
    assert after - before
    assert project.send("sleeper", 0.01).get(timeout=10) == "slept"
    assert aio.proc.poll() is None and worker.proc.poll() is None
