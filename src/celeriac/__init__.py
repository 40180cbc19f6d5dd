"""celeriac: a fast, reliable, async-native distributed task queue, wire-compatible with Celery.

The curated public API. Layers (imports point down only)::

    cli | testing -> dashboard -> facade -> beat | events | control -> worker -> app
    -> canvas | backends -> transports -> protocol | config -> errors | signals | _types
"""

from celeriac.app.core import current_app, shared_task
from celeriac.app.queues import Exchange, Queue
from celeriac.app.result import AsyncResult, GroupResult, ResultSet
from celeriac.app.task import Task
from celeriac.canvas import (
    chain,
    chord,
    chunks,
    group,
    maybe_signature,
    signature,
    xmap,
    xstarmap,
)
from celeriac.facade import Celeriac, Celery
from celeriac.protocol import states

__version__ = "0.1.0"

__all__ = [
    "AsyncResult",
    "Celeriac",
    "Celery",
    "Exchange",
    "GroupResult",
    "Queue",
    "ResultSet",
    "Task",
    "__version__",
    "chain",
    "chord",
    "chunks",
    "current_app",
    "group",
    "maybe_signature",
    "shared_task",
    "signature",
    "states",
    "xmap",
    "xstarmap",
]
