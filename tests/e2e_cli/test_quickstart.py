"""The README's promise: a worker from the CLI, a task sent from another process."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.helpers.procs import CliProcess, run_python

ROOT = Path(__file__).resolve().parents[2]


def test_readme_examples_worker_on_embedded_default(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    worker = CliProcess(["-A", "examples.tasks", "worker", "--loglevel=INFO"], tmp_path)
    try:
        worker.wait_for(r"celeriac@\S+ ready\.")
        done = run_python(
            "from examples.tasks import add; print(add.delay(2, 2).get(timeout=10))", tmp_path
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "4"
        worker.wait_for(r"Received task: examples\.tasks\.add\[")
        worker.wait_for(r"Task examples\.tasks\.add\[[0-9a-f-]+\] succeeded in [0-9.]+s: 4")
        assert (tmp_path / "celeriac.sqlite").exists()
    finally:
        worker.stop()
    assert worker.proc.returncode == 0


def test_banner_names_app_transport_pool_queues_and_tasks(project: Path, start_worker) -> None:
    worker = start_worker("-c", "2", "-Q", "celery,other", "-n", "w1@%h")
    out = worker.output
    assert "transport:   sqlite:///broker.db" in out
    assert "concurrency: 2 (prefork)" in out
    assert ".> celery" in out and ".> other" in out
    assert "  . tasks.add" in out and "  . tasks.slow" in out
    worker.wait_for(r"w1@\S+ ready\.")


def test_seed_quickstart_result_api(project: Path, start_worker) -> None:
    start_worker("-c", "2")
    code = (
        "from tasks import add\n"
        "r = add.delay(4, 4)\n"
        "print(r.get(timeout=10), r.ready(), r.status, r.result, r.successful(), r.failed())\n"
    )
    done = run_python(code, project)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["8", "True", "SUCCESS", "8", "True", "False"]


def test_failure_is_reraised_as_original_type_with_traceback(project: Path, start_worker) -> None:
    start_worker("-P", "threads")
    code = (
        "from tasks import fail\n"
        "r = fail.delay('boom')\n"
        "try:\n"
        "    r.get(timeout=10)\n"
        "except ValueError as exc:\n"
        "    print('ValueError', exc, r.state, 'fail' in r.traceback)\n"
    )
    done = run_python(code, project)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ValueError", "boom", "FAILURE", "True"]
