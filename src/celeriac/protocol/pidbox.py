"""Remote control (kombu "pidbox") requests and replies.

A request is broadcast on the ``celery.pidbox`` fanout exchange with headers
``{"clock": n, "expires": <unix time>}`` and the body::

    {"method": "ping", "arguments": {}, "destination": null | [nodenames],
     "pattern": null, "matcher": null, "ticket": "<uuid>",
     "reply_to": {"exchange": "reply.celery.pidbox", "routing_key": "<client oid>"}}

(``ticket`` and ``reply_to`` only when a reply is wanted). Each addressed worker
replies to ``reply.celery.pidbox`` with routing key = the client's oid, headers
``{"ticket": <same>, "clock": n}`` and the body ``{"<nodename>": <reply>}``.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from celeriac.errors import DecodeError
from celeriac.protocol.envelope import Envelope
from celeriac.protocol.keys import PIDBOX_EXCHANGE, PIDBOX_REPLY_EXCHANGE
from celeriac.protocol.serializers import dumps, loads

__all__ = [
    "ControlReply",
    "ControlRequest",
    "control_reply_envelope",
    "control_request_envelope",
    "merge_replies",
    "parse_control_reply",
    "parse_control_request",
]


@dataclass(frozen=True, slots=True)
class ControlRequest:
    """One broadcast command; ``reply_to`` is the client oid (None: no reply wanted)."""

    method: str
    arguments: dict[str, Any] = field(default_factory=dict)
    destination: list[str] | None = None
    pattern: str | None = None
    matcher: str | None = None
    ticket: str | None = None
    reply_to: str | None = None
    reply_exchange: str = PIDBOX_REPLY_EXCHANGE
    clock: int | None = None
    expires: float | None = None

    def is_for(self, nodename: str) -> bool:
        """Whether the worker ``nodename`` is addressed by this request.

        With a ``pattern``, ``matcher`` ``"pcre"`` means a regular expression
        and anything else a glob, as in kombu.
        """
        if self.pattern:
            if self.matcher == "pcre":
                return re.search(self.pattern, nodename) is not None
            return fnmatch.fnmatchcase(nodename, self.pattern)
        return self.destination is None or nodename in self.destination


@dataclass(frozen=True, slots=True)
class ControlReply:
    """One worker's answer: ``{nodename: value}`` for the request ``ticket``."""

    ticket: str | None
    replies: dict[str, Any]
    clock: int | None = None


def _request_body(req: ControlRequest) -> dict[str, Any]:
    body: dict[str, Any] = {
        "method": req.method,
        "arguments": req.arguments,
        "destination": req.destination,
        "pattern": req.pattern,
        "matcher": req.matcher,
    }
    if req.reply_to is not None:
        body["ticket"] = req.ticket
        body["reply_to"] = {"exchange": req.reply_exchange, "routing_key": req.reply_to}
    return body


def control_request_envelope(
    req: ControlRequest, serializer: str = "json", *, exact: bool = False
) -> Envelope:
    """The broadcast envelope of a request (fanout exchange, empty routing key).

    ``exact=True`` writes Celery's own JSON bytes (for comparisons).
    """
    headers: dict[str, Any] = {}
    if req.clock is not None:
        headers["clock"] = req.clock
    if req.expires is not None:
        headers["expires"] = req.expires
    body, content_type, content_encoding = dumps(_request_body(req), serializer, exact=exact)
    return Envelope(
        body=body,
        content_type=content_type,
        content_encoding=content_encoding,
        headers=headers,
        priority=0,
        delivery_mode=2,
        exchange=PIDBOX_EXCHANGE,
        routing_key="",
    )


def parse_control_request(env: Envelope, accept: Collection[str]) -> ControlRequest:
    """Read a broadcast request; raises DecodeError when it is not one."""
    body = loads(env.body, env.content_type, env.content_encoding, accept)
    if not isinstance(body, dict) or not isinstance(body.get("method"), str):
        raise DecodeError("control message has no 'method'")
    arguments = body.get("arguments") or {}
    destination = body.get("destination")
    if not isinstance(arguments, dict):
        raise DecodeError("control message 'arguments' is not an object")
    if destination is not None and not isinstance(destination, (list, tuple)):
        raise DecodeError("control message 'destination' is not a list")
    reply = body.get("reply_to")
    reply_to = reply_exchange = None
    if isinstance(reply, dict):
        reply_to = reply.get("routing_key")
        reply_exchange = reply.get("exchange")
    clock = env.headers.get("clock")
    expires = env.headers.get("expires")
    return ControlRequest(
        method=body["method"],
        arguments=arguments,
        destination=list(destination) if destination is not None else None,
        pattern=body.get("pattern"),
        matcher=body.get("matcher"),
        ticket=body.get("ticket"),
        reply_to=reply_to if isinstance(reply_to, str) else None,
        reply_exchange=reply_exchange if isinstance(reply_exchange, str) else PIDBOX_REPLY_EXCHANGE,
        clock=clock if isinstance(clock, int) else None,
        expires=float(expires) if isinstance(expires, (int, float)) else None,
    )


def control_reply_envelope(
    nodename: str,
    value: Any,
    *,
    ticket: str | None,
    reply_to: str,
    clock: int | None = None,
    exchange: str = PIDBOX_REPLY_EXCHANGE,
    serializer: str = "json",
    exact: bool = False,
) -> Envelope:
    """A worker's reply ``{nodename: value}`` to client ``reply_to`` (its oid)."""
    headers: dict[str, Any] = {"ticket": ticket}
    if clock is not None:
        headers["clock"] = clock
    body, content_type, content_encoding = dumps({nodename: value}, serializer, exact=exact)
    return Envelope(
        body=body,
        content_type=content_type,
        content_encoding=content_encoding,
        headers=headers,
        priority=0,
        delivery_mode=1,
        exchange=exchange,
        routing_key=reply_to,
    )


def parse_control_reply(env: Envelope, accept: Collection[str]) -> ControlReply:
    """Read a reply; ``replies`` maps node names to their answers."""
    body = loads(env.body, env.content_type, env.content_encoding, accept)
    if not isinstance(body, dict):
        raise DecodeError("control reply body is not an object")
    ticket = env.headers.get("ticket")
    clock = env.headers.get("clock")
    return ControlReply(
        ticket=ticket if isinstance(ticket, str) else None,
        replies=body,
        clock=clock if isinstance(clock, int) else None,
    )


def merge_replies(replies: Sequence[ControlReply] | Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Collect several replies into one ``{nodename: answer}`` dict."""
    merged: dict[str, Any] = {}
    for reply in replies:
        merged.update(reply.replies if isinstance(reply, ControlReply) else reply)
    return merged
