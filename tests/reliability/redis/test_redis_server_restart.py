"""Restart the Redis server in the middle of 5,000 tasks: the worker reconnects, 0 lost.

A private ``redis-server`` (never the shared one) runs with persistence on
(``appendonly yes``, ``appendfsync always``) in the test's temp dir. 5,000
tasks are published, a worker starts, and when about a fifth have run the
server is shut down (``SHUTDOWN``, which writes the append-only file) and
started again on the same port and dir. The worker must report the outage
(one line naming the URL) within a deadline derived from the default socket
timeout, reconnect by itself and say so; every task must end with a result and
have run at least once. Repeated executions are reported (at-least-once
delivery allows them).

The tasks record their runs in a file, not in Redis: a task that itself waited
for Redis would hold the worker's prefetch slots through the outage and hide
how the worker handles it.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from _rel_support import OUTAGE_DEADLINE, Project, all_results, outage_line, publish_notes
from tests.helpers.procs import wait_until
from tests.helpers.redis_servers import RedisServer

pytestmark = [pytest.mark.redis, pytest.mark.slow]

TASKS = 5000


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    made = RedisServer(tmp_path / "redis", ["--appendonly", "yes", "--appendfsync", "always"],
                       name="restarted")  # fmt: skip
    made.start()
    yield made
    made.stop()


def test_redis_restart_mid_run_loses_nothing(tmp_path: Path, server: RedisServer) -> None:
    project = Project(tmp_path, server.url)
    project.write()
    try:
        _run(project, server)
    finally:
        project.cleanup()


def _run(project: Project, server: RedisServer) -> None:
    ids = publish_notes(project, TASKS)
    worker = project.worker("-P", "prefork", "-c", "2")
    wait_until(lambda: len(project.notes()) >= TASKS // 5, timeout=60,
               what=f"{TASKS // 5} tasks run")  # fmt: skip
    started = time.monotonic()
    seen = len(worker.lines)
    server.shutdown()
    # Down until the worker says it lost Redis: an event with a deadline derived from
    # the socket timeout, not a guessed duration.
    worker.wait_for(outage_line(server.url), timeout=OUTAGE_DEADLINE)
    server.start()
    downtime = time.monotonic() - started
    done_at_restart = len(project.notes())
    assert done_at_restart < TASKS, "every task ran before the restart: nothing was tested"
    states = all_results(project, worker, ids, seen, "shutdown")
    worker.wait_for(r"(?i)reconnected", timeout=10)

    assert sorted(states) == sorted(ids), f"{TASKS - len(states)} task(s) without a result"
    assert {state for state, _ in states.values()} == {"SUCCESS"}
    runs = Counter(project.notes())
    assert set(runs) == set(range(TASKS)), f"{TASKS - len(runs)} task(s) never ran"
    duplicates = sum(n - 1 for n in runs.values())
    print(
        f"runs before the restart: {done_at_restart}; server down {downtime:.2f}s; "
        f"duplicate executions: {duplicates}"
    )
