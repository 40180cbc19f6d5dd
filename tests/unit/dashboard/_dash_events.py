"""Celery's captured events (``../shared/protocol/vectors/event_*.json``) for the
dashboard's view tests."""

from __future__ import annotations

import copy
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from celeriac.dashboard import Monitor

VECTORS = Path(os.environ.get("CELERIAC_VECTORS") or
               Path(__file__).resolve().parents[4] / "shared" / "protocol" / "vectors")


def vector_event(kind: str, **changes: Any) -> dict[str, Any]:
    """The captured Celery event ``event_<kind>.json`` (a copy), with ``changes`` applied."""
    path = VECTORS / f"event_{kind}.json"
    if not path.exists():
        pytest.fail(f"protocol vector {path} not found; set CELERIAC_VECTORS")
    event: dict[str, Any] = copy.deepcopy(json.loads(path.read_text())["this_event"])
    event.update(changes)
    return event


#: The id of the task the vectors' sent/received/started/succeeded events describe.
ADD_ID = vector_event("task_received")["uuid"]
FAIL_ID = vector_event("task_failed")["uuid"]


def feed_cluster(monitor: Monitor) -> None:
    """A live worker ``w1@proto`` that ran ``tasks.add(2, 3)`` and failed one task."""
    now = time.time()
    monitor.handle(vector_event("worker_online", local_received=now))
    monitor.handle(vector_event("worker_heartbeat", local_received=now, processed=2))
    for kind in ("task_sent", "task_received", "task_started", "task_succeeded"):
        monitor.handle(vector_event(kind, local_received=now))
    monitor.handle(vector_event("task_received", uuid=FAIL_ID, name="tasks.fail",
                                args="('boom',)", local_received=now))
    monitor.handle(vector_event("task_failed", local_received=now))


