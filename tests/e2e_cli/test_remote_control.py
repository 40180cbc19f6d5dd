"""The README's remote-control lines against a worker on the embedded SQLite broker."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.helpers.procs import CELERIAC, CliProcess

ROOT = Path(__file__).resolve().parents[2]


def _cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join([str(cwd), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([CELERIAC, "-A", "examples.tasks", *args], cwd=cwd, env=env,
                          text=True, capture_output=True, timeout=60)


def test_status_inspect_and_control_on_sqlite(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    worker = CliProcess(["-A", "examples.tasks", "worker", "-c", "2", "-n", "w1@example",
                         "-l", "INFO"], tmp_path)
    try:
        worker.wait_for(r"ready\.")
        out = _cli(tmp_path, "status", "-t", "3")
        assert out.returncode == 0, out.stdout + out.stderr
        assert out.stdout.splitlines()[0] == "->  w1@example: OK"
        assert "1 node online." in out.stdout
        out = _cli(tmp_path, "inspect", "ping", "-d", "w1@example", "-t", "3")
        assert out.returncode == 0 and "pong" in out.stdout
        out = _cli(tmp_path, "control", "rate_limit", "examples.tasks.add", "10/m",
                   "-d", "w1@example", "-t", "3")
        assert out.returncode == 0 and "new rate limit set successfully" in out.stdout
        out = _cli(tmp_path, "control", "frobnicate")
        assert out.returncode == 2 and "valid: add_consumer" in out.stderr
        out = _cli(tmp_path, "control", "shutdown", "-d", "w1@example", "-t", "3")
        assert out.returncode == 0, out.stdout + out.stderr
        assert worker.wait(30) == 0
    finally:
        worker.stop()
    out = _cli(tmp_path, "status", "-t", "0.5")
    assert out.returncode == 69 and "No nodes replied" in out.stderr
