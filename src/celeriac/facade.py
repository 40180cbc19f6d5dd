"""``Celery`` (also ``Celeriac``): the app users create, with the worker entry points."""

from __future__ import annotations

import importlib
import sys
from typing import Any

from celeriac.app.core import App
from celeriac.control.client import Control
from celeriac.control.service import attach
from celeriac.events import Events, worker_dispatcher

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

    def start(self, argv: list[str] | None = None) -> None:
        """Run the ``celeriac`` command line with this app, as Celery's ``app.start()``:
        ``python tasks.py worker --loglevel=INFO`` runs a worker when ``tasks.py`` ends
        with ``if __name__ == '__main__': app.start()``."""
        # The CLI is the composition root above this module: reached at call
        # time only (docs/decisions.md, "app.start()").
        cli_main = importlib.import_module("celeriac.cli.main").main
        cli_main(list(argv) if argv is not None else sys.argv[1:], app=self)

    def worker_main(self, argv: list[str] | None = None) -> None:
        """Run a worker from command-line arguments (``app.worker_main(['worker', '-c', '2'])``);
        ``worker`` is added in front when missing."""
        args = list(argv) if argv is not None else sys.argv[1:]
        if "worker" not in args:
            args.insert(0, "worker")
        self.start(args)

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
