"""Real ``celeriac beat`` and ``celeriac worker`` processes on the embedded SQLite broker.

Seed 002's beat example (``timedelta(seconds=30)`` every 30 s, shortened to 1 s
for the test) runs through a beat process and a worker; then the same with
``worker -B``; dynamic entries added through the API and the CLI reach a
running beat; a bad entry stops beat with one line naming it.
"""

from __future__ import annotations

import re
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.helpers.procs import CliProcess, run_python, wait_until

TASKS = """
from datetime import timedelta
from celeriac import Celery

app = Celery("tasks", broker="sqlite:///broker.db", backend="sqlite:///broker.db")
app.conf.update(
    CELERY_TIMEZONE="Asia/Shanghai",
    CELERYBEAT_SCHEDULE={
        "add-every-30-seconds": {
            "task": "tasks.add",
            "schedule": timedelta(seconds=1),  # the seed says 30: shortened for the test
            "args": (16, 16),
        },
    },
)


@app.task(bind=True)
def add(self, x, y):
    with open("runs.log", "a") as fh:
        fh.write(f"{self.request.id} {x + y}\\n")
    return x + y
"""

SENT = r"Scheduler: Sending due task add-every-30-seconds \(tasks\.add\)"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "tasks.py").write_text(textwrap.dedent(TASKS))
    return tmp_path


def runs(project: Path) -> list[str]:
    path = project / "runs.log"
    return path.read_text().splitlines() if path.exists() else []


def sends(proc: CliProcess, pattern: str = SENT) -> int:
    return sum(1 for line in proc.lines if re.search(pattern, line))


def test_seed_timedelta_schedule_through_beat_and_worker(project: Path) -> None:
    worker = CliProcess(
        ["-A", "tasks", "worker", "-l", "INFO", "-P", "threads", "-c", "2"], project
    )
    beat = CliProcess(["-A", "tasks", "beat", "-l", "INFO"], project)
    try:
        worker.wait_for(r"ready\.")
        beat.wait_for(SENT, timeout=30, count=3)
        out = beat.output
        assert "celeriac beat v" in out and "is starting." in out
        assert ". broker -> sqlite:///broker.db" in out
        assert re.search(r"\. store -> sqlite \S+broker\.db", out)
        assert ". maxinterval -> 5.00 minutes (300s)" in out
        assert ". timezone -> Asia/Shanghai" in out
    finally:
        beat.stop()
    assert beat.proc.returncode == 0
    try:
        sent = sends(beat)
        wait_until(lambda: len(runs(project)) >= sent, timeout=30, what="all runs executed")
        done = runs(project)
        assert len(done) == sent
        assert len({line.split()[0] for line in done}) == sent
        assert all(line.endswith(" 32") for line in done)
    finally:
        worker.stop()
    listing = CliProcess(["-A", "tasks", "beat", "list"], project)
    assert listing.wait(30) == 0
    assert re.search(
        r"add-every-30-seconds: tasks\.add <freq: 1\.00 second Asia/Shanghai> "
        r"args=\[16, 16\] last run: 20",
        listing.output,
    ), listing.output


def test_worker_with_embedded_beat_runs_the_schedule(project: Path) -> None:
    worker = CliProcess(["-A", "tasks", "worker", "-B", "-l", "INFO", "-P", "threads"], project)
    try:
        worker.wait_for(r"ready\.")
        worker.wait_for(SENT, timeout=30, count=3)
        wait_until(lambda: len(runs(project)) >= 3, timeout=30, what="three runs executed")
    finally:
        worker.stop()
    assert worker.proc.returncode == 0
    assert len(runs(project)) == sends(worker)


