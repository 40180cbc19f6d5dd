"""The task message as a value, and its Celery wire form (protocol 2, and 1 to read).

:class:`TaskMessage` is a frozen dataclass that knows nothing about brokers.
:func:`build_task_envelope` turns it into an :class:`Envelope` whose headers are
exactly Celery 5.7's (same keys, same order) and whose body is
``[args, kwargs, {"callbacks", "errbacks", "chain", "chord"}]``;
:func:`parse_task_envelope` reads Celery's protocol 2 and the old protocol 1
(detected by a missing ``task`` header: everything is in a dict body).

Change a message with :func:`message_with` (``dataclasses.replace`` under a
name that reads well at call sites), e.g. a retry::

    retried = message_with(msg, retries=msg.retries + 1, eta=when, parent_id=msg.id)
"""

from __future__ import annotations

import dataclasses
import os
import socket
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from celeriac.errors import DecodeError, ProtocolError
from celeriac.protocol._ids import uuid4_str, uuid4_strs
from celeriac.protocol.batch import EnvelopeBatch
from celeriac.protocol.envelope import Envelope
from celeriac.protocol.serializers import compress, decompress, dumps, json_dumps_fast, loads

__all__ = [
    "ARGSREPR_MAXSIZE",
    "KWARGSREPR_MAXSIZE",
    "TaskCallTemplate",
    "TaskMessage",
    "build_task_batch",
    "build_task_envelope",
    "message_with",
    "new_task_id",
    "parse_task_envelope",
    "process_origin",
    "safe_repr",
    "task_message",
    "task_message_summary",
]

#: Celery's default limits for the ``argsrepr``/``kwargsrepr`` headers.
ARGSREPR_MAXSIZE = 1024
KWARGSREPR_MAXSIZE = 1024

# Headers with a field of their own; anything else lands in ``extra_headers``.
# ``compression`` belongs to the envelope (body framing), not to the task.
_KNOWN_HEADERS = frozenset(
    {
        "lang",
        "task",
        "id",
        "shadow",
        "eta",
        "expires",
        "group",
        "group_index",
        "retries",
        "timelimit",
        "root_id",
        "parent_id",
        "argsrepr",
        "kwargsrepr",
        "origin",
        "ignore_result",
        "replaced_task_nesting",
        "stamped_headers",
        "stamps",
        "compression",
    }
)


@dataclass(frozen=True)
class TaskMessage:
    """One task invocation, as Celery's protocol describes it.

    ``timelimit`` is ``(hard, soft)`` in seconds. ``root_id=None`` means "this
    task is the root" (the header is then its own id). ``extra_headers`` are
    headers celeriac does not interpret; they travel unchanged. ``priority`` and
    ``reply_to`` are message properties rather than headers. ``protocol`` is the
    Celery task protocol the message came in (or is to be sent) with.
    """

    task: str
    id: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    callbacks: list[dict[str, Any]] | None = None
    errbacks: list[dict[str, Any]] | None = None
    chain: list[dict[str, Any]] | None = None
    chord: dict[str, Any] | None = None
    eta: datetime | None = None
    expires: datetime | None = None
    retries: int = 0
    group: str | None = None
    group_index: int | None = None
    root_id: str | None = None
    parent_id: str | None = None
    shadow: str | None = None
    timelimit: tuple[float | None, float | None] = (None, None)
    ignore_result: bool = False
    origin: str | None = None
    argsrepr: str | None = None
    kwargsrepr: str | None = None
    replaced_task_nesting: int = 0
    stamped_headers: list[str] | None = None
    stamps: dict[str, Any] = field(default_factory=dict)
    extra_headers: Mapping[str, Any] = field(default_factory=dict)
    priority: int | None = None
    reply_to: str | None = None
    protocol: int = 2


def new_task_id() -> str:
    """A fresh task id (uuid4 string, as Celery makes them)."""
    return uuid4_str()


def process_origin() -> str:
    """The ``origin`` header Celery clients send: ``gen<pid>@<hostname>``."""
    return f"gen{os.getpid()}@{socket.gethostname()}"


