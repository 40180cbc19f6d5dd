"""At-least-once delivery: SIGKILL loses nothing, SIGTERM finishes what runs."""

from __future__ import annotations

import signal
from pathlib import Path

from tests.helpers.procs import run_python, wait_until


def _lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def test_sigkill_mid_task_loses_nothing(project: Path, start_worker) -> None:
    send = run_python(
        "from tasks import slow\n"
        "ids = [slow.delay(i, 0.3).id for i in range(12)]\n"
        "open('ids.txt', 'w').write('\\n'.join(ids))\n", project,
    )
    assert send.returncode == 0, send.stderr
    first = start_worker("-c", "2", env={"LEASE": "2"})
    first.wait_for(r"Received task: tasks\.slow", count=2)
    # Kill only once a task is running, so at least one is mid-flight.
    wait_until(lambda: _lines(project / "started.log"), what="a task started")
    first.signal(signal.SIGKILL)
    assert first.wait(10) == -signal.SIGKILL
    done_before = set(_lines(project / "done.log"))
    assert len(done_before) < 12
    start_worker("-c", "2", env={"LEASE": "2"})
    check = run_python(
        "from tasks import app\n"
        "ids = open('ids.txt').read().split()\n"
        "print(sorted(app.AsyncResult(i).get(timeout=60) for i in ids))\n", project, timeout=90,
    )
    assert check.returncode == 0, check.stderr
    assert check.stdout.strip() == str(list(range(12)))
    assert set(_lines(project / "done.log")) == {str(i) for i in range(12)}


def test_sigterm_is_a_warm_shutdown(project: Path, start_worker) -> None:
    worker = start_worker("-P", "threads", "-c", "2")
    send = run_python("from tasks import slow\nprint(slow.delay(7, 1.0).id)", project)
    task_id = send.stdout.strip()
    worker.wait_for(r"Received task: tasks\.slow")
    wait_until(lambda: _lines(project / "started.log"), what="the task started")
    worker.signal(signal.SIGTERM)
    assert worker.wait(20) == 0
    assert "warm shutdown" in worker.output
    check = run_python(
        f"from tasks import app\nr = app.AsyncResult({task_id!r})\nprint(r.state, r.result)",
        project,
    )
    assert check.stdout.split() == ["SUCCESS", "7"]
