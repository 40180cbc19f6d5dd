"""ETA tasks survive a worker restart and run exactly once, when due.

Twenty tasks with countdowns of 2-4 s: half published the celeriac way (straight
into the delayed zset), half the way a Celery client sends them (on the queue
with an ``eta`` header; option ``eta_on_queue``), which the first worker fetches
and parks in the zset. The worker is stopped (SIGTERM) before any is due and a
new one started: each task runs once, not before its due time.
"""

from __future__ import annotations

import json
import signal

import pytest
from _rel_support import Project, result_states, waiter
from tests.helpers.procs import run_python, wait_until

from celeriac.protocol import keys

pytestmark = pytest.mark.redis

SEND = """
import json, time
import rel_tasks
from rel_tasks import stamp
if {on_queue}:
    rel_tasks.app.conf.broker_transport_options = {{"lease_seconds": 2, "eta_on_queue": True}}
out = []
for i in {numbers}:
    countdown = 2 + (i % 5) * 0.5
    before = time.time()  # the ETA the client computes is at least this + countdown
    out.append([stamp.apply_async((i,), countdown=countdown).id, before + countdown])
print(json.dumps(out))
"""


def _send(project: Project, numbers: range, on_queue: bool) -> list[list[object]]:
    done = run_python(SEND.format(numbers=list(numbers), on_queue=on_queue), project.path)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_eta_tasks_run_once_across_a_worker_restart(project: Project) -> None:
    first = project.worker("-P", "prefork", "-c", "2", "-n", "first@%h")
    sent = _send(project, range(10), on_queue=False) + _send(project, range(10, 20), True)
    ids = [str(task_id) for task_id, _ in sent]
    due = {str(task_id): float(when) for task_id, when in sent}  # type: ignore[arg-type]
    with project.client() as client:
        # The queued ones were fetched by the first worker and parked in the zset.
        wait_until(lambda: client.zcard(keys.DELAYED_ZSET) == 20, timeout=5,
                   what="all 20 ETA messages in the delayed zset")  # fmt: skip
        first.signal(signal.SIGTERM)
        assert first.wait(20) == 0
        assert project.runs() == [], "an ETA task ran before it was due"
        assert client.zcard(keys.DELAYED_ZSET) == 20

        project.worker("-P", "prefork", "-c", "2", "-n", "second@%h")
        wait_until(waiter(client, ids), timeout=30, what="results of the 20 ETA tasks")
        states = result_states(client, ids)
        # Nothing left anywhere that could run again.
        assert client.zcard(keys.DELAYED_ZSET) == 0
        assert client.llen("celery") == 0

    assert {state for state, _ in states.values()} == {"SUCCESS"}
    for task_id, (_, result) in states.items():
        number, ran_at = result  # type: ignore[misc]
        early = due[task_id] - ran_at
        assert early <= 0.01, f"task {number} ran {early:.3f}s early"
    assert sorted(project.runs()) == list(range(20)), "each ETA task runs exactly once"