def message_with(msg: TaskMessage, **changes: Any) -> TaskMessage:
    """Return a copy of ``msg`` with ``changes`` applied (``dataclasses.replace``)."""
    return dataclasses.replace(msg, **changes)


def safe_repr(value: Any, limit: int) -> str:
    """``repr(value)`` cut to ``limit`` characters; never raises."""
    try:
        text = repr(value)
    except Exception:  # a user's __repr__ may fail; logging must not
        text = f"<unrepresentable {type(value).__name__}>"
    if len(text) > limit:
        text = text[: max(limit - 3, 0)] + "..."
    return text


def task_message_summary(msg: TaskMessage) -> str:
    """A short one-line description for logs: ``name[id]`` plus what matters."""
    name = msg.shadow or msg.task
    parts = [f"{name}[{msg.id}]"]
    if msg.eta is not None:
        parts.append(f"eta={_iso(msg.eta)}")
    if msg.expires is not None:
        parts.append(f"expires={_iso(msg.expires)}")
    if msg.retries:
        parts.append(f"retries={msg.retries}")
    if msg.group is not None:
        parts.append(f"group={msg.group}")
    parts.append(f"args={msg.argsrepr or safe_repr(msg.args, 120)}")
    parts.append(f"kwargs={msg.kwargsrepr or safe_repr(msg.kwargs, 120)}")
    return " ".join(parts)


_FIELD_NAMES = frozenset(f.name for f in dataclasses.fields(TaskMessage))
_PLAIN_DEFAULTS = {
    f.name: f.default
    for f in dataclasses.fields(TaskMessage)
    if f.default is not dataclasses.MISSING
}


def task_message(**fields: Any) -> TaskMessage:
    """``TaskMessage(**fields)`` at about half the cost (one per sent or received task).

    A frozen dataclass's ``__init__`` sets each of the 28 fields through
    ``object.__setattr__``; this fills the instance dict in one update. Same
    value, same checks on names (``task`` and ``id`` required, no unknown ones).
    """
    if "task" not in fields or "id" not in fields or not fields.keys() <= _FIELD_NAMES:
        unknown = sorted(set(fields) - _FIELD_NAMES) or "task and id are required"
        raise TypeError(f"task_message(): bad fields: {unknown}")
    values = dict(_PLAIN_DEFAULTS)
    values["kwargs"] = {}
    values["stamps"] = {}
    values["extra_headers"] = {}
    values.update(fields)
    msg = object.__new__(TaskMessage)
    msg.__dict__.update(values)
    return msg


# -- building ----------------------------------------------------------------


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else _aware(value).isoformat()


def _expiration(expires: datetime | None, now: datetime | None) -> str | None:
    """Milliseconds until ``expires``, as Celery sets the AMQP ``expiration``."""
    if expires is None:
        return None
    reference = _aware(now) if now is not None else datetime.now(UTC)
    millis = (_aware(expires) - reference).total_seconds() * 1000
    return str(max(int(millis), 0))


def _v2_headers(msg: TaskMessage) -> dict[str, Any]:
    headers: dict[str, Any] = {
        "lang": "py",
        "task": msg.task,
        "id": msg.id,
        "shadow": msg.shadow,
        "eta": _iso(msg.eta),
        "expires": _iso(msg.expires),
        "group": msg.group,
        "group_index": msg.group_index,
        "retries": msg.retries,
        "timelimit": [msg.timelimit[0], msg.timelimit[1]],
        "root_id": msg.root_id if msg.root_id is not None else msg.id,
        "parent_id": msg.parent_id,
        "argsrepr": (
            msg.argsrepr if msg.argsrepr is not None else safe_repr(msg.args, ARGSREPR_MAXSIZE)
        ),
        "kwargsrepr": (
            msg.kwargsrepr
            if msg.kwargsrepr is not None
            else safe_repr(msg.kwargs, KWARGSREPR_MAXSIZE)
        ),
        "origin": msg.origin,
        "ignore_result": msg.ignore_result,
        "replaced_task_nesting": msg.replaced_task_nesting,
        "stamped_headers": msg.stamped_headers,
        "stamps": msg.stamps,
    }
    for key, value in msg.extra_headers.items():
        if key not in headers:
            headers[key] = value
    return headers