def test_dynamic_entries_via_api_and_cli_reach_a_running_beat(project: Path) -> None:
    beat = CliProcess(["-A", "tasks", "beat", "-l", "INFO"], project)
    try:
        beat.wait_for(SENT)
        added = run_python(
            "from tasks import app, add\n"
            "from celeriac.beat.api import BeatSchedule\n"
            "with BeatSchedule(app) as beat:\n"
            "    beat.add_entry('from-api', add, 1.0, args=[1, 2])\n",
            project,
        )
        assert added.returncode == 0, added.stderr
        beat.wait_for(r"Sending due task from-api \(tasks\.add\)", timeout=20)
        cli = CliProcess(
            [
                "-A",
                "tasks",
                "beat",
                "add",
                "from-cli",
                "--task",
                "tasks.add",
                "--every",
                "1",
                "--args",
                "[2, 3]",
                "--queue",
                "celery",
            ],
            project,
        )
        assert cli.wait(30) == 0, cli.output
        assert "added from-cli: tasks.add <freq: 1.00 second" in cli.output
        beat.wait_for(r"Sending due task from-cli \(tasks\.add\)", timeout=20)
        listing = CliProcess(["-A", "tasks", "beat", "list"], project)
        assert listing.wait(30) == 0
        assert "from-api: tasks.add" in listing.output and "(dynamic)" in listing.output
        for name in ("from-api", "from-cli"):
            removing = CliProcess(["-A", "tasks", "beat", "remove", name], project)
            assert removing.wait(30) == 0, removing.output
        reloaded = beat.wait_for(r"beat: 0 dynamic entries loaded", timeout=20)
        at = beat.lines.index(reloaded[0])
        beat.wait_for(SENT, count=sends(beat) + 1, timeout=10)  # a tick after the reload
        later = beat.lines[at + 1 :]
        assert not [line for line in later if "from-api" in line or "from-cli" in line]
    finally:
        beat.stop()


def test_a_bad_entry_stops_beat_with_one_line_naming_it(project: Path) -> None:
    (project / "badtasks.py").write_text(
        textwrap.dedent("""
        from celeriac import Celery
        app = Celery("bad", broker="sqlite:///broker.db")
        app.conf.beat_schedule = {
            "fine": {"task": "t", "schedule": 5},
            "nightly": {"task": "t", "schedule": "30 2 * * monday-ish"},
        }
    """)
    )
    beat = CliProcess(["-A", "badtasks", "beat"], project)
    assert beat.wait(30) == 2
    errors = [line for line in beat.lines if line.startswith("Error:")]
    assert len(errors) == 1, beat.output
    assert errors[0].startswith(
        "Error: beat entry 'nightly': field 'schedule': crontab field 'day_of_week' got "
        "'monday-ish': "
    )
    assert "Traceback" not in beat.output


DUE = re.compile(r"beat: run of add-every-30-seconds due (\S+) has task id")


def test_restarted_beat_sends_a_run_missed_while_down_exactly_once(project: Path) -> None:
    first = CliProcess(["-A", "tasks", "beat", "-l", "DEBUG"], project)
    try:
        first.wait_for(DUE.pattern, count=2)
    finally:
        first.stop()
    dues = [datetime.fromisoformat(m.group(1)) for ln in first.lines if (m := DUE.search(ln))]
    last = dues[-1]
    # down long enough for two more runs (t+1 s, t+2 s) to fall due
    wait_until(
        lambda: datetime.now(UTC) > last + timedelta(seconds=2.5),
        timeout=10,
        what="two runs missed",
    )
    second = CliProcess(["-A", "tasks", "beat", "-l", "DEBUG"], project)
    try:
        second.wait_for(DUE.pattern, count=2)
    finally:
        second.stop()
    after = [datetime.fromisoformat(m.group(1)) for ln in second.lines if (m := DUE.search(ln))]
    # one catch-up run for the missed ones, on the grid, then the next run on the grid
    assert after[0] > last and (after[0] - last) % timedelta(seconds=1) == timedelta(0)
    assert after[0] - last >= timedelta(seconds=2)
    assert after[1] - after[0] == timedelta(seconds=1)
    assert len(set(dues + after)) == len(dues) + len(after)
