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
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from types import MappingProxyType
from typing import Any

import orjson

from celeriac.errors import DecodeError
from celeriac.protocol._ids import uuid4_str
from celeriac.protocol.envelope import Envelope
from celeriac.protocol.serializers import (
    json_dumps,
    json_dumps_exact,
    json_dumps_fast,
    json_loads,
)

__all__ = [
    "ElementTemplate",
    "decode_element",
    "decode_unacked",
    "element_template",
    "encode_element",
    "encode_unacked",
]

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


#: Shared, read-only: the "no properties beyond the modelled ones" value.
_NO_PROPERTIES: Mapping[str, Any] = MappingProxyType({})


# A decoded Envelope is built through its slots' setters (~0.7 us less per message
# than the frozen dataclass's __init__, which goes through object.__setattr__ for
# each field). Checked against the dataclass here: should Envelope's fields
# change, decoding falls back to calling Envelope() with every field named.
_ENVELOPE_FIELDS = (
    "body", "content_type", "content_encoding", "headers", "correlation_id", "reply_to",
    "priority", "delivery_mode", "expiration", "exchange", "routing_key", "delivery_tag",
    "extra_properties",
)
_FAST_ENVELOPE = tuple(f.name for f in dataclasses.fields(Envelope)) == _ENVELOPE_FIELDS


def _slot_setter(name: str) -> Callable[[Envelope, Any], None]:
    """The setter of the slot ``name`` (a stand-in, never called, when the fields differ)."""
    if not _FAST_ENVELOPE:
        return _never
    setter: Callable[[Envelope, Any], None] = getattr(Envelope, name).__set__
    return setter


def _never(env: Envelope, value: Any) -> None:
    raise AssertionError("Envelope's fields changed: _make_envelope builds it by name")


(
    _set_body, _set_content_type, _set_content_encoding, _set_headers, _set_correlation_id,
    _set_reply_to, _set_priority, _set_delivery_mode, _set_expiration, _set_exchange,
    _set_routing_key, _set_delivery_tag, _set_extra_properties,
) = (_slot_setter(name) for name in _ENVELOPE_FIELDS)


def _make_envelope(
    body: bytes, content_type: str, content_encoding: str, headers: Mapping[str, Any],
    correlation_id: str | None, reply_to: str | None, priority: int, delivery_mode: int,
    expiration: str | None, exchange: str, routing_key: str, delivery_tag: str,
    extra_properties: Mapping[str, Any],
) -> Envelope:
    """``Envelope(...)`` with every field given, as fast as the class allows."""
    if not _FAST_ENVELOPE:
        return Envelope(
            body=body, content_type=content_type, content_encoding=content_encoding,
            headers=headers, correlation_id=correlation_id, reply_to=reply_to,
            priority=priority, delivery_mode=delivery_mode, expiration=expiration,
            exchange=exchange, routing_key=routing_key, delivery_tag=delivery_tag,
            extra_properties=extra_properties,
        )
    env = object.__new__(Envelope)
    _set_body(env, body)
    _set_content_type(env, content_type)
    _set_content_encoding(env, content_encoding)
    _set_headers(env, headers)
    _set_correlation_id(env, correlation_id)
    _set_reply_to(env, reply_to)
    _set_priority(env, priority)
    _set_delivery_mode(env, delivery_mode)
    _set_expiration(env, expiration)
    _set_exchange(env, exchange)
    _set_routing_key(env, routing_key)
    _set_delivery_tag(env, delivery_tag)
    _set_extra_properties(env, extra_properties)
    return env


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


# Slot kinds of an element template; headers are _HEADER + their index in ``varying``.
_BODY, _CORRELATION, _TAG, _HEADER = 0, 1, 2, 3


class ElementTemplate:
    """kombu's element of envelopes that differ from one prototype only in their
    body, correlation id, delivery tag and the values of a few headers.

    Made by :func:`element_template`: the prototype's element cut around those
    places, so rendering one is a join of constant pieces and the encoded
    values, byte for byte what :func:`encode_element` writes for the full
    envelope (``None`` when a value would make that function use the stdlib
    encoder: the caller encodes the full envelope then).
    """

    __slots__ = ("_pieces", "_slots")

    def __init__(self, pieces: list[bytes], order: list[int]) -> None:
        self._pieces = [b""] * (2 * len(order) + 1)
        self._pieces[0::2] = pieces
        self._slots = tuple((2 * i + 1, kind) for i, kind in enumerate(order))

    def render(self, correlation_id: str, body: bytes, values: Sequence[Any],
               tag: str) -> bytes | None:
        """The element with these values in their places (``values`` in ``varying`` order)."""
        out = self._pieces.copy()
        dumps = orjson.dumps
        try:
            id_piece = dumps(correlation_id)
            for at, kind in self._slots:
                if kind >= _HEADER:
                    value = values[kind - _HEADER]
                    if value is correlation_id:
                        out[at] = id_piece
                    elif type(value) is str:
                        out[at] = dumps(value)
                    else:
                        piece = json_dumps_fast(value)
                        if piece is None:
                            return None
                        out[at] = piece
                elif kind == _BODY:
                    out[at] = b'"%s"' % base64.b64encode(body)
                elif kind == _CORRELATION:
                    out[at] = id_piece
                else:
                    out[at] = b'"%s"' % tag.encode("ascii")
        except (TypeError, UnicodeEncodeError):  # lone surrogates, a non-ASCII tag
            return None
        return b"".join(out)


