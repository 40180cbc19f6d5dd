"""Celery's monitoring events: their dicts and envelopes.

An event is a JSON dict published to the ``celeryev`` topic exchange with the
routing key made from its type (``task-sent`` -> ``task.sent``)::

    {"hostname", "utcoffset", "pid", "clock", <type fields>, "timestamp", "type"}

Workers batch task events: one message with routing key ``task.multi`` whose
body is a *list* of event dicts. Receivers must accept both shapes, which
:func:`parse_events` does. Envelopes carry the header ``{"hostname": sender}``
and ``delivery_mode`` 1 (events are not persistent).
"""

from __future__ import annotations

import time as _time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from celeriac.errors import DecodeError
from celeriac.protocol.envelope import Envelope
from celeriac.protocol.keys import EVENT_EXCHANGE
from celeriac.protocol.message import TaskMessage, safe_repr
from celeriac.protocol.serializers import dumps, loads

__all__ = [
    "ALL_EVENTS",
    "HEARTBEAT_FREQ",
    "PROBE_TYPE",
    "TASK_DETAIL_FIELDS",
    "TASK_EVENT_TYPES",
    "TASK_MULTI",
    "WORKER_DETAIL_FIELDS",
    "WORKER_EVENT_TYPES",
    "EventView",
    "event",
    "event_envelope",
    "event_routing_key",
    "exception_repr",
    "local_utcoffset",
    "one_line",
    "parse_events",
    "probe_event",
    "stamped",
    "task_event",
    "task_failed_fields",
    "task_received_fields",
    "task_rejected_fields",
    "task_revoked_fields",
    "task_sent_fields",
    "task_started_fields",
    "task_succeeded_fields",
    "view_event",
    "worker_event",
    "worker_fields",
]

TASK_EVENT_TYPES = frozenset(
    {
        "task-sent",
        "task-received",
        "task-started",
        "task-succeeded",
        "task-failed",
        "task-rejected",
        "task-revoked",
        "task-retried",
    }
)
WORKER_EVENT_TYPES = frozenset({"worker-online", "worker-heartbeat", "worker-offline"})


def local_utcoffset() -> float:
    """This host's offset as Celery reports it: hours *west* of UTC (0.0 for UTC)."""
    west = _time.altzone if _time.daylight and _time.localtime().tm_isdst > 0 else _time.timezone
    return west / 3600


