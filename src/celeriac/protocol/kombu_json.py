"""kombu's JSON envelope: what a message looks like inside Redis.

kombu's Redis transport stores each message as one JSON string (list element,
pub/sub payload, ``unacked`` hash value)::

    {"body": "<base64>", "content-encoding": "utf-8", "content-type": "application/json",
     "headers": {...},
     "properties": {"correlation_id": ..., "reply_to": ..., "delivery_mode": 2,
                    "delivery_info": {"exchange": "", "routing_key": "celery"},
                    "priority": 0, "body_encoding": "base64", "delivery_tag": "<uuid4>"}}

:func:`encode_element` writes kombu's keys in kombu's order as compact orjson
JSON (kombu reads it with ``json.loads``: the bytes differ, the values do not);
with ``exact=True`` it writes exactly kombu's bytes (``", "``/``": "``
separators, ASCII escapes) so captured Celery elements re-encode byte for byte.
:func:`decode_element` accepts any key order and extra keys. Properties that
:class:`Envelope` does not model (a retried Celery message carries ``origin``)
travel in ``Envelope.extra_properties`` and are written back where kombu puts
them, after ``reply_to``.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from celeriac.errors import DecodeError
from celeriac.protocol._ids import uuid4_str
from celeriac.protocol.envelope import Envelope
from celeriac.protocol.serializers import json_dumps, json_dumps_exact, json_loads

__all__ = ["decode_element", "decode_unacked", "encode_element", "encode_unacked"]

# Properties with a field of their own on Envelope (everything else is "extra").
_MODELLED = frozenset(
    {
        "correlation_id",
        "reply_to",
        "delivery_mode",
        "expiration",
        "delivery_info",
        "priority",
        "body_encoding",
        "delivery_tag",
    }
)


def _element_dict(env: Envelope) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    if env.correlation_id is not None:
        properties["correlation_id"] = env.correlation_id
    if env.reply_to is not None:
        properties["reply_to"] = env.reply_to
    properties.update(env.extra_properties)
    properties["delivery_mode"] = env.delivery_mode
    if env.expiration is not None:
        properties["expiration"] = env.expiration
    properties["delivery_info"] = {"exchange": env.exchange, "routing_key": env.routing_key}
    properties["priority"] = env.priority if env.priority is not None else 0
    properties["body_encoding"] = "base64"
    properties["delivery_tag"] = env.delivery_tag or uuid4_str()
    return {
        "body": base64.b64encode(env.body).decode("ascii"),
        "content-encoding": env.content_encoding,
        "content-type": env.content_type,
        "headers": dict(env.headers),
        "properties": properties,
    }


def encode_element(env: Envelope, *, exact: bool = False) -> bytes:
    """Encode an envelope as kombu's Redis list element (bytes).

    A missing ``delivery_tag`` gets a fresh uuid4, as kombu's publisher does.
    ``exact=True`` writes kombu's own bytes (slower; for golden comparisons).
    """
    return (json_dumps_exact if exact else json_dumps)(_element_dict(env))


def encode_unacked(env: Envelope, exchange: str, routing_key: str, *, exact: bool = False) -> bytes:
    """Encode the ``unacked`` hash value: ``[<element>, exchange, routing_key]``."""
    return (json_dumps_exact if exact else json_dumps)([_element_dict(env), exchange, routing_key])


def _parse_json(raw: bytes | str, what: str) -> Any:
    # json_loads, not bare orjson: headers may hold big ints, Infinity or
    # kombu's type markers, which kombu itself reads back.
    try:
        return json_loads(raw)
    except DecodeError as exc:
        raise DecodeError(f"{what} is not JSON: {exc}") from exc


def _envelope_from(obj: Any, what: str) -> Envelope:
    if not isinstance(obj, dict) or "body" not in obj:
        raise DecodeError(f"{what} is not a kombu envelope (a JSON object with a 'body' key)")
    properties = obj.get("properties") or {}
    headers = obj.get("headers") or {}
    if not isinstance(properties, dict) or not isinstance(headers, dict):
        raise DecodeError(f"{what} has 'properties' or 'headers' that are not JSON objects")
    body = obj["body"]
    if not isinstance(body, str):
        raise DecodeError(f"{what} has a 'body' that is not a string")
    body_encoding = properties.get("body_encoding")
    if body_encoding == "base64":
        try:
            body_bytes = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise DecodeError(f"{what} has a body that is not valid base64: {exc}") from exc
    elif body_encoding in (None, ""):
        body_bytes = body.encode("utf-8")
    else:
        raise DecodeError(f"{what} has unsupported body_encoding {body_encoding!r}")
    info = properties.get("delivery_info") or {}
    if not isinstance(info, dict):
        raise DecodeError(f"{what} has a 'delivery_info' that is not a JSON object")
    extra = {k: v for k, v in properties.items() if k not in _MODELLED}
    priority = properties.get("priority", 0)
    delivery_mode = properties.get("delivery_mode", 2)
    expiration = properties.get("expiration")
    return Envelope(
        body=body_bytes,
        content_type=str(obj.get("content-type") or ""),
        content_encoding=str(obj.get("content-encoding") or ""),
        headers=headers,
        correlation_id=properties.get("correlation_id"),
        reply_to=properties.get("reply_to"),
        priority=priority if isinstance(priority, int) else 0,
        delivery_mode=delivery_mode if isinstance(delivery_mode, int) else 2,
        expiration=None if expiration is None else str(expiration),
        exchange=str(info.get("exchange") or ""),
        routing_key=str(info.get("routing_key") or ""),
        delivery_tag=str(properties.get("delivery_tag") or ""),
        extra_properties=extra,
    )


def decode_element(raw: bytes | str) -> Envelope:
    """Decode a kombu Redis element into an :class:`Envelope`.

    Raises :class:`~celeriac.errors.DecodeError` saying what is wrong: not JSON,
    not an envelope, or a body that is not valid base64.
    """
    return _envelope_from(_parse_json(raw, "Redis message"), "Redis message")


def decode_unacked(raw: bytes | str) -> tuple[Envelope, str, str]:
    """Decode an ``unacked`` hash value into ``(envelope, exchange, routing_key)``."""
    obj = _parse_json(raw, "unacked entry")
    if not isinstance(obj, list) or len(obj) != 3:
        raise DecodeError("unacked entry is not a [envelope, exchange, routing_key] list")
    element, exchange, routing_key = obj
    if isinstance(element, str):  # older kombu stored the element as a string
        element = _parse_json(element, "unacked entry")
    if not isinstance(exchange, str) or not isinstance(routing_key, str):
        raise DecodeError("unacked entry has a non-string exchange or routing key")
    return _envelope_from(element, "unacked entry"), exchange, routing_key
