"""Fixtures of the canvas tests: the task module loaded against a broker, with a worker."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

_TESTS = str(Path(__file__).resolve().parents[2])
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

from _canvas_workflows import load_tasks, write_tasks  # noqa: E402

from celeriac.testing.worker_thread import run_worker  # noqa: E402

__all__ = ["tasks_with_worker"]


@contextmanager
def tasks_with_worker(directory: Path, broker: str, backend: str,
                      pool: str = "threads") -> Iterator[ModuleType]:
    """Load the canvas task module for ``broker``/``backend`` and run a worker for it."""
    old = {k: os.environ.get(k) for k in ("CANVAS_BROKER", "CANVAS_BACKEND")}
    os.environ["CANVAS_BROKER"], os.environ["CANVAS_BACKEND"] = broker, backend
    try:
        mod = load_tasks(write_tasks(directory), f"canvas_tasks_{uuid.uuid4().hex}")
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    try:
        with run_worker(mod.app, pool=pool, concurrency=4):
            yield mod
    finally:
        mod.app.close()
