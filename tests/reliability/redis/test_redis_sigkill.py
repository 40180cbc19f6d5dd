"""kill -9 a worker in the middle of 200 tasks: another worker finishes them, 0 lost.

acks_late is the default, so the 200 tasks of 0.2 s each are acknowledged only
when they finish. The kill comes while tasks run (prefork children die with
the worker). The killed worker's
lease (2 s here) lapses and the next worker puts its in-flight messages back at
the head of the queue. Tasks that
were running when the worker died may run twice (at-least-once); every task
must end with a SUCCESS result and have run at least once.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest
from _rel_support import RUNS, Project, result_states, waiter
from tests.helpers.procs import run_python, wait_until

pytestmark = pytest.mark.redis

TASKS = 200


def test_sigkill_mid_run_loses_nothing(project: Project) -> None:
    sent = run_python(
        "import json\nfrom rel_tasks import sleep_for\n"
        f"ids = [r.id for r in sleep_for.delay_many([(i, 0.2) for i in range({TASKS})])]\n"
        "print(json.dumps(ids))\n", project.path,
    )  # fmt: skip
    assert sent.returncode == 0, sent.stderr
    ids: list[str] = json.loads(sent.stdout)
    assert len(set(ids)) == TASKS

    first = project.worker("-P", "prefork", "-c", "4", "-n", "first@%h")

    def mid_run() -> bool:
        with project.client() as client:
            started, done = client.llen("rel:started"), client.llen(RUNS)
        return done >= 40 and started > done

    wait_until(mid_run, timeout=30, what="40 tasks done and more running")
    project.kill9(first)  # returns once its pool children are gone too
    done_when_killed = len(project.runs())
    with project.client() as client:
        started_when_killed = {int(x) for x in client.lrange("rel:started", 0, -1)}

    second = project.worker("-P", "prefork", "-c", "4", "-n", "second@%h")
    with project.client() as client:
        wait_until(waiter(client, ids), timeout=90, what=f"results of all {TASKS} tasks")
        states = result_states(client, ids)
    second.wait_for(r"restored \d+ message", timeout=10)

    assert sorted(states) == sorted(ids)
    assert {state for state, _ in states.values()} == {"SUCCESS"}
    assert sorted(result for _, result in states.values()) == list(range(TASKS))  # type: ignore[type-var]
    runs = Counter(project.runs())
    assert set(runs) == set(range(TASKS)), "some task never ran"
    duplicates = sum(n - 1 for n in runs.values())
    repeated = {i for i, n in runs.items() if n > 1}
    # Only tasks already started when the worker died may run again.
    assert repeated <= started_when_killed, (repeated, started_when_killed)
    print(
        f"done before kill: {done_when_killed}; duplicate executions: {duplicates} "
        f"{sorted(repeated)}; started when killed: {len(started_when_killed)}"
    )
