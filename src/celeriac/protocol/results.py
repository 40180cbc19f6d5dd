"""Result metadata as Celery's backends store it, as a value.

:class:`ResultMeta` is the decoded form of ``celery-task-meta-<id>``: status,
result (for FAILURE/RETRY/REVOKED the wire form of the exception, see
:mod:`celeriac.protocol.exceptions`), traceback, children and the optional
group/parent and extended fields. Encoding keeps Celery's key order so the
bytes match what a Celery worker writes::

    {"status", "result", "traceback", "children", "date_done",
     ["group_id"], ["parent_id"],
     ["name", "args", "kwargs", "worker", "retries", "queue"],   # result_extended
     "task_id"}

The relative order of ``group_id``/``parent_id`` and the extended fields when
both appear was not captured; we put the ids first.

Also here: the group ("taskset") value in its nested result-tuple form, the
``date_done`` format, and the members of the chord counter zset (``.j``).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from celeriac.errors import DecodeError
from celeriac.protocol.serializers import (
    content_type_for,
    dumps,
    json_dumps,
    json_dumps_exact,
    json_loads,
    loads,
)

__all__ = [
    "ResultMeta",
    "chord_part_member",
    "decode_chord_part_member",
    "decode_group_meta",
    "decode_meta",
    "encode_group_meta",
    "encode_meta",
    "meta_dict",
    "now_iso",
]

_EXTENDED_FIELDS = ("name", "args", "kwargs", "worker", "retries", "queue")


@dataclass(frozen=True, slots=True)
class ResultMeta:
    """One task's stored outcome (``status`` is a :mod:`celeriac.protocol.states` name).

    ``result`` is the JSON-able wire value: the return value for SUCCESS, the
    exception dict (``exc_type``/``exc_message``/``exc_module``) otherwise.
    ``name`` .. ``queue`` are only present with ``result_extended``.
    ``reply_to`` is the sending client's reply queue (the task message's
    ``reply_to``), used by the ``rpc://`` backend only.
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
    #: Where a reply-queue backend (``rpc://``) sends it; never stored or encoded.
    reply_to: str | None = field(default=None, compare=False)


def now_iso() -> str:
    """The current UTC time in ``date_done`` format (``2026-11-21T07:46:39.653748+00:00``)."""
    return datetime.now(UTC).isoformat()


def meta_dict(meta: ResultMeta) -> dict[str, Any]:
    """The stored mapping for ``meta``, in Celery's key order."""
    out: dict[str, Any] = {
        "status": meta.status,
        "result": meta.result,
        "traceback": meta.traceback,
        "children": meta.children,
        "date_done": meta.date_done,
    }
    if meta.group_id is not None:
        out["group_id"] = meta.group_id
    if meta.parent_id is not None:
        out["parent_id"] = meta.parent_id
    if meta.extended:
        for name in _EXTENDED_FIELDS:
            out[name] = getattr(meta, name)
    out["task_id"] = meta.task_id
    return out


def encode_meta(meta: ResultMeta, serializer: str = "json", *, exact: bool = False) -> bytes:
    """Serialize ``meta`` as a Celery worker writes ``celery-task-meta-<id>``.

    Compact JSON unless ``exact=True`` asks for a Celery worker's own bytes.
    """
    data, _, _ = dumps(meta_dict(meta), serializer, exact=exact)
    return data


def decode_meta(
    data: bytes | str,
    serializer: str = "json",
    task_id: str | None = None,
    accept: Collection[str] | None = None,
) -> ResultMeta:
    """Parse a stored result; ``task_id`` fills in values that lack one.

    ``accept`` defaults to just ``serializer``. Raises
    :class:`~celeriac.errors.DecodeError` when the value is not a result.
    """
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if serializer == "json" and accept is None:
        obj = json_loads(raw)
    else:
        content_type = content_type_for(serializer)
        obj = loads(raw, content_type, "binary", accept if accept is not None else {serializer})
    if not isinstance(obj, dict) or not isinstance(obj.get("status"), str):
        raise DecodeError("stored result is not an object with a 'status'")
    found_id = obj.get("task_id", task_id)
    if not isinstance(found_id, str):
        raise DecodeError("stored result has no task id")
    children = obj.get("children")
    traceback = obj.get("traceback")
    return ResultMeta(
        task_id=found_id,
        status=obj["status"],
        result=obj.get("result"),
        traceback=traceback if isinstance(traceback, str) else None,
        children=list(children) if isinstance(children, (list, tuple)) else None,
        date_done=_date_done(obj.get("date_done")),
        group_id=obj.get("group_id"),
        parent_id=obj.get("parent_id"),
        name=obj.get("name"),
        args=obj.get("args"),
        kwargs=obj.get("kwargs"),
        worker=obj.get("worker"),
        retries=obj.get("retries"),
        queue=obj.get("queue"),
        extended=any(name in obj for name in _EXTENDED_FIELDS),
    )


def _date_done(value: Any) -> str | None:
    # pickle/msgpack backends may hand back a datetime rather than a string
    if isinstance(value, datetime):
        return value.isoformat()
    return value if isinstance(value, str) else None


# -- groups ------------------------------------------------------------------


def encode_group_meta(group_id: str, task_ids: Sequence[str], *, exact: bool = False) -> bytes:
    """The ``celery-taskset-meta-<gid>`` value: nested ``[[id, parent], children]`` tuples."""
    children = [[[task_id, None], None] for task_id in task_ids]
    return (json_dumps_exact if exact else json_dumps)({"result": [[group_id, None], children]})


def decode_group_meta(data: bytes | str) -> list[str]:
    """The member task ids of a saved group, in order."""
    obj = json_loads(data)
    try:
        _, children = obj["result"]
        return [_result_tuple_id(child) for child in children]
    except (KeyError, TypeError, ValueError) as exc:
        raise DecodeError(f"stored group is not a nested result tuple: {exc}") from exc


def _result_tuple_id(node: Any) -> str:
    # [[id, parent], children] for a task; a bare [id, parent] also occurs.
    head = node[0]
    task_id = head[0] if isinstance(head, list) else head
    if not isinstance(task_id, str):
        raise ValueError(f"no task id in {node!r}")
    return task_id


# -- chord counter -----------------------------------------------------------


def chord_part_member(task_id: str, state: str, result: Any) -> bytes:
    """A member of the chord results zset (``.j``): ``[1, id, state, result]``."""
    # kombu's exact bytes: the sorted set deduplicates a redelivered part by
    # member bytes, which must not depend on whether Celery or celeriac wrote it.
    return json_dumps_exact([1, task_id, state, result])


def decode_chord_part_member(data: bytes | str) -> tuple[str, str, Any]:
    """Parse a ``.j`` member into ``(task_id, state, result)``."""
    obj = json_loads(data)
    if (
        not isinstance(obj, list)
        or len(obj) != 4
        or not isinstance(obj[1], str)
        or not isinstance(obj[2], str)
    ):
        raise DecodeError(f"chord part is not a [1, id, state, result] list: {obj!r}")
    return obj[1], obj[2], obj[3]
