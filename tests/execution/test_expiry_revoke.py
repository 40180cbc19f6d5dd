"""Expiry and revoke through real workers: REVOKED without running, terminate, --statedb."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from tests.execution.conftest import Project
from tests.helpers.procs import wait_until

BROKERS = ("sqlite", "redis", "amqp")

TASKS = '''
import time
from celeriac import signals


@signals.task_revoked.connect
def on_revoked(sender=None, request=None, terminated=False, expired=False, **kw):
    with open("revoked-signal.log", "a") as fh:
        fh.write(f"{request.id} {terminated} {expired}\\n")


@app.task
def record(i):
    with open("record.log", "a") as fh:
        fh.write(f"{i}\\n")
    return i


@app.task
def slow(seconds):
    with open("slow.log", "a") as fh:
        fh.write("started\\n")
    time.sleep(seconds)
    return "finished"
'''


@pytest.fixture
def project(make_project: Callable[[str], Project]) -> Project:
    return make_project(TASKS)


def test_expiry_revoke_terminate_and_statedb(project: Project) -> None:
    statedb = str(project.path / "revoked.json")
    w1 = project.worker("-c", "2", "--statedb", statedb, "-n", "w1@%h")
    w2 = project.worker("-c", "1", "-n", "w2@%h")

    past = project.send("record", 1, expires=datetime.now(UTC) - timedelta(seconds=1))
    during_eta = project.send("record", 2, countdown=1.5, expires=0.5)
    revoked = project.send("record", 3, countdown=1.5)
    revoked.revoke()
    # The revoke reached every worker.
    for w in (w1, w2):
        w.wait_for(rf"Tasks flagged as revoked: {revoked.id}", timeout=10)

    slow = project.send("slow", 30)
    wait_until(lambda: project.read("slow.log"), timeout=10, what="slow started")
    project.client.control.revoke(slow.id, terminate=True, signal="SIGTERM")
    wait_until(lambda: slow.state == "REVOKED", timeout=10, what="slow terminated")

    for r in (past, during_eta, revoked):
        wait_until(lambda r=r: r.state == "REVOKED", timeout=10, what=f"{r.id} REVOKED")
    wait_until(lambda: len(re.findall(r"Discarding (expired|revoked) task", w1.output + w2.output))
               >= 3, timeout=10, what="discard lines")
    logs = w1.output + w2.output
    assert f"Discarding expired task: tasks.record[{past.id}]" in logs
    assert f"Discarding expired task: tasks.record[{during_eta.id}]" in logs
    assert f"Discarding revoked task: tasks.record[{revoked.id}]" in logs
    assert project.send("record", 5).get(timeout=10) == 5  # both still serve

    # A revoke remembered in --statedb survives a restart of the worker.
    late = project.send("record", 4, countdown=3)
    project.client.revoke(late.id)
    w1.wait_for(rf"Tasks flagged as revoked: {late.id}", timeout=10)
    w1.stop()
    w2.stop()
    w3 = project.worker("-c", "1", "--statedb", statedb, "-n", "w3@%h")
    w3.wait_for(rf"Discarding revoked task: tasks\.record\[{late.id}\]", timeout=15)
    assert project.send("record", 6).get(timeout=10) == 6
    assert sorted(project.read("record.log")) == ["5", "6"]
    signalled = {line.split()[0]: line.split()[1:] for line in project.read("revoked-signal.log")}
    assert signalled[slow.id] == ["True", "False"]
    assert signalled[past.id] == ["False", "True"]
    assert signalled[revoked.id] == ["False", "False"]