def element_template(prototype: Envelope, varying: Sequence[str]) -> ElementTemplate | None:
    """The :class:`ElementTemplate` of ``prototype`` with the headers ``varying``
    left open, or ``None`` when its element cannot be cut that way (a header
    missing, or a prototype :func:`encode_element` would write with the stdlib
    encoder, or one that already has its delivery tag)."""
    if prototype.delivery_tag or prototype.correlation_id is None:
        return None
    token = uuid4_str().replace("-", "")
    marks = [f"{token}{kind}" for kind in range(_HEADER + len(varying))]
    headers = dict(prototype.headers)
    for index, name in enumerate(varying):
        if name not in headers:
            return None
        headers[name] = marks[_HEADER + index]
    doc = _element_dict(replace(prototype, headers=headers, correlation_id=marks[_CORRELATION],
                                delivery_tag=marks[_TAG]))
    doc["body"] = marks[_BODY]
    raw = json_dumps_fast(doc)
    if raw is None:
        return None
    found: list[tuple[int, int, int]] = []
    for kind, mark in enumerate(marks):
        quoted = b'"%s"' % mark.encode("ascii")
        if raw.count(quoted) != 1:
            return None
        found.append((raw.index(quoted), len(quoted), kind))
    found.sort()
    pieces: list[bytes] = []
    order: list[int] = []
    pos = 0
    for start, length, kind in found:
        pieces.append(raw[pos:start])
        order.append(kind)
        pos = start + length
    pieces.append(raw[pos:])
    return ElementTemplate(pieces, order)


def _parse_json(raw: bytes | str, what: str) -> Any:
    # json_loads, not bare orjson: headers may hold big ints, Infinity or
    # kombu's type markers, which kombu itself reads back.
    try:
        return json_loads(raw)
    except DecodeError as exc:
        raise DecodeError(f"{what} is not JSON: {exc}") from exc


def _text(value: Any) -> str:
    """A property as text: ``str`` values as they are, ``None``/empty as ``""``."""
    if type(value) is str:
        return value
    return str(value) if value else ""


def _envelope_from(obj: Any, what: str) -> Envelope:
    # Runs once per fetched message: plain dict look-ups, no copies in the
    # common case (no properties beyond the modelled ones).
    if type(obj) is not dict or "body" not in obj:
        raise DecodeError(f"{what} is not a kombu envelope (a JSON object with a 'body' key)")
    properties = obj.get("properties") or {}
    headers = obj.get("headers") or {}
    if type(properties) is not dict or type(headers) is not dict:
        raise DecodeError(f"{what} has 'properties' or 'headers' that are not JSON objects")
    body = obj["body"]
    if type(body) is not str:
        raise DecodeError(f"{what} has a 'body' that is not a string")
    get = properties.get
    body_encoding = get("body_encoding")
    if body_encoding == "base64":
        try:
            body_bytes = binascii.a2b_base64(body, strict_mode=True)
        except (binascii.Error, ValueError) as exc:
            raise DecodeError(f"{what} has a body that is not valid base64: {exc}") from exc
    elif body_encoding in (None, ""):
        body_bytes = body.encode("utf-8")
    else:
        raise DecodeError(f"{what} has unsupported body_encoding {body_encoding!r}")
    info = get("delivery_info") or {}
    if type(info) is not dict:
        raise DecodeError(f"{what} has a 'delivery_info' that is not a JSON object")
    extra = (
        _NO_PROPERTIES if properties.keys() <= _MODELLED
        else {k: v for k, v in properties.items() if k not in _MODELLED}
    )
    priority = get("priority", 0)
    delivery_mode = get("delivery_mode", 2)
    expiration = get("expiration")
    return _make_envelope(
        body_bytes,
        _text(obj.get("content-type")),
        _text(obj.get("content-encoding")),
        headers,
        get("correlation_id"),
        get("reply_to"),
        priority if type(priority) is int else 0,
        delivery_mode if type(delivery_mode) is int else 2,
        None if expiration is None else str(expiration),
        _text(info.get("exchange")),
        _text(info.get("routing_key")),
        _text(get("delivery_tag")),
        extra,
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
