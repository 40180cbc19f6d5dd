"""Priorities through a real worker: higher runs first, per call, per task and by default."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.execution.conftest import Project

BROKERS = ("sqlite", "redis", "amqp")

TASKS = '''
app.conf.task_default_priority = 5
app.conf.task_queue_max_priority = 10


def note(label):
    with open("order.log", "a") as fh:
        fh.write(f"{label}\\n")


@app.task
def call(label):
    note(label)


@app.task(priority=9)
def urgent(label):
    note(label)
'''


@pytest.fixture
def project(make_project: Callable[[str], Project]) -> Project:
    return make_project(TASKS)


def test_higher_priority_runs_first(project: Project) -> None:
    # Queued before any worker runs, lowest first: the worker must reorder them.
    ids = project.python(
        "from tasks import call, urgent\n"
        "rs = [call.apply_async(('p0-a',), priority=0), call.apply_async(('p0-b',), priority=0),\n"
        "      call.delay('default5-a'), call.delay('default5-b'),\n"
        "      urgent.delay('task9-a'), call.apply_async(('p9-b',), priority=9)]\n"
        "print(' '.join(r.id for r in rs))\n"
    ).split()
    project.worker("-c", "1", "--prefetch-multiplier", "1")
    for task_id in ids:
        project.client.AsyncResult(task_id).get(timeout=15)
    order = project.read("order.log")
    assert [label.split("-")[0] for label in order] == [
        "task9", "p9", "default5", "default5", "p0", "p0"
    ], order
    assert order.index("p0-a") < order.index("p0-b")
    assert order.index("default5-a") < order.index("default5-b")
