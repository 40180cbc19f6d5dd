"""The signature dict: how Celery serializes a task call inside another message.

Callbacks, errbacks, chains and chord bodies travel as::

    {"task": "tasks.add", "args": [10], "kwargs": {}, "options": {...},
     "subtask_type": null, "immutable": false}

``options`` may hold ``task_id``, ``reply_to``, ``group_id``, ``queue`` and other
``apply_async`` options; ``subtask_type`` is null for a task, or ``"chain"``,
``"group"``, ``"chord"``. The canvas package turns these into objects; this
module only knows the shape.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from celeriac.errors import DecodeError

__all__ = [
    "SUBTASK_TYPES",
    "is_signature_dict",
    "normalize_signature_dict",
    "signature_dict",
]

SUBTASK_TYPES = frozenset({"chain", "group", "chord", "chunks", "xmap", "xstarmap"})


def signature_dict(
    task: str,
    args: Iterable[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
    subtask_type: str | None = None,
    immutable: bool = False,
) -> dict[str, Any]:
    """Build a signature dict in Celery's key order."""
    return {
        "task": task,
        "args": list(args),
        "kwargs": dict(kwargs or {}),
        "options": dict(options or {}),
        "subtask_type": subtask_type,
        "immutable": immutable,
    }


def is_signature_dict(obj: Any) -> bool:
    """Whether ``obj`` has the shape of a signature dict (at least a ``task`` name)."""
    if not isinstance(obj, Mapping) or not isinstance(obj.get("task"), str):
        return False
    kwargs, options = obj.get("kwargs"), obj.get("options")
    return (
        isinstance(obj.get("args", ()), (list, tuple))
        and (kwargs is None or isinstance(kwargs, Mapping))
        and (options is None or isinstance(options, Mapping))
    )


def normalize_signature_dict(obj: Any) -> dict[str, Any]:
    """Return a complete signature dict from a possibly partial one.

    Missing keys get their defaults (senders other than Celery omit some).
    Raises :class:`~celeriac.errors.DecodeError` when ``obj`` is not a signature.
    """
    if not is_signature_dict(obj):
        raise DecodeError(f"not a signature dict: {obj!r}")
    return signature_dict(
        obj["task"],
        obj.get("args") or (),
        obj.get("kwargs"),
        obj.get("options"),
        obj.get("subtask_type"),
        bool(obj.get("immutable", False)),
    )
