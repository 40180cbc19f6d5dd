"""ClusterState: workers alive by heartbeat, tasks by id with state and timestamps."""

from __future__ import annotations

from typing import Any

from celeriac.events import ClusterState
from celeriac.protocol import states
from celeriac.protocol.events import (
    task_event,
    task_failed_fields,
    task_received_fields,
    task_started_fields,
    task_succeeded_fields,
    worker_event,
    worker_fields,
)
from celeriac.protocol.message import TaskMessage


def _worker(kind: str, at: float, host: str = "w1@h") -> dict[str, Any]:
    event = worker_event(kind, hostname=host, pid=1, clock=1, timestamp=at, **worker_fields(
        active=0, processed=3, loadavg=(0.1, 0.2, 0.3), sw_ident="py-celeriac", sw_ver="1",
        sw_sys="Linux"))
    event["local_received"] = at
    return event


def _task(kind: str, fields: dict[str, Any], at: float) -> dict[str, Any]:
    return task_event(kind, hostname="w1@h", pid=1, clock=1, timestamp=at, **fields)


def test_workers_are_alive_by_heartbeat_and_gone_when_offline() -> None:
    state = ClusterState()
    state.event(_worker("worker-online", 100.0))
    assert [w.hostname for w in state.alive_workers(now=101.0)] == ["w1@h"]
    assert state.alive_workers(now=100.0 + 2 * 2.0 + 2.0) == []  # heartbeats stopped
    state.event(_worker("worker-heartbeat", 104.0))
    info = state.workers["w1@h"]
    assert info.alive(now=105.0) and info.fields["processed"] == 3
    state.event(_worker("worker-offline", 105.0))
    assert state.alive_workers(now=105.0) == []


def test_task_state_follows_its_events_and_keeps_timestamps() -> None:
    state = ClusterState()
    message = TaskMessage(task="proj.add", id="t1", args=(2, 3))
    state.event(_task("task-received", task_received_fields(message), 1.0))
    assert state.tasks["t1"].state == states.RECEIVED and state.tasks["t1"].name == "proj.add"
    state.event(_task("task-succeeded", task_succeeded_fields("t1", 5, 0.1), 3.0))
    state.event(_task("task-started", task_started_fields("t1"), 2.0))  # arrives late
    task = state.tasks["t1"]
    assert task.state == states.SUCCESS  # a late event does not undo a later state
    assert task.timestamps == {"received": 1.0, "succeeded": 3.0, "started": 2.0}
    assert (task.fields["args"], task.fields["result"], task.worker) == ("(2, 3)", "5", "w1@h")
    assert state.tasks_by_state(states.SUCCESS) == [task]


def test_a_retry_starts_a_new_round() -> None:
    state = ClusterState()
    state.event(_task("task-started", task_started_fields("t1"), 1.0))
    state.event(_task("task-retried", task_failed_fields("t1", "KeyError('k')", None), 2.0))
    assert state.tasks["t1"].state == states.RETRY
    state.event(_task("task-failed", task_failed_fields("t1", "KeyError('k')", "tb"), 3.0))
    assert state.tasks["t1"].state == states.FAILURE


def test_memory_is_bounded() -> None:
    state = ClusterState(max_tasks=3)
    for n in range(5):
        state.event(_task("task-started", task_started_fields(f"t{n}"), float(n)))
    assert list(state.tasks) == ["t2", "t3", "t4"]
    assert state.event_count == 5
