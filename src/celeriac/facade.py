"""``Celery`` (also ``Celeriac``): the app users create, with the worker entry points."""

from __future__ import annotations

from typing import Any

from celeriac.app.core import App

__all__ = ["Celeriac", "Celery"]


class Celery(App):
    """A celeriac application, named as in Celery: ``app = Celery('tasks', broker=...)``."""

    def Worker(self, **options: Any) -> Any:
        """A :class:`~celeriac.worker.worker.Worker` for this app."""
        from celeriac.worker.worker import Worker, WorkerOptions

        return Worker(self, WorkerOptions(**options))


Celeriac = Celery
