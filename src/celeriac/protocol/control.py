"""What Celery's remote-control commands answer, and the names they go by.

The request/reply envelopes are in :mod:`celeriac.protocol.pidbox`; this module
holds the *bodies*: which methods exist (``inspect`` ones only read, ``control``
ones change the worker), the ``{"ok": ...}`` / ``{"error": ...}`` replies with
Celery's wording, the dict a task is described by in ``active``/``reserved``/
``scheduled`` replies, a queue in ``active_queues``, and the reply queue a
client reads (``<oid>.reply.celery.pidbox``, bound to ``reply.celery.pidbox``
with the oid as routing key).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from celeriac.protocol.keys import PIDBOX_REPLY_EXCHANGE, pidbox_reply_list

__all__ = [
    "CONTROL_COMMANDS",
    "INSPECT_COMMANDS",
    "REPLY_QUEUE_EXPIRES_MS",
    "ReplyQueue",
    "clock_info",
    "error",
    "hello_reply",
    "is_error",
    "ok",
    "queue_info",
    "reply_queue",
    "safe_conf",
    "scheduled_info",
    "task_info",
]

#: ``celery inspect`` methods: they read, never change the worker.
INSPECT_COMMANDS: tuple[str, ...] = (
    "active", "active_queues", "clock", "conf", "ping", "registered", "report", "reserved",
    "revoked", "scheduled", "stats",
)
#: ``celery control`` methods: they change the worker.
CONTROL_COMMANDS: tuple[str, ...] = (
    "add_consumer", "cancel_consumer", "disable_events", "enable_events", "pool_grow",
    "pool_shrink", "rate_limit", "revoke", "shutdown", "terminate", "time_limit",
)


def ok(text: Any) -> dict[str, Any]:
    """A success reply: ``{"ok": text}``."""
    return {"ok": text}


def error(text: str) -> dict[str, Any]:
    """A failure reply: ``{"error": text}``."""
    return {"error": text}


def clock_info(value: int) -> dict[str, Any]:
    """The ``inspect clock`` answer: the worker's Lamport clock, ``{"clock": n}``."""
    return {"clock": value}


def hello_reply(revoked_ids: Any, clock: int) -> dict[str, Any]:
    """The answer to a Celery worker's start-up ``hello`` (mingle): the ids revoked
    here and our clock, which the newcomer adjusts its own to."""
    return {"revoked": dict.fromkeys(revoked_ids, 0), "clock": clock}


def is_error(reply: Any) -> bool:
    """Whether one worker's reply says the command failed."""
    return isinstance(reply, Mapping) and "error" in reply


def task_info(
    *,
    task_id: str,
    name: str,
    args: Any,
    kwargs: Any,
    hostname: str,
    time_start: float | None,
    acknowledged: bool,
    delivery_info: Mapping[str, Any],
    worker_pid: int | None,
) -> dict[str, Any]:
    """One task as ``inspect active``/``reserved`` describe it (Celery's ``Request.info``)."""
    return {
        "id": task_id,
        "name": name,
        "args": args,
        "kwargs": kwargs,
        "type": name,
        "hostname": hostname,
        "time_start": time_start,
        "acknowledged": acknowledged,
        "delivery_info": dict(delivery_info),
        "worker_pid": worker_pid,
    }


def scheduled_info(eta: datetime | None, priority: int | None,
                   request: Mapping[str, Any]) -> dict[str, Any]:
    """One ETA task in an ``inspect scheduled`` reply."""
    return {"eta": eta.isoformat() if eta is not None else None, "priority": priority,
            "request": dict(request)}


def queue_info(name: str, exchange: str, exchange_type: str, routing_key: str, *,
               durable: bool = True, auto_delete: bool = False, exclusive: bool = False,
               arguments: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One queue as ``inspect active_queues`` lists it (kombu's ``Queue.as_dict``)."""
    return {
        "name": name,
        "exchange": {"name": exchange, "type": exchange_type, "arguments": None,
                     "durable": durable, "passive": False, "auto_delete": False,
                     "delivery_mode": None, "no_declare": False},
        "routing_key": routing_key,
        "queue_arguments": dict(arguments) if arguments else None,
        "binding_arguments": None,
        "consumer_arguments": None,
        "durable": durable,
        "exclusive": exclusive,
        "auto_delete": auto_delete,
        "no_ack": False,
        "alias": None,
        "bindings": [],
        "no_declare": None,
        "expires": None,
        "message_ttl": None,
        "max_length": None,
        "max_length_bytes": None,
        "max_priority": None,
    }


_SECRET_NAME = re.compile(r"(?i)(password|secret|key|token|signature|credential|auth)")
_URL_PASSWORD = re.compile(r"(//[^:/@]*:)[^@/]*@")


def _mask(value: Any) -> Any:
    if isinstance(value, str):
        return _URL_PASSWORD.sub(r"\1********@", value)
    if isinstance(value, (list, tuple)):
        return [_mask(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _mask(v) for k, v in value.items()}
    return value


def safe_conf(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The settings an ``inspect conf`` reply may show: passwords in URLs masked,
    settings whose names speak of secrets or keys left out, values made JSON-safe
    (anything not a plain value becomes its ``repr``)."""
    out: dict[str, Any] = {}
    for name, value in settings.items():
        if _SECRET_NAME.search(name) and not name.endswith(("_url", "_backend")):
            continue
        out[name] = _jsonable(_mask(value))
    return out


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return repr(value)


#: A client's reply queue left behind (its process died mid-call) goes after this
#: long unused, on RabbitMQ (``x-expires``; Celery's ``reply_queue_expires``, 10 s).
REPLY_QUEUE_EXPIRES_MS = 10_000


class ReplyQueue:
    """Where replies to client ``oid`` land: queue ``<oid>.reply.celery.pidbox`` bound
    to the direct exchange ``reply.celery.pidbox`` with routing key ``oid``.

    Not auto-delete: the client deletes it when its last call ends (each call has
    its own connection, and RabbitMQ would delete an auto-delete queue as one
    call's consumer goes while another call is about to read it); ``arguments``
    give it an expiry for clients that die first."""

    __slots__ = ("arguments", "exchange", "name", "routing_key")

    def __init__(self, oid: str) -> None:
        self.name = pidbox_reply_list(oid)
        self.exchange = PIDBOX_REPLY_EXCHANGE
        self.routing_key = oid
        self.arguments: dict[str, Any] = {"x-expires": REPLY_QUEUE_EXPIRES_MS}


def reply_queue(oid: str) -> ReplyQueue:
    """The reply queue of client ``oid``."""
    return ReplyQueue(oid)
