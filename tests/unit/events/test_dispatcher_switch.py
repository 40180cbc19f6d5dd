"""The dispatcher's task hooks: no-ops when task events are off, buffered when on."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from celeriac import Celery
from celeriac.app.trace import Outcome
from celeriac.events import EventDispatcher
from celeriac.protocol import states
from celeriac.protocol.message import TaskMessage
from celeriac.worker.events import WorkerEvents


def _request(task_id: str = "t1") -> Any:
    return SimpleNamespace(id=task_id, message=TaskMessage(task="proj.add", id=task_id,
                                                           args=(1, 2)))


def test_task_events_off_means_the_base_no_op_hooks() -> None:
    dispatcher = EventDispatcher(Celery("t", broker="memory://"), task_events=False)
    for name in ("task_received", "task_started", "task_outcome", "task_revoked"):
        assert getattr(type(dispatcher), name) is getattr(WorkerEvents, name)
        assert name not in vars(dispatcher)
    dispatcher.task_started(_request())
    assert dispatcher._buffer == []


def test_switching_on_and_off_at_run_time() -> None:
    dispatcher = EventDispatcher(Celery("t", broker="memory://"), task_events=False)
    dispatcher.set_task_events(True)
    request = _request()
    dispatcher.task_received(request)
    dispatcher.task_started(request)
    dispatcher.task_outcome(request, Outcome(states.SUCCESS, value=3, runtime=0.5))
    dispatcher.task_outcome(request, Outcome(states.FAILURE, exc=ValueError("x"), traceback="tb"))
    dispatcher.task_outcome(request, Outcome(
        states.RETRY, exc_wire={"exc_type": "KeyError", "exc_message": ["k"]}))
    dispatcher.task_revoked(request, expired=True)
    events = dispatcher._buffer
    assert [e["type"] for e in events] == ["task-received", "task-started", "task-succeeded",
                                           "task-failed", "task-retried", "task-revoked"]
    assert events[2]["result"] == "3" and events[3]["exception"] == "ValueError('x')"
    assert events[4]["exception"] == "KeyError('k')" and events[5]["expired"] is True
    assert [e["clock"] for e in events] == sorted({e["clock"] for e in events})
    dispatcher.set_task_events(False)
    dispatcher.task_started(request)
    assert len(dispatcher._buffer) == 6 and not dispatcher.task_events
