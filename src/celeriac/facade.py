"""``Celery`` (also ``Celeriac``): the app users create, with the worker entry points."""

from __future__ import annotations

from typing import Any

from celeriac.app.core import App
from celeriac.control.client import Control
from celeriac.control.service import attach

__all__ = ["Celeriac", "Celery"]


class Celery(App):
    """A celeriac application, named as in Celery: ``app = Celery('tasks', broker=...)``."""

    @property
    def control(self) -> Control:
        """Remote control of the workers (``app.control.inspect().ping()``,
        ``app.control.rate_limit(...)``, ``app.control.revoke(id, terminate=True)``)."""
        return Control(self)

    def attach_worker_rooms(self, worker: Any) -> None:
        """Attach the remote-control service to each worker of this app (unless
        ``worker_enable_remote_control`` is off: then only revokes are applied)."""
        if self.conf.settings.worker_enable_remote_control:
            attach(worker)

    def Worker(self, **options: Any) -> Any:
        """A :class:`~celeriac.worker.worker.Worker` for this app."""
        from celeriac.worker.worker import Worker, WorkerOptions

        return Worker(self, WorkerOptions(**options))


Celeriac = Celery
