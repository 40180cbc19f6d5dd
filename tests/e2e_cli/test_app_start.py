"""``app.start()`` / ``app.worker_main()``: a module that runs its own worker, as in Celery."""

from __future__ import annotations

from pathlib import Path

from tests.helpers.procs import PythonProcess, run_python

MODULE = '''
from celeriac import Celery

app = Celery("selfrun")


@app.task
def add(x, y):
    return x + y


if __name__ == "__main__":
    import sys
    if sys.argv[1:2] == ["--via-worker-main"]:
        app.worker_main(sys.argv[2:])
    else:
        app.start()
'''


def _run_and_call(tmp_path: Path, args: list[str]) -> PythonProcess:
    (tmp_path / "selfrun.py").write_text(MODULE)
    worker = PythonProcess(["selfrun.py", *args], tmp_path)
    try:
        worker.wait_for(r"celeriac@\S+ ready\.")
        done = run_python("from selfrun import add; print(add.delay(2, 3).get(timeout=10))",
                          tmp_path)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "5"
        worker.wait_for(r"Task selfrun\.add\[[0-9a-f-]+\] succeeded in [0-9.]+s: 5")
    finally:
        worker.stop()
    return worker


def test_app_start_runs_the_command_line_with_this_app(tmp_path: Path) -> None:
    worker = _run_and_call(tmp_path, ["worker", "--loglevel=INFO", "-c", "1"])
    assert worker.proc.returncode == 0, worker.output


def test_worker_main_adds_the_worker_command(tmp_path: Path) -> None:
    worker = _run_and_call(tmp_path, ["--via-worker-main", "--loglevel=INFO", "-P", "solo"])
    assert worker.proc.returncode == 0, worker.output


def test_app_start_without_a_command_prints_the_usage(tmp_path: Path) -> None:
    (tmp_path / "selfrun.py").write_text(MODULE)
    proc = PythonProcess(["selfrun.py", "--help"], tmp_path)
    assert proc.wait(30) == 0
    assert "worker" in proc.output and "Usage:" in proc.output