def _v1_body(msg: TaskMessage) -> dict[str, Any]:
    if msg.chain:
        raise ProtocolError("task protocol 1 cannot carry a chain; send with protocol 2")
    return {
        "task": msg.task,
        "id": msg.id,
        "args": list(msg.args),
        "kwargs": msg.kwargs,
        "group": msg.group,
        "group_index": msg.group_index,
        "retries": msg.retries,
        "eta": _iso(msg.eta),
        "expires": _iso(msg.expires),
        "utc": True,
        "callbacks": msg.callbacks,
        "errbacks": msg.errbacks,
        "timelimit": [msg.timelimit[0], msg.timelimit[1]],
        "taskset": msg.group,
        "chord": msg.chord,
    }


def build_task_envelope(
    msg: TaskMessage,
    *,
    queue: str,
    exchange: str = "",
    serializer: str = "json",
    compression: str | None = None,
    now: datetime | None = None,
    exact: bool = False,
) -> Envelope:
    """Build the envelope Celery 5.7 would publish for ``msg`` to ``queue``.

    Headers come in Celery's order, ``extra_headers`` after them and the
    ``compression`` header last; ``argsrepr``/``kwargsrepr`` default to a
    bounded ``repr()``. Naive ``eta``/``expires`` are taken as UTC. With
    ``expires`` the AMQP ``expiration`` property is set (milliseconds from
    ``now``, default the current time), as Celery does. ``correlation_id`` is the
    task id and the routing key is the queue name. The JSON body is compact
    orjson output unless ``exact=True`` asks for kombu's own bytes.
    """
    headers: dict[str, Any]
    if msg.protocol == 1:
        headers = {}
        payload: Any = _v1_body(msg)
    else:
        headers = _v2_headers(msg)
        payload = (tuple(msg.args), msg.kwargs, _embed(msg))
    body, content_type, content_encoding = dumps(payload, serializer, exact=exact)
    if compression:
        body, headers["compression"] = compress(body, compression)
    return Envelope(
        body=body,
        content_type=content_type,
        content_encoding=content_encoding,
        headers=headers,
        correlation_id=msg.id,
        reply_to=msg.reply_to,
        priority=msg.priority if msg.priority is not None else 0,
        delivery_mode=2,
        expiration=_expiration(msg.expires, now),
        exchange=exchange,
        routing_key=queue,
    )


def _embed(msg: TaskMessage) -> dict[str, Any]:
    return {
        "callbacks": msg.callbacks,
        "errbacks": msg.errbacks,
        "chain": msg.chain,
        "chord": msg.chord,
    }


