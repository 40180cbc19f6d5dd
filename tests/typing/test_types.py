"""Typing tests: ``@app.task`` keeps the wrapped function's signature (ParamSpec)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent


def test_task_signatures_are_checked_by_mypy() -> None:
    target = HERE / "typed_tasks.py"
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental",
         "--allow-untyped-defs", "--disable-error-code=no-untyped-def", str(target)],
        capture_output=True, text=True, timeout=300,
    )
    errors = {
        int(m.group(1))
        for m in re.finditer(r"typed_tasks\.py:(\d+): error", proc.stdout)
    }
    expected = {
        n for n, line in enumerate(target.read_text().splitlines(), 1) if "# E:" in line
    }
    assert errors == expected, proc.stdout
