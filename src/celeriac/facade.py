"""``Celery`` (also ``Celeriac``): the app users create, with the worker entry points."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from celeriac.app.core import App
from celeriac.events import Events, worker_dispatcher

__all__ = ["Celeriac", "Celery"]


class _Control:
    """``app.control``: ``revoke``/``terminate`` for now (the remote-control room adds the rest)."""

    def __init__(self, app: App) -> None:
        self.app = app

    def revoke(self, task_id: str | Sequence[str], destination: Sequence[str] | None = None,
               terminate: bool = False, signal: str | int = "SIGTERM", **kwargs: Any) -> None:
        """Revoke ``task_id`` (or a list of ids) on every worker (or ``destination``)."""
        self.app.revoke(task_id, terminate=terminate, signal=signal, destination=destination)

    def terminate(self, task_id: str | Sequence[str], destination: Sequence[str] | None = None,
                  signal: str | int = "SIGTERM", **kwargs: Any) -> None:
        """Revoke and stop ``task_id`` where it runs (``revoke(terminate=True)``)."""
        self.revoke(task_id, destination, terminate=True, signal=signal)


class Celery(App):
    """A celeriac application, named as in Celery: ``app = Celery('tasks', broker=...)``."""

    @property
    def control(self) -> _Control:
        """Remote control of the workers (``app.control.revoke(id, terminate=True)``)."""
        return _Control(self)

    @property
    def events(self) -> Events:
        """Event receivers and cluster state (``app.events.Receiver(handlers={...})``)."""
        return Events(self)

    def Worker(self, **options: Any) -> Any:
        """A :class:`~celeriac.worker.worker.Worker` for this app (worker events on;
        task events with ``send_events=True`` or ``worker_send_task_events``)."""
        from celeriac.worker.worker import Worker, WorkerOptions

        opts = WorkerOptions(**options)
        return Worker(self, opts, events=worker_dispatcher(self, opts.send_events))


Celeriac = Celery