class TaskCallTemplate:
    """Calls of one task message that differ only in their id and arguments.

    Built once from ``msg`` (its envelope is the :attr:`prototype`); each call
    then makes only its body, ``argsrepr`` and ``kwargsrepr`` (:meth:`row`).
    The envelope of a row is what :func:`build_task_envelope` builds for
    ``message_with(msg, id=<id>, args=..., kwargs=...)`` (and, when ``msg`` is
    its own root, ``root_id=<id>``) with the same ``now``. Protocol 2 only,
    with ``argsrepr``/``kwargsrepr`` left to default.
    """

    __slots__ = ("_compression", "_embed", "_embed_json", "_own_root", "_serializer",
                 "prototype", "varying")

    def __init__(
        self,
        msg: TaskMessage,
        *,
        queue: str,
        exchange: str = "",
        serializer: str = "json",
        compression: str | None = None,
        now: datetime | None = None,
    ) -> None:
        if msg.protocol != 2 or msg.argsrepr is not None or msg.kwargsrepr is not None:
            raise ValueError("a call template needs a protocol 2 message with default reprs")
        self.prototype = build_task_envelope(msg, queue=queue, exchange=exchange,
                                             serializer=serializer, compression=compression,
                                             now=now)
        self._own_root = msg.root_id is None or msg.root_id == msg.id
        #: The headers that differ per call, in the order of each row's values.
        self.varying: tuple[str, ...] = (
            ("id", "root_id", "argsrepr", "kwargsrepr") if self._own_root
            else ("id", "argsrepr", "kwargsrepr")
        )
        self._embed = _embed(msg)
        # JSON bodies: "[args,kwargs,embed]" with the embed encoded once, exactly
        # what json_dumps writes for the whole list when every part is orjson's.
        self._embed_json = json_dumps_fast(self._embed) if serializer == "json" else None
        self._serializer = serializer
        self._compression = compression

    def row(self, task_id: str, args: tuple[Any, ...],
            kwargs: dict[str, Any]) -> tuple[str, bytes, tuple[Any, ...]]:
        """``(task id, body, values of the varying headers)`` of one call."""
        body = None
        embed_json = self._embed_json
        if embed_json is not None:
            args_json = json_dumps_fast(args)
            kwargs_json = json_dumps_fast(kwargs) if kwargs else b"{}"
            if args_json is not None and kwargs_json is not None:
                body = b"[%s,%s,%s]" % (args_json, kwargs_json, embed_json)
        if body is None:
            body = dumps((args, kwargs, self._embed), self._serializer)[0]
        if self._compression:
            body = compress(body, self._compression)[0]
        argsrepr = safe_repr(args, ARGSREPR_MAXSIZE)
        kwargsrepr = safe_repr(kwargs, KWARGSREPR_MAXSIZE) if kwargs else "{}"
        if self._own_root:
            return task_id, body, (task_id, task_id, argsrepr, kwargsrepr)
        return task_id, body, (task_id, argsrepr, kwargsrepr)

    def batch(self, task_id: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> EnvelopeBatch:
        """The one-message batch of one call."""
        return EnvelopeBatch(self.prototype, self.varying, (self.row(task_id, args, kwargs),))


def build_task_batch(
    msg: TaskMessage,
    calls: Iterable[tuple[Sequence[Any], Mapping[str, Any]]],
    *,
    queue: str,
    exchange: str = "",
    serializer: str = "json",
    compression: str | None = None,
    now: datetime | None = None,
) -> EnvelopeBatch:
    """One envelope per ``(args, kwargs)`` in ``calls``, each a call of ``msg``'s task.

    Every call gets a fresh id; when ``msg`` is its own root (no ``root_id``
    or ``root_id == id``) so does its ``root_id``. Envelope ``i`` equals
    :func:`build_task_envelope` of ``message_with(msg, id=<id i>, args=...,
    kwargs=...)`` (same ``now``), but headers and properties are built once
    for the batch: per call only the body, the id and ``argsrepr``/``kwargsrepr``
    are made (see :class:`TaskCallTemplate`).
    """
    try:
        template = TaskCallTemplate(msg, queue=queue, exchange=exchange, serializer=serializer,
                                    compression=compression, now=now)
    except ValueError:
        raise ValueError("build_task_batch needs a protocol 2 message with default reprs") \
            from None
    calls = list(calls)
    ids = uuid4_strs(len(calls))
    rows = [template.row(task_id, tuple(call_args), dict(call_kwargs))
            for task_id, (call_args, call_kwargs) in zip(ids, calls, strict=True)]
    return EnvelopeBatch(template.prototype, template.varying, rows)


# -- parsing -----------------------------------------------------------------


def _parse_dt(value: Any, name: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return _aware(value)
    if isinstance(value, str):
        try:
            return _aware(datetime.fromisoformat(value))
        except ValueError:
            pass
    raise DecodeError(f"{name!r} is not an ISO-8601 datetime: {value!r}")


def _opt_str(source: Mapping[str, Any], name: str) -> str | None:
    value = source.get(name)
    if value is None or isinstance(value, str):
        return value
    raise DecodeError(f"{name!r} must be a string or null, got {type(value).__name__}")


def _int(source: Mapping[str, Any], name: str, default: int | None) -> Any:
    value = source.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise DecodeError(f"{name!r} must be an integer, got {value!r}")
    return value


def _timelimit(value: Any) -> tuple[float | None, float | None]:
    if value is None:
        return (None, None)
    if isinstance(value, (list, tuple)) and len(value) == 2:
        hard, soft = value
        if all(
            v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))
            for v in (hard, soft)
        ):
            return (hard, soft)
    raise DecodeError(f"'timelimit' must be [hard, soft] seconds or nulls, got {value!r}")


