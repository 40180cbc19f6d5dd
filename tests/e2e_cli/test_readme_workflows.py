"""The README's workflow lines run as written against examples/tasks.py."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.helpers.procs import CliProcess, run_python

ROOT = Path(__file__).resolve().parents[2]


def test_readme_workflow_examples(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    worker = CliProcess(["-A", "examples.tasks", "worker", "-c", "2", "-l", "INFO"], tmp_path)
    try:
        worker.wait_for(r"ready\.")
        code = (
            "from celeriac import chain, chord, group\n"
            "from examples.tasks import add, mul, xsum\n"
            "print((add.s(2, 2) | mul.s(8)).delay().get(timeout=20))\n"
            "print(group(add.s(i, i) for i in range(10))().get(timeout=20))\n"
            "print(chord((add.s(i, i) for i in range(10)), xsum.s())().get(timeout=20))\n"
        )
        done = run_python(code, tmp_path)
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == ["32", str([2 * i for i in range(10)]), "90"]
    finally:
        worker.stop()
