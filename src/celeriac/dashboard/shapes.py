"""Workers and tasks as plain dicts (Flower's field names where cheap), and the task
filter shared by the JSON API, the HTML pages and the live stream."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from celeriac.events import ClusterState, TaskInfo, WorkerInfo

__all__ = ["TaskFilter", "task_dict", "worker_dict"]

#: Event kinds whose timestamps a task dict carries, in the order a task meets them.
TIMELINE_KINDS = ("sent", "received", "started", "retried", "succeeded", "failed",
                  "revoked", "rejected")
_FIELDS = ("args", "kwargs", "result", "exception", "traceback", "runtime", "retries", "eta",
           "expires", "root_id", "parent_id", "queue", "routing_key", "exchange")


def task_dict(task: TaskInfo) -> dict[str, Any]:
    """One task: ``uuid``, ``name``, ``state``, ``worker``, one timestamp per event kind
    seen (``received``, ``started`` ...), ``timestamp`` (the latest) and its fields."""
    out: dict[str, Any] = {"uuid": task.uuid, "name": task.name, "state": task.state,
                           "worker": task.worker}
    for kind in TIMELINE_KINDS:
        out[kind] = task.timestamps.get(kind)
    out["timestamp"] = max(task.timestamps.values(), default=None)
    for key in _FIELDS:
        out[key] = task.fields.get(key)
    return out


def timeline(task: TaskInfo) -> list[tuple[str, float]]:
    """``[(event kind, timestamp), ...]`` in time order."""
    return sorted(task.timestamps.items(), key=lambda item: item[1])


def worker_dict(worker: WorkerInfo, now: float, inspected: Mapping[str, Any] | None = None
                ) -> dict[str, Any]:
    """One worker: ``hostname``, ``status`` (alive by heartbeat), counters from its
    events, and ``pool``/``queues``/``stats`` from the last inspect (when answered)."""
    info = dict(inspected or {})
    stats = info.get("stats") or {}
    pool = stats.get("pool") if isinstance(stats, Mapping) else None
    queues = [q.get("name") for q in info.get("active_queues") or [] if isinstance(q, Mapping)]
    out: dict[str, Any] = {"hostname": worker.hostname, "status": worker.alive(now),
                           "heartbeat": worker.last_heartbeat}
    for key in ("active", "processed", "loadavg", "freq", "sw_ident", "sw_ver", "sw_sys",
                "pid"):
        out[key] = worker.fields.get(key)
    out["pool"] = dict(pool) if isinstance(pool, Mapping) else None
    out["queues"] = queues
    out["stats"] = stats or None
    return out


@dataclass(frozen=True, slots=True)
class TaskFilter:
    """Which tasks a list shows: exact ``state``/``name``/``worker``, and ``search``
    (a substring of the id, args or kwargs); newest first, at most ``limit``."""

    state: str | None = None
    name: str | None = None
    worker: str | None = None
    search: str | None = None
    limit: int = 100

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> TaskFilter:
        """From a request's query parameters (empty values mean no filter)."""
        try:
            limit = max(1, min(int(query.get("limit") or 100), 10_000))
        except ValueError:
            limit = 100
        return cls(state=(query.get("state") or None), name=(query.get("name") or None),
                   worker=(query.get("worker") or None),
                   search=(query.get("search") or query.get("q") or None), limit=limit)

    def matches(self, task: TaskInfo) -> bool:
        """Whether ``task`` passes every given condition."""
        if self.state and task.state != self.state.upper():
            return False
        if self.name and task.name != self.name:
            return False
        if self.worker and task.worker != self.worker:
            return False
        if self.search:
            needle = self.search.lower()
            haystack = (task.uuid, str(task.fields.get("args", "")),
                        str(task.fields.get("kwargs", "")))
            if not any(needle in text.lower() for text in haystack):
                return False
        return True

    def apply(self, tasks: Iterable[TaskInfo]) -> list[TaskInfo]:
        """The matching tasks, newest (latest event) first."""
        found = [t for t in tasks if self.matches(t)]
        found.sort(key=lambda t: max(t.timestamps.values(), default=0.0), reverse=True)
        return found[: self.limit]


def task_names(state: ClusterState) -> list[str]:
    """Every task name seen, sorted."""
    return sorted({t.name for t in state.tasks.values() if t.name})
