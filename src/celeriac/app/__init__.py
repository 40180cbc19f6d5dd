"""The definition side: App, Task, registry, routing, producer and result handles.

May import: canvas, backends, transports, protocol, config, errors, signals.
"""

from celeriac.app.core import App, current_app, shared_task
from celeriac.app.result import AsyncResult, EagerResult, GroupResult, ResultSet
from celeriac.app.task import Task

__all__ = [
    "App",
    "AsyncResult",
    "EagerResult",
    "GroupResult",
    "ResultSet",
    "Task",
    "current_app",
    "shared_task",
]
