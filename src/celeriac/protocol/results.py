"""Result metadata as Celery's backends store it, as a value.

:class:`ResultMeta` is the decoded form of ``celery-task-meta-<id>``: status,
result (for FAILURE/RETRY/REVOKED the wire form of the exception, see
:mod:`celeriac.protocol.exceptions`), traceback, children and the optional
group/parent and extended fields. Encoding keeps Celery's key order so the
bytes match what a Celery worker writes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["ResultMeta"]


@dataclass(frozen=True, slots=True)
class ResultMeta:
    """One task's stored outcome (``status`` is a :mod:`celeriac.protocol.states` name).

    ``result`` is the JSON-able wire value: the return value for SUCCESS, the
    exception dict (``exc_type``/``exc_message``/``exc_module``) otherwise.
    ``name`` .. ``queue`` are only present with ``result_extended``.
    """

    task_id: str
    status: str
    result: Any = None
    traceback: str | None = None
    children: list[Any] | None = field(default_factory=list)
    date_done: str | None = None
    group_id: str | None = None
    parent_id: str | None = None
    name: str | None = None
    args: Any = None
    kwargs: Any = None
    worker: str | None = None
    retries: int | None = None
    queue: str | None = None
    extended: bool = False
