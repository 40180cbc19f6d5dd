"""Acknowledgement semantics through real workers: late acks, failures, lost children."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable

import pytest

from celeriac.errors import WorkerLostError
from tests.execution.conftest import Project
from tests.helpers.procs import wait_until

BROKERS = ("sqlite", "redis", "amqp")

TASKS = '''
import signal, time

app.conf.task_acks_on_failure_or_timeout = False


def sleep_while_parent_lives(seconds):
    # The worker is SIGKILLed in this test: its orphaned child stops here too.
    parent = os.getppid()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and os.getppid() == parent:
        time.sleep(0.05)


def attempt(name):
    with open(name + ".log", "a") as fh:
        fh.write("x\\n")
    with open(name + ".log") as fh:
        return len(fh.read().split())


@app.task
def fail_set_aside():
    attempt("fail_set_aside")
    raise ValueError("bad input")


@app.task(acks_on_failure_or_timeout=True)
def fail_acked():
    attempt("fail_acked")
    raise ValueError("acked anyway")


@app.task
def die_default():
    attempt("die_default")
    os.kill(os.getpid(), signal.SIGKILL)


@app.task(reject_on_worker_lost=True)
def die_requeue():
    if attempt("die_requeue") == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return "second life"


@app.task
def late(seconds):
    if attempt("late") == 1:
        sleep_while_parent_lives(seconds)
    return "late ran again"


@app.task(acks_late=False)
def early(seconds):
    if attempt("early") == 1:
        sleep_while_parent_lives(seconds)
    return "early ran again"
'''


@pytest.fixture
def project(make_project: Callable[[str], Project]) -> Project:
    return make_project(TASKS)


def _dead(project: Project) -> list[tuple[str, str]]:
    async def read() -> list[tuple[str, str]]:
        transport = project.client.new_transport()
        await transport.connect()
        try:
            return [(env.headers.get("id", ""), reason)
                    for env, reason in await transport.dead_letters("celery")]
        finally:
            await transport.close()

    return asyncio.run(read())


def test_acks_failures_and_lost_children(project: Project) -> None:
    worker = project.worker("-c", "2", env={"LEASE": "1.5"})
    set_aside = project.send("fail_set_aside")
    acked = project.send("fail_acked")
    lost = project.send("die_default")
    requeued = project.send("die_requeue")

    with pytest.raises(ValueError, match="bad input"):
        set_aside.get(timeout=10)
    with pytest.raises(ValueError, match="acked anyway"):
        acked.get(timeout=10)
    with pytest.raises(WorkerLostError):
        lost.get(timeout=15)
    assert requeued.get(timeout=15) == "second life"
    # task_acks_on_failure_or_timeout=False: the failed message is rejected without
    # requeue, so it waits in the dead-letter store with the reason.
    wait_until(lambda: any(i == set_aside.id for i, _ in _dead(project)), timeout=10,
               what="failed message set aside")
    reasons = dict(_dead(project))
    assert "task_acks_on_failure_or_timeout" in reasons[set_aside.id]
    assert acked.id not in reasons
    assert len(project.read("fail_set_aside.log")) == 1
    assert len(project.read("die_default.log")) == 1
    assert len(project.read("die_requeue.log")) == 2
    assert worker.proc.poll() is None

    # acks_late (default): a worker killed mid-task loses nothing; acks_late=False
    # acknowledged on receipt, so that message is gone with the worker.
    late = project.send("late", 60)
    early = project.send("early", 60)
    wait_until(lambda: project.read("late.log") and project.read("early.log"), timeout=10,
               what="both started")
    worker.signal(signal.SIGKILL)
    worker.wait(10)
    project.worker("-c", "2", env={"LEASE": "1.5"})
    assert late.get(timeout=20) == "late ran again"
    assert project.send("fail_acked").state in {"PENDING", "FAILURE"}
    assert len(project.read("early.log")) == 1
    assert early.state == "PENDING"
