"""Remote control (Celery-compatible pidbox broadcast): a room beside the worker.

:mod:`~celeriac.control.client` is ``app.control`` / ``app.control.inspect()``;
:mod:`~celeriac.control.service` answers requests inside each worker with the
commands of :mod:`~celeriac.control.commands`.
"""

from celeriac.control.client import Control, Inspect

__all__ = ["Control", "Inspect"]
