"""Three ``celeriac beat`` processes on one Redis schedule; the leader is killed twice.

A 1 s entry runs for about 60 s (18 runs under each of three leaders) with a
2 s lease, so the leader is taken over twice. Each run is logged by
the beat that sends it with its due instant and task id (``-l DEBUG``), and
executed by a real worker that writes the task id down. The counts must match
exactly: every sent run executed once, no due instant sent twice, each task id
the deterministic run id of its (entry, due instant), every due instant on the
1 s grid, and the only holes in the grid are the two takeover gaps, each no
longer than the lease plus one renewal interval (plus scheduling slack).
"""

from __future__ import annotations

import re
import signal
import textwrap
import time
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path

from celeriac.beat.scheduler import run_id
from celeriac.beat.stores import store_namespace
from tests.helpers.procs import CliProcess, wait_until

TASKS = """
import os
from datetime import timedelta
from celeriac import Celery

url = os.environ["BEAT_REDIS_URL"]
app = Celery("leaders", broker=url, backend=url)
app.conf.beat_schedule = {"tick": {"task": "leaders.tick", "schedule": timedelta(seconds=1)}}
app.conf.beat_lease_seconds = 2.0


@app.task(bind=True, name="leaders.tick")
def tick(self):
    with open("runs.log", "a") as fh:
        fh.write(self.request.id + "\\n")
"""

LEASE = 2.0
DUE = re.compile(r"beat: run of tick due (\S+) has task id (\S+)")


def leading(proc: CliProcess) -> bool:
    """True if this process's last leadership line says it leads."""
    state = False
    for line in proc.lines:
        if "now the leader" in line:
            state = True
        elif "leadership lost" in line:
            state = False
    return state and proc.proc.poll() is None


def the_leader(beats: list[CliProcess], timeout: float) -> CliProcess:
    found: list[CliProcess] = []

    def one() -> bool:
        found[:] = [b for b in beats if leading(b)]
        return len(found) == 1

    wait_until(one, timeout=timeout, what="exactly one leader")
    return found[0]


#: Runs awaited under each leader: three leaders x 18 runs of a 1 s entry ~ 60 s.
RUNS_PER_LEADER = 18


def test_three_beats_leader_killed_twice_every_run_sent_exactly_once(
    tmp_path: Path, redis_url: str
) -> None:
    (tmp_path / "leaders.py").write_text(textwrap.dedent(TASKS))
    env = {"BEAT_REDIS_URL": redis_url}
    worker = CliProcess(
        ["-A", "leaders", "worker", "-l", "INFO", "-P", "threads", "-c", "4"], tmp_path, env
    )
    beats = [CliProcess(["-A", "leaders", "beat", "-l", "DEBUG"], tmp_path, env) for _ in range(3)]
    killed: list[CliProcess] = []
    try:
        worker.wait_for(r"ready\.")
        for beat in beats:
            beat.wait_for(r"beat: Starting\.\.\.")
        started = time.monotonic()
        for _ in range(2):
            leader = the_leader(beats, timeout=15)
            _await_runs(leader, tmp_path, RUNS_PER_LEADER)
            leader.proc.send_signal(signal.SIGKILL)
            leader.wait(10)
            killed.append(leader)
            # a standby takes over within the lease plus one renewal interval
            the_leader(beats, timeout=LEASE + LEASE / 3 + 3)
        last = the_leader(beats, timeout=5)
        _await_runs(last, tmp_path, RUNS_PER_LEADER)
        elapsed = time.monotonic() - started
    finally:
        for beat in beats:
            beat.stop()
    assert len(killed) == 2 and len({id(k) for k in killed}) == 2
    sent = [(m.group(1), m.group(2)) for b in beats for ln in b.lines if (m := DUE.search(ln))]
    sends = sum(
        1
        for b in beats
        for ln in b.lines
        if "Scheduler: Sending due task tick (leaders.tick)" in ln
    )
    assert sends == len(sent)
    try:
        wait_until(lambda: _count(tmp_path) >= len(sent), timeout=30, what="every run executed")
    finally:
        worker.stop()
    executed = (tmp_path / "runs.log").read_text().split()
    dues = sorted(datetime.fromisoformat(due) for due, _ in sent)
    # exactly once: no due instant twice, every sent run executed once, nothing else executed
    assert len(set(dues)) == len(dues)
    assert sorted(executed) == sorted(task_id for _, task_id in sent)
    namespace = store_namespace("leaders")
    assert all(
        task_id == run_id(namespace, "tick", datetime.fromisoformat(due)) for due, task_id in sent
    )
    # on the 1 s grid, with holes only where a leader died
    steps = [b - a for a, b in pairwise(dues)]
    assert all(step % timedelta(seconds=1) == timedelta(0) for step in steps), steps
    holes = [step for step in steps if step > timedelta(seconds=1)]
    assert len(holes) <= 2, steps
    assert all(hole <= timedelta(seconds=LEASE + LEASE / 3 + 2) for hole in holes), steps
    assert len(dues) >= (dues[-1] - dues[0]).total_seconds() + 1 - sum(
        (h.total_seconds() - 1 for h in holes), 0.0
    )
    assert len(dues) >= elapsed - 2 * (LEASE + LEASE / 3 + 2)


def _await_runs(leader: CliProcess, path: Path, more: int) -> None:
    """Wait for ``more`` further sends by ``leader`` and for the last one to be executed,
    so that a kill lands between two runs (a kill inside a send loses that run: beat
    claims before it publishes, so a run is sent at most once)."""
    before = sum(1 for ln in leader.lines if DUE.search(ln))
    lines = leader.wait_for(DUE.pattern, count=before + more, timeout=more + 15)
    match = DUE.search(lines[-1])
    assert match is not None
    task_id = match.group(2)
    log = path / "runs.log"
    wait_until(
        lambda: log.exists() and task_id in log.read_text(),
        timeout=10,
        what=f"run {task_id} executed",
    )


def _count(path: Path) -> int:
    log = path / "runs.log"
    return len(log.read_text().split()) if log.exists() else 0