def _sig_list(value: Any, name: str) -> list[dict[str, Any]] | None:
    if value is None:
        return None
    if isinstance(value, (list, tuple)) and all(isinstance(v, dict) for v in value):
        return list(value)
    raise DecodeError(f"{name!r} must be a list of signature dicts or null")


def _sig(value: Any, name: str) -> dict[str, Any] | None:
    if value is None or isinstance(value, dict):
        return value
    raise DecodeError(f"{name!r} must be a signature dict or null")


def _required_str(source: Mapping[str, Any], name: str, where: str) -> str:
    value = source.get(name)
    if not isinstance(value, str) or not value:
        raise DecodeError(f"{where} has no valid {name!r} (got {value!r})")
    return value


def _args_kwargs(args: Any, kwargs: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    if not isinstance(args, (list, tuple)):
        raise DecodeError(f"task args must be a list, got {type(args).__name__}")
    if kwargs is None:
        kwargs = {}
    if not isinstance(kwargs, dict):
        raise DecodeError(f"task kwargs must be an object, got {type(kwargs).__name__}")
    return tuple(args), kwargs


_V2_STR_HEADERS = ("group", "root_id", "parent_id", "shadow", "origin", "argsrepr", "kwargsrepr")


_NULL_LIMITS = [None, None]


def _parse_v2(env: Envelope, headers: Mapping[str, Any], payload: Any) -> TaskMessage:
    # Runs once per received task and is a visible share of the worker's own
    # CPU: each header is read once, the common valid values are accepted with
    # one type test each, and only an unusual value goes through the helper
    # that validates (and names) it.
    size = len(payload) if isinstance(payload, (list, tuple)) else 0
    if size == 3:
        args, kwargs, embed = payload
    elif size == 2:
        (args, kwargs), embed = payload, None
    else:
        raise DecodeError("protocol 2 body is not a [args, kwargs, embed] list")
    if type(args) is list:
        args = tuple(args)
    elif type(args) is not tuple:
        args, kwargs = _args_kwargs(args, kwargs)
    if type(kwargs) is not dict:
        args, kwargs = _args_kwargs(args, kwargs)
    if embed is None:
        callbacks = errbacks = chain = chord = None
    elif type(embed) is dict:
        get_embedded = embed.get
        callbacks, errbacks = get_embedded("callbacks"), get_embedded("errbacks")
        chain, chord = get_embedded("chain"), get_embedded("chord")
    else:
        raise DecodeError("protocol 2 body embed is not an object")
    get = headers.get
    group, root_id, parent_id = get("group"), get("root_id"), get("parent_id")
    shadow, origin = get("shadow"), get("origin")
    argsrepr, kwargsrepr = get("argsrepr"), get("kwargsrepr")
    for value in (group, root_id, parent_id, shadow, origin, argsrepr, kwargsrepr):
        if value is not None and type(value) is not str:
            for name in _V2_STR_HEADERS:
                _opt_str(headers, name)  # raises, naming the first bad header
    task, task_id = get("task"), get("id")
    if type(task) is not str or not task:
        _required_str(headers, "task", "message headers")
    if type(task_id) is not str or not task_id:
        _required_str(headers, "id", "message headers")
    eta, expires = get("eta"), get("expires")
    retries, nesting = get("retries", 0), get("replaced_task_nesting", 0)
    group_index, limits = get("group_index"), get("timelimit")
    stamped, stamps = get("stamped_headers"), get("stamps")
    msg = object.__new__(TaskMessage)
    # The instance dict itself (the frozen class refuses attribute writes): every
    # field, in declaration order, as TaskMessage's __init__ would set them.
    object.__setattr__(msg, "__dict__", {
        "task": task,
        "id": task_id,
        "args": args,
        "kwargs": kwargs,
        "callbacks": None if callbacks is None else _sig_list(callbacks, "callbacks"),
        "errbacks": None if errbacks is None else _sig_list(errbacks, "errbacks"),
        "chain": None if chain is None else _sig_list(chain, "chain"),
        "chord": None if chord is None else _sig(chord, "chord"),
        "eta": None if eta is None else _parse_dt(eta, "eta"),
        "expires": None if expires is None else _parse_dt(expires, "expires"),
        "retries": retries if type(retries) is int else _int(headers, "retries", 0),
        "group": group,
        "group_index": (
            group_index if group_index is None or type(group_index) is int
            else _int(headers, "group_index", None)
        ),
        "root_id": root_id,
        "parent_id": parent_id,
        "shadow": shadow,
        "timelimit": (
            (None, None) if limits is None or limits == _NULL_LIMITS else _timelimit(limits)
        ),
        "ignore_result": bool(get("ignore_result")),
        "origin": origin,
        "argsrepr": argsrepr,
        "kwargsrepr": kwargsrepr,
        "replaced_task_nesting": (
            nesting if type(nesting) is int else _int(headers, "replaced_task_nesting", 0)
        ),
        "stamped_headers": list(stamped) if isinstance(stamped, (list, tuple)) else None,
        "stamps": dict(stamps) if isinstance(stamps, dict) else {},
        "extra_headers": (
            {} if headers.keys() <= _KNOWN_HEADERS
            else {k: v for k, v in headers.items() if k not in _KNOWN_HEADERS}
        ),
        "priority": env.priority,
        "reply_to": env.reply_to,
        "protocol": 2,
    })
    return msg


def _parse_v1(env: Envelope, payload: Any) -> TaskMessage:
    if not isinstance(payload, dict) or not isinstance(payload.get("task"), str):
        raise DecodeError("message has no 'task' header and its body is not a protocol 1 dict")
    args, kwargs = _args_kwargs(payload.get("args", ()), payload.get("kwargs"))
    # Protocol 1 says naive times are local unless "utc" is true; Celery has
    # sent utc=True for years, and guessing a sender's zone is worse than UTC.
    return TaskMessage(
        task=_required_str(payload, "task", "protocol 1 body"),
        id=_required_str(payload, "id", "protocol 1 body"),
        args=args,
        kwargs=kwargs,
        callbacks=_sig_list(payload.get("callbacks"), "callbacks"),
        errbacks=_sig_list(payload.get("errbacks"), "errbacks"),
        chord=_sig(payload.get("chord"), "chord"),
        eta=_parse_dt(payload.get("eta"), "eta"),
        expires=_parse_dt(payload.get("expires"), "expires"),
        retries=_int(payload, "retries", 0),
        group=_opt_str(payload, "group") or _opt_str(payload, "taskset"),
        group_index=_int(payload, "group_index", None),
        timelimit=_timelimit(payload.get("timelimit")),
        priority=env.priority,
        reply_to=env.reply_to,
        protocol=1,
    )


def parse_task_envelope(env: Envelope, accept: Collection[str]) -> TaskMessage:
    """Read a task message (protocol 2, or 1 when there is no ``task`` header).

    Raises :class:`~celeriac.errors.ContentDisallowed` when the content type is
    not in ``accept`` and :class:`~celeriac.errors.DecodeError` with the reason
    when the body or headers are not a valid task message. Naive ``eta`` and
    ``expires`` are taken as UTC.
    """
    headers = env.headers
    body = env.body
    compression = headers.get("compression")
    if compression:
        body = decompress(body, str(compression))
    payload = loads(body, env.content_type, env.content_encoding, accept)
    if "task" in headers:
        return _parse_v2(env, headers, payload)
    return _parse_v1(env, payload)
