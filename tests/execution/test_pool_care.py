"""Pool care through real workers: recycling by count and memory, autoscale, prefetch, -O fair."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from tests.execution.conftest import Project
from tests.helpers.procs import wait_until

TASKS = '''
import time

HOARD = []


@app.task
def pid():
    return os.getpid()


@app.task
def hog(mib):
    HOARD.append(bytearray(mib * 1024 * 1024))
    return os.getpid()


@app.task
def hold(name, seconds):
    with open(name + ".log", "a") as fh:
        fh.write(f"start {os.getpid()} {time.time()}\\n")
    time.sleep(seconds)
    with open(name + ".log", "a") as fh:
        fh.write(f"end {os.getpid()} {time.time()}\\n")
    return os.getpid()
'''


@pytest.fixture
def project(make_project: Callable[[str], Project]) -> Project:
    return make_project(TASKS)


def _queue_length(project: Project, queue: str) -> int:
    async def read() -> int:
        transport = project.client.new_transport()
        await transport.connect()
        try:
            return await transport.queue_length(queue)
        finally:
            await transport.close()

    return asyncio.run(read())


def test_pool_care(project: Project) -> None:
    starting = [
        project.worker("-c", "1", "--max-tasks-per-child", "2", "-Q", "recycle", "-n", "r@%h",
                       ready=False),
        project.worker("-c", "1", "--max-memory-per-child", "150000", "-Q", "mem", "-n", "m@%h",
                       ready=False),
        project.worker("--autoscale", "3,1", "-Q", "scale", "-n", "s@%h", ready=False),
        project.worker("-c", "1", "--prefetch-multiplier", "1", "-Q", "pf", "-n", "p@%h",
                       ready=False),
        project.worker("-c", "2", "-O", "fair", "-Q", "fair", "-n", "f@%h", ready=False),
    ]
    for w in starting:
        w.wait_for(r"ready\.", timeout=30)

    # --max-tasks-per-child=2: every two tasks a new child process.
    pids = [project.send("pid", queue="recycle").get(timeout=10) for _ in range(4)]
    assert pids[0] == pids[1] != pids[2] == pids[3], pids

    # --max-memory-per-child (KiB): a child that grew past it is replaced after its task.
    first = project.send("hog", 200, queue="mem").get(timeout=20)
    second = project.send("pid", queue="mem").get(timeout=10)
    assert first != second

    # prefetch multiplier 1 with one process: one message in flight, the rest stay queued.
    pf = [project.send("hold", "pf", 1.0, queue="pf") for _ in range(3)]
    wait_until(lambda: project.read("pf.log"), timeout=10, what="pf started")
    assert _queue_length(project, "pf") == 2

    # --autoscale=3,1: three waiting tasks make the pool grow to run them together.
    scale = [project.send("hold", "scale", 2.0, queue="scale") for _ in range(3)]
    assert len({r.get(timeout=20) for r in scale}) == 3
    lines = [line.split() for line in project.read("scale.log")]
    last_start = max(float(t) for kind, _, t in lines if kind == "start")
    first_end = min(float(t) for kind, _, t in lines if kind == "end")
    assert last_start < first_end, "the three did not overlap"

    # -O fair: short tasks go to the idle child, never queued behind a long one.
    long = project.send("hold", "long", 6.0, queue="fair")
    wait_until(lambda: project.read("long.log"), timeout=10, what="long started")
    started = time.monotonic()
    shorts = [project.send("hold", "short", 0.0, queue="fair") for _ in range(6)]
    for r in shorts:
        r.get(timeout=10)
    assert time.monotonic() - started < 4.0
    assert not long.ready()
    long.revoke(terminate=True)
    for r in pf:
        r.get(timeout=10)
