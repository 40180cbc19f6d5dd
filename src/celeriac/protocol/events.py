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
from typing import Any

from celeriac.errors import DecodeError
from celeriac.protocol.envelope import Envelope
from celeriac.protocol.keys import EVENT_EXCHANGE
from celeriac.protocol.serializers import dumps, loads

__all__ = [
    "TASK_EVENT_TYPES",
    "WORKER_EVENT_TYPES",
    "event",
    "event_envelope",
    "event_routing_key",
    "local_utcoffset",
    "parse_events",
    "task_event",
    "worker_event",
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
