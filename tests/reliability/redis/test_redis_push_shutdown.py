"""Warm shutdown of an idle worker that had messages pushed to it: the task running
finishes, the pushed ones not started go back to the queue, nothing runs twice,
and no idle registration is left behind (Redis broker, push delivery)."""

from __future__ import annotations

import json
import signal
from collections import Counter

import pytest
from _rel_support import Project, result_states, waiter
from tests.helpers.procs import run_python, wait_until

from celeriac.protocol import keys

pytestmark = pytest.mark.redis

TASKS = 6


def _inflight(project: Project) -> int:
    with project.client() as client:
        return sum(int(client.hlen(k)) for k in client.scan_iter(keys.inflight_key("*")))


def test_warm_shutdown_gives_back_pushed_messages(project: Project) -> None:
    first = project.worker("-P", "prefork", "-c", "1", "-n", "first@%h")
    with project.client() as client:
        wait_until(lambda: client.hlen(keys.IDLE_CONSUMERS_HASH) == 1, timeout=30,
                   what="the worker registered idle")  # fmt: skip
    sent = run_python(
        "import json\nfrom rel_tasks import sleep_for\n"
        f"ids = [sleep_for.delay(i, 0.5).id for i in range({TASKS})]\n"
        "print(json.dumps(ids))\n", project.path,
    )  # fmt: skip
    assert sent.returncode == 0, sent.stderr
    ids: list[str] = json.loads(sent.stdout)
    with project.client() as client:
        wait_until(lambda: client.llen("rel:started") >= 1, timeout=30, what="a task started")
    first.signal(signal.SIGTERM)
    assert first.wait(60) == 0
    done_by_first = len(project.runs())
    assert done_by_first >= 1
    assert _inflight(project) == 0  # nothing left in the stopped worker's hash
    with project.client() as client:
        assert client.hlen(keys.IDLE_CONSUMERS_HASH) == 0
        assert client.llen(keys.DEFAULT_QUEUE) == TASKS - done_by_first

    project.worker("-P", "prefork", "-c", "2", "-n", "second@%h")
    with project.client() as client:
        wait_until(waiter(client, ids), timeout=60, what=f"results of all {TASKS} tasks")
        states = result_states(client, ids)
    assert {state for state, _ in states.values()} == {"SUCCESS"}
    runs = Counter(project.runs())
    assert set(runs) == set(range(TASKS)) and max(runs.values()) == 1, runs
