"""Prometheus metrics of the cluster, as the dashboard's events show it (``/metrics``).

* ``celeriac_tasks_total{name, state}`` -- counter: task events that moved a task
  into ``state`` (RECEIVED, STARTED, SUCCESS, FAILURE, RETRY, REVOKED, REJECTED);
* ``celeriac_task_runtime_seconds{name}`` -- histogram of successful runtimes;
* ``celeriac_workers_up`` -- gauge: workers alive by heartbeat at scrape time;
* ``celeriac_events_total`` -- counter: events received.

Each dashboard has its own registry, so several in one process never clash.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from celeriac.events import ClusterState
from celeriac.protocol import states

__all__ = ["CONTENT_TYPE_LATEST", "DashboardMetrics"]

_STATE_OF = {"task-received": states.RECEIVED, "task-started": states.STARTED,
             "task-succeeded": states.SUCCESS, "task-failed": states.FAILURE,
             "task-retried": states.RETRY, "task-revoked": states.REVOKED,
             "task-rejected": states.REJECTED}
_RUNTIME_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 60.0, 300.0)


class DashboardMetrics:
    """The dashboard's metric set, fed by :meth:`observe` after the state applied an event."""

    def __init__(self, state: ClusterState) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.tasks = Counter("celeriac_tasks", "Tasks that entered a state, by task name.",
                             ["name", "state"], registry=self.registry)
        self.runtime = Histogram("celeriac_task_runtime_seconds",
                                 "Runtime of successful tasks, by task name.", ["name"],
                                 buckets=_RUNTIME_BUCKETS, registry=self.registry)
        self.events = Counter("celeriac_events", "Events received by the dashboard.",
                              registry=self.registry)
        self.workers_up = Gauge("celeriac_workers_up", "Workers alive by heartbeat.",
                                registry=self.registry)
        self.workers_up.set_function(lambda: len(state.alive_workers()))
        self.state = state

    def observe(self, event: dict[str, Any]) -> None:
        """Count one event (call after ``state.event(event)``)."""
        self.events.inc()
        kind = str(event.get("type", ""))
        uuid = event.get("uuid")
        state = _STATE_OF.get(kind)
        if state is None or uuid is None:
            return
        task = self.state.tasks.get(str(uuid))
        name = (task.name if task is not None else None) or "unknown"
        self.tasks.labels(name=name, state=state).inc()
        runtime = event.get("runtime")
        if kind == "task-succeeded" and isinstance(runtime, int | float):
            self.runtime.labels(name=name).observe(float(runtime))

    def exposition(self) -> bytes:
        """The text exposition format of every metric."""
        return bytes(generate_latest(self.registry))
