"""The cluster as events describe it: workers (alive by heartbeat) and tasks.

``state = ClusterState(); receiver = EventReceiver(app, {"*": state.event})``
keeps an in-memory picture for monitors (``celeriac events``, the dashboard):
each worker with its last heartbeat and counters, each task with its state,
fields and the time of every event it went through. Memory is bounded: the
oldest tasks are forgotten past ``max_tasks``.

A worker counts as alive while its last heartbeat is younger than twice its
heartbeat interval plus a little (Celery's window), and not after its
``worker-offline``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from celeriac.protocol import states
from celeriac.protocol.events import (
    HEARTBEAT_FREQ,
    TASK_DETAIL_FIELDS,
    WORKER_DETAIL_FIELDS,
    view_event,
)

__all__ = ["ClusterState", "TaskInfo", "WorkerInfo"]

#: Heartbeats may be this late (times the interval) before a worker counts as gone.
_EXPIRE_FACTOR = 2.0
_EXPIRE_SLACK = 1.0

#: Task state after each kind of task event.
_TASK_STATES = {
    "sent": states.PENDING, "received": states.RECEIVED, "started": states.STARTED,
    "succeeded": states.SUCCESS, "failed": states.FAILURE, "retried": states.RETRY,
    "revoked": states.REVOKED, "rejected": states.REJECTED,
}


@dataclass(slots=True)
class WorkerInfo:
    """One worker as its events describe it."""

    hostname: str
    online: bool = True
    freq: float = HEARTBEAT_FREQ
    last_heartbeat: float | None = None
    """When (local time) its last worker event arrived."""
    fields: dict[str, Any] = field(default_factory=dict)
    """``active``, ``processed``, ``loadavg``, ``sw_ident``, ``pid`` ... as last reported."""

    def alive(self, now: float | None = None) -> bool:
        """Online and heard from within its heartbeat window."""
        if not self.online or self.last_heartbeat is None:
            return False
        now = time.time() if now is None else now
        return now - self.last_heartbeat <= self.freq * _EXPIRE_FACTOR + _EXPIRE_SLACK


@dataclass(slots=True)
class TaskInfo:
    """One task as its events describe it."""

    uuid: str
    state: str = states.PENDING
    worker: str | None = None
    """Hostname of the worker that received it (or the client that sent it)."""
    timestamps: dict[str, float] = field(default_factory=dict)
    """Event kind (``received``, ``started`` ...) -> its timestamp."""
    fields: dict[str, Any] = field(default_factory=dict)
    """``name``, ``args``, ``kwargs``, ``result``, ``exception``, ``runtime`` ..."""

    @property
    def name(self) -> str | None:
        """The task name, once a sent or received event told it."""
        value = self.fields.get("name")
        return str(value) if value is not None else None


class ClusterState:
    """Workers and tasks, updated by :meth:`event` (use it as a receiver's handler)."""

    def __init__(self, max_tasks: int = 10_000) -> None:
        self.max_tasks = max_tasks
        self.workers: dict[str, WorkerInfo] = {}
        self.tasks: dict[str, TaskInfo] = {}
        self.event_count = 0

    def event(self, raw: Mapping[str, Any]) -> None:
        """Apply one event dict."""
        self.event_count += 1
        ev = view_event(raw)
        if ev.group == "worker":
            self._worker_event(ev.kind, ev.hostname, raw)
        elif ev.group == "task" and ev.uuid is not None:
            self._task_event(ev.kind, ev.uuid, ev.hostname, ev.timestamp, raw)

    def _worker_event(self, kind: str, hostname: str, raw: Mapping[str, Any]) -> None:
        worker = self.workers.get(hostname)
        if worker is None:
            worker = self.workers[hostname] = WorkerInfo(hostname)
        worker.online = kind != "offline"
        received = raw.get("local_received")
        worker.last_heartbeat = float(received) if received is not None else time.time()
        freq = raw.get("freq")
        if isinstance(freq, int | float) and freq > 0:
            worker.freq = float(freq)
        worker.fields.update({k: raw[k] for k in WORKER_DETAIL_FIELDS if k in raw})

    def _task_event(self, kind: str, task_id: str, hostname: str, timestamp: float,
                    raw: Mapping[str, Any]) -> None:
        task = self.tasks.get(task_id)
        if task is None:
            task = self.tasks[task_id] = TaskInfo(task_id)
            if len(self.tasks) > self.max_tasks:
                del self.tasks[next(iter(self.tasks))]
        task.timestamps[kind] = timestamp
        task.fields.update({k: raw[k] for k in TASK_DETAIL_FIELDS if k in raw})
        if kind != "sent" or task.worker is None:
            task.worker = hostname
        new_state = _TASK_STATES.get(kind)
        if new_state is None:
            return
        # A retry starts a new round; otherwise a late event never undoes a later state.
        if kind == "retried" or states.precedence(new_state) >= states.precedence(task.state):
            task.state = new_state

    # -- queries ---------------------------------------------------------------------
    def alive_workers(self, now: float | None = None) -> list[WorkerInfo]:
        """Workers heard from within their heartbeat window, by hostname."""
        return sorted((w for w in self.workers.values() if w.alive(now)),
                      key=lambda w: w.hostname)

    def tasks_by_state(self, state: str) -> list[TaskInfo]:
        """Tasks currently in ``state`` (``SUCCESS``, ``STARTED`` ...)."""
        return [t for t in self.tasks.values() if t.state == state]
