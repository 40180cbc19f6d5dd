"""A Redis server that stops answering without closing its sockets, under a busy worker.

``SIGSTOP`` freezes a private ``redis-server`` (never the shared one) while a
worker runs 2,000 tasks: connections stay open and nothing is answered, as when
a server is stuck writing its data during ``SHUTDOWN`` or its host hangs. Every
command of the worker is bounded by the default socket timeout, so the worker
must report the outage in one line naming the URL within a deadline derived
from that timeout (before the fix it waited forever and said nothing). After
``SIGCONT`` every task must end with a result and have run at least once.
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from _rel_support import OUTAGE_DEADLINE, Project, all_results, outage_line, publish_notes
from tests.helpers.procs import wait_until
from tests.helpers.redis_servers import RedisServer

pytestmark = [pytest.mark.redis, pytest.mark.slow]

TASKS = 2000


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    made = RedisServer(tmp_path / "redis", name="frozen")
    made.start()
    yield made
    if made.proc is not None and made.proc.poll() is None:
        os.kill(made.proc.pid, signal.SIGCONT)
    made.stop()


def test_frozen_server_is_reported_and_nothing_is_lost(tmp_path: Path,
                                                       server: RedisServer) -> None:  # fmt: skip
    project = Project(tmp_path, server.url)
    project.write()
    try:
        _run(project, server)
    finally:
        project.cleanup()


def _run(project: Project, server: RedisServer) -> None:
    assert server.proc is not None
    ids = publish_notes(project, TASKS)
    worker = project.worker("-P", "prefork", "-c", "2")
    wait_until(lambda: len(project.notes()) >= TASKS // 5, timeout=60,
               what=f"{TASKS // 5} tasks run")  # fmt: skip
    seen = len(worker.lines)
    os.kill(server.proc.pid, signal.SIGSTOP)
    try:
        reported = worker.wait_for(outage_line(server.url), timeout=OUTAGE_DEADLINE)
    finally:
        os.kill(server.proc.pid, signal.SIGCONT)
    assert all("Timeout" in line for line in reported), reported
    frozen_at = len(project.notes())
    assert frozen_at < TASKS, "every task ran before the freeze: nothing was tested"
    states = all_results(project, worker, ids, seen, "freeze")
    worker.wait_for(r"(?i)reconnected to Redis", timeout=OUTAGE_DEADLINE)

    assert {state for state, _ in states.values()} == {"SUCCESS"}
    runs = Counter(project.notes())
    assert set(runs) == set(range(TASKS)), f"{TASKS - len(runs)} task(s) never ran"
    print(f"runs before the freeze: {frozen_at}; "
          f"duplicate executions: {sum(n - 1 for n in runs.values())}")  # fmt: skip
