"""Task and worker events (Celery-compatible event messages): a room beside the worker.

* :class:`~celeriac.events.dispatcher.EventDispatcher` -- plugged into a worker's
  hooks; sends ``worker-*`` events always and ``task-*`` events with ``-E``.
* :class:`~celeriac.events.receiver.EventReceiver` -- calls handlers for events
  as they arrive (``app.events.Receiver(handlers={...}).capture()``).
* :class:`~celeriac.events.state.ClusterState` -- workers and tasks in memory,
  fed by a receiver (for ``celeriac events`` and the dashboard).

The wire format (field names, routing keys, ``task.multi`` batches) lives in
:mod:`celeriac.protocol.events`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from celeriac.events.dispatcher import EventDispatcher
from celeriac.events.receiver import EventHandler, EventReceiver
from celeriac.events.state import ClusterState, TaskInfo, WorkerInfo

if TYPE_CHECKING:
    from collections.abc import Sequence

    from celeriac.app.core import App

__all__ = [
    "ClusterState",
    "EventDispatcher",
    "EventHandler",
    "EventReceiver",
    "Events",
    "TaskInfo",
    "WorkerInfo",
    "worker_dispatcher",
]


def worker_dispatcher(app: App, task_events: bool | None = None) -> EventDispatcher:
    """The dispatcher a worker of ``app`` gets: task events per ``task_events``
    (``-E``) or else the ``worker_send_task_events`` setting."""
    enabled = bool(task_events) or bool(app.conf.settings.worker_send_task_events)
    return EventDispatcher(app, task_events=enabled)


class Events:
    """``app.events``: the receiver and state classes bound to an app."""

    def __init__(self, app: App) -> None:
        self.app = app

    def Receiver(self, connection: Any = None,
                 handlers: Mapping[str, EventHandler] | None = None, *,
                 binding_keys: Sequence[str] | None = None, **_: Any) -> EventReceiver:
        """An :class:`EventReceiver` for this app (Celery: ``app.events.Receiver``).

        As in Celery, ``Receiver(conn, handlers={...})`` works: celeriac opens its
        own connection, so ``connection`` is ignored (a mapping given first is
        taken as ``handlers``).
        """
        if handlers is None and isinstance(connection, Mapping):
            handlers = connection
        if binding_keys is None:
            return EventReceiver(self.app, handlers)
        return EventReceiver(self.app, handlers, binding_keys=binding_keys)

    def State(self, max_tasks: int = 10_000) -> ClusterState:
        """A fresh :class:`ClusterState` (Celery: ``app.events.State``)."""
        return ClusterState(max_tasks=max_tasks)