def event(
    type: str,  # noqa: A002 - the wire field is called "type"
    *,
    hostname: str,
    pid: int,
    clock: int,
    timestamp: float | None = None,
    utcoffset: float | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """Build an event dict with the common fields in Celery's order."""
    out: dict[str, Any] = {
        "hostname": hostname,
        "utcoffset": utcoffset if utcoffset is not None else local_utcoffset(),
        "pid": pid,
        "clock": clock,
    }
    out.update(fields)
    out["timestamp"] = timestamp if timestamp is not None else _time.time()
    out["type"] = type
    return out


def stamped(
    type: str,  # noqa: A002 - the wire field is called "type"
    fields: Mapping[str, Any],
    *,
    hostname: str,
    utcoffset: float,
    pid: int,
    clock: int,
    timestamp: float,
) -> dict[str, Any]:
    """:func:`event` for hot paths: every common field given, one dict display."""
    return {"hostname": hostname, "utcoffset": utcoffset, "pid": pid, "clock": clock,
            **fields, "timestamp": timestamp, "type": type}


def _typed(prefix: str, type_: str) -> str:
    return type_ if type_.startswith(prefix) else prefix + type_


def task_event(
    type: str,  # noqa: A002
    *,
    hostname: str,
    pid: int,
    clock: int,
    timestamp: float | None = None,
    utcoffset: float | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A ``task-*`` event (``"sent"`` or ``"task-sent"``); ``uuid`` etc. in ``fields``."""
    return event(
        _typed("task-", type),
        hostname=hostname,
        pid=pid,
        clock=clock,
        timestamp=timestamp,
        utcoffset=utcoffset,
        **fields,
    )


def worker_event(
    type: str,  # noqa: A002
    *,
    hostname: str,
    pid: int,
    clock: int,
    timestamp: float | None = None,
    utcoffset: float | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A ``worker-*`` event; Celery sends ``freq, active, processed, loadavg,
    sw_ident, sw_ver, sw_sys`` in ``fields``."""
    return event(
        _typed("worker-", type),
        hostname=hostname,
        pid=pid,
        clock=clock,
        timestamp=timestamp,
        utcoffset=utcoffset,
        **fields,
    )


def event_routing_key(type: str) -> str:  # noqa: A002
    """Routing key of an event type: ``task-sent`` -> ``task.sent``."""
    return type.replace("-", ".")


def event_envelope(
    events: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    *,
    hostname: str,
    serializer: str = "json",
    exact: bool = False,
) -> Envelope:
    """Wrap one event, or a batch of events of one group, in an envelope.

    ``exact=True`` writes a Celery worker's own JSON bytes (for comparisons).

    A batch (a sequence) goes out with routing key ``<group>.multi`` (e.g.
    ``task.multi``), as Celery workers send task events.
    """
    if isinstance(events, Mapping):
        routing_key = event_routing_key(str(events["type"]))
        payload: Any = events
    else:
        if not events:
            raise ValueError("cannot send an empty batch of events")
        group = str(events[0]["type"]).split("-", 1)[0]
        routing_key = f"{group}.multi"
        payload = list(events)
    body, content_type, content_encoding = dumps(payload, serializer, exact=exact)
    return Envelope(
        body=body,
        content_type=content_type,
        content_encoding=content_encoding,
        headers={"hostname": hostname},
        priority=0,
        delivery_mode=1,
        exchange=EVENT_EXCHANGE,
        routing_key=routing_key,
    )


def parse_events(env: Envelope, accept: Collection[str]) -> list[dict[str, Any]]:
    """The events in an envelope (a dict body or a ``*.multi`` list body)."""
    payload = loads(env.body, env.content_type, env.content_encoding, accept)
    items = payload if isinstance(payload, list) else [payload]
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            raise DecodeError("event body is not an event dict (or a list of them)")
    return items


# -- the fields of each event type (Celery's names and order) ----------------------

#: Seconds between worker heartbeats, as Celery sends them (``freq``).
HEARTBEAT_FREQ = 2.0
#: Binding key that matches every event (topic ``#``).
ALL_EVENTS = "#"
#: Routing key of a batch of task events.
TASK_MULTI = "task.multi"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def task_sent_fields(message: TaskMessage, *, queue: str, exchange: str,
                     routing_key: str) -> dict[str, Any]:
    """Fields of ``task-sent`` for ``message`` (sent by the producer)."""
    return {
        "uuid": message.id, "root_id": message.root_id or message.id,
        "parent_id": message.parent_id, "name": message.shadow or message.task,
        "args": _args_repr(message), "kwargs": _kwargs_repr(message),
        "retries": message.retries, "eta": _iso(message.eta), "expires": _iso(message.expires),
        "queue": queue, "exchange": exchange, "routing_key": routing_key,
    }


def task_received_fields(message: TaskMessage) -> dict[str, Any]:
    """Fields of ``task-received`` for ``message`` (sent by the worker that took it)."""
    return {
        "uuid": message.id, "name": message.shadow or message.task,
        "args": _args_repr(message), "kwargs": _kwargs_repr(message),
        "root_id": message.root_id or message.id, "parent_id": message.parent_id,
        "retries": message.retries, "eta": _iso(message.eta), "expires": _iso(message.expires),
    }


def task_started_fields(task_id: str) -> dict[str, Any]:
    """Fields of ``task-started``."""
    return {"uuid": task_id}


def task_succeeded_fields(task_id: str, result: Any, runtime: float) -> dict[str, Any]:
    """Fields of ``task-succeeded``: the result travels as its ``repr``."""
    return {"uuid": task_id, "result": safe_repr(result, _REPR_LIMIT), "runtime": runtime}


def task_failed_fields(task_id: str, exception: str, traceback: str | None) -> dict[str, Any]:
    """Fields of ``task-failed`` and ``task-retried`` (``exception`` is a repr string)."""
    return {"uuid": task_id, "exception": exception, "traceback": traceback}


def task_revoked_fields(task_id: str, *, terminated: bool, signum: int | None,
                        expired: bool) -> dict[str, Any]:
    """Fields of ``task-revoked``."""
    return {"uuid": task_id, "terminated": terminated, "signum": signum, "expired": expired}


def task_rejected_fields(task_id: str, *, requeue: bool) -> dict[str, Any]:
    """Fields of ``task-rejected``."""
    return {"uuid": task_id, "requeue": requeue}


def worker_fields(*, active: int, processed: int, loadavg: Sequence[float], sw_ident: str,
                  sw_ver: str, sw_sys: str, freq: float = HEARTBEAT_FREQ) -> dict[str, Any]:
    """Fields of ``worker-online``/``-heartbeat``/``-offline``."""
    return {"freq": freq, "active": active, "processed": processed, "loadavg": list(loadavg),
            "sw_ident": sw_ident, "sw_ver": sw_ver, "sw_sys": sw_sys}


def exception_repr(wire: Mapping[str, Any] | None) -> str:
    """``repr()`` of an exception rebuilt from its result-meta form: ``ValueError('boom')``."""
    if not wire:
        return "Exception()"
    message = wire.get("exc_message")
    parts = message if isinstance(message, list | tuple) else ([] if message is None else
                                                                [message])
    return f"{wire.get('exc_type', 'Exception')}({', '.join(repr(p) for p in parts)})"


_REPR_LIMIT = 1024


def _args_repr(message: TaskMessage) -> str:
    if message.argsrepr is not None:
        return message.argsrepr
    return safe_repr(tuple(message.args), _REPR_LIMIT)


def _kwargs_repr(message: TaskMessage) -> str:
    if message.kwargsrepr is not None:
        return message.kwargsrepr
    return safe_repr(dict(message.kwargs), _REPR_LIMIT)


# -- reading events (receivers, cluster state) -------------------------------------

@dataclass(frozen=True, slots=True)
class EventView:
    """The fields of a received event that monitors read, by name (any may be missing).

    ``raw`` is the whole event dict, as Celery handlers receive it.
    """

    type: str
    hostname: str
    timestamp: float
    clock: int
    uuid: str | None
    raw: Mapping[str, Any]

    @property
    def group(self) -> str:
        """``task`` or ``worker`` (the part before the dash)."""
        return self.type.split("-", 1)[0]

    @property
    def kind(self) -> str:
        """What happened: ``received``, ``succeeded``, ``heartbeat`` ..."""
        return self.type.split("-", 1)[-1]

    def get(self, name: str, default: Any = None) -> Any:
        """A field of the event by its wire name."""
        return self.raw.get(name, default)


def view_event(raw: Mapping[str, Any]) -> EventView:
    """An :class:`EventView` over one received event dict."""
    uuid = raw.get("uuid")
    return EventView(
        type=str(raw.get("type", "")), hostname=str(raw.get("hostname", "")),
        timestamp=float(raw.get("timestamp") or 0.0), clock=int(raw.get("clock") or 0),
        uuid=str(uuid) if uuid is not None else None, raw=raw,
    )


#: Fields a task's state keeps from its events (received, sent, succeeded ...).
TASK_DETAIL_FIELDS = ("name", "args", "kwargs", "root_id", "parent_id", "retries", "eta",
                      "expires", "result", "runtime", "exception", "traceback", "queue",
                      "exchange", "routing_key")
#: Fields a worker's state keeps from its events.
WORKER_DETAIL_FIELDS = ("freq", "active", "processed", "loadavg", "sw_ident", "sw_ver",
                        "sw_sys", "pid", "utcoffset")


def one_line(raw: Mapping[str, Any]) -> str:
    """An event as ``celery events --dump`` prints it: ``host [ts] type uuid k=v ...``."""
    skip = {"hostname", "timestamp", "type", "uuid", "clock", "utcoffset", "pid", "local_received"}
    when = datetime.fromtimestamp(float(raw.get("timestamp") or 0.0), UTC)
    rest = " ".join(f"{key}={value!r}" for key, value in raw.items() if key not in skip)
    head = f"{raw.get('hostname', '?')} [{when:%Y-%m-%d %H:%M:%S.%f}] {raw.get('type', '?')}"
    uuid = raw.get("uuid")
    return " ".join(part for part in (head, f"uuid={uuid}" if uuid else "", rest) if part)


#: celeriac's own event type: a receiver publishes it to learn that its
#: subscription is live (other monitors ignore unknown event groups).
PROBE_TYPE = "celeriac-probe"


def probe_event(receiver_id: str, *, hostname: str, pid: int) -> dict[str, Any]:
    """The probe a receiver sends itself (``uuid`` = the receiver's id)."""
    return event(PROBE_TYPE, hostname=hostname, pid=pid, clock=0, uuid=receiver_id)
