"""Rate limits through real workers: per task, per worker default, disabled, changed at run time."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable

import pytest

from tests.execution.conftest import Project

TASKS = '''
import time
from celeriac import signals

if os.environ.get("DEFAULT_RATE"):
    app.conf.task_default_rate_limit = os.environ["DEFAULT_RATE"]
if os.environ.get("DISABLE"):
    app.conf.worker_disable_rate_limits = True

WORKER = []


@signals.worker_ready.connect
def keep(sender, **kw):
    WORKER.append(sender)


def note(name):
    with open(name + ".log", "a") as fh:
        fh.write(f"{time.time()}\\n")


@app.task(rate_limit="60/m")
def limited():
    note("off" if os.environ.get("DISABLE") else "limited")


@app.task
def free(i):
    note("free")
    return i


@app.task(rate_limit="6/m")
async def slow_rate():
    note("slow_rate")


@app.task
async def dflt():
    note("dflt")


@app.task
async def change(name, rate):
    WORKER[0].set_rate_limit(name, rate)
'''


@pytest.fixture
def project(make_project: Callable[[str], Project]) -> Project:
    return make_project(TASKS)


def _times(project: Project, name: str) -> list[float]:
    return sorted(float(x) for x in project.read(name + ".log"))


def test_rate_limits(project: Project) -> None:
    project.worker("-c", "2")
    project.worker("-P", "asyncio", "-Q", "rt", "-n", "rt@%h", env={"DEFAULT_RATE": "2/s"})
    project.worker("-P", "threads", "-Q", "off", "-n", "off@%h", env={"DISABLE": "1"})

    limited = [project.send("limited") for _ in range(4)]
    free = [project.send("free", i) for i in range(10)]
    slow = [project.send("slow_rate", queue="rt") for _ in range(3)]
    dflt = [project.send("dflt", queue="rt") for _ in range(3)]
    off = [project.send("limited", queue="off") for _ in range(4)]

    # Other tasks flow while the limited ones wait for their tokens.
    assert [r.get(timeout=10) for r in free] == list(range(10))
    free_done = time.time()
    for r in off:
        r.get(timeout=10)
    # worker_disable_rate_limits: four '60/m' calls did not wait for each other.
    off_times = _times(project, "off")
    assert len(off_times) == 4 and off_times[-1] - off_times[0] < 0.9, off_times
    for r in dflt:
        r.get(timeout=10)
    times = _times(project, "dflt")
    assert all(b - a >= 0.4 for a, b in itertools.pairwise(times)), times
    # slow_rate ('6/m'): the first ran at once, the next waits ~10 s unless changed.
    wait_slow = time.monotonic()
    while len(project.read("slow_rate.log")) < 1:
        assert time.monotonic() - wait_slow < 10
        time.sleep(0.02)
    project.send("change", "tasks.slow_rate", "100/s", queue="rt").get(timeout=10)
    for r in slow:
        r.get(timeout=5)
    for r in limited:
        r.get(timeout=15)
    times = _times(project, "limited")
    assert times[-1] - times[0] >= 2.9, times
    assert all(b - a >= 0.9 for a, b in itertools.pairwise(times)), times
    assert free_done < times[2], "free tasks were held behind the rate-limited ones"
    slow_times = _times(project, "slow_rate")
    assert slow_times[-1] - slow_times[0] < 5.0


def test_parse_rate_and_bucket() -> None:
    from celeriac.errors import ConfigurationError
    from celeriac.worker.ratelimit import TokenBucket, parse_rate

    assert parse_rate("10/s") == 10.0
    assert parse_rate("120/m") == 2.0
    assert parse_rate("3600/h") == 1.0
    assert parse_rate(5) == 5.0
    assert parse_rate(None) is None and parse_rate("0") is None
    with pytest.raises(ConfigurationError):
        parse_rate("ten per second")
    bucket = TokenBucket(2.0, stamp=100.0)
    assert bucket.take(100.0) and not bucket.take(100.0)
    assert bucket.wait_time(100.25) == pytest.approx(0.25)
    assert bucket.take(100.5)
