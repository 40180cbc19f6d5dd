"""Envelope <-> AMQP 0-9-1 basic properties, without importing an AMQP library.

Celery publishes task messages with these properties (captured from RabbitMQ)::

    content_type, content_encoding, headers, delivery_mode (2), priority (0),
    correlation_id (task id), reply_to (client oid), expiration ("300000" ms)

The body travels raw (no base64). An AMQP transport passes the dict from
:func:`to_amqp_properties` to its client library and builds envelopes from
received messages with :func:`from_amqp`; header values that libraries hand back
as ``bytes`` are turned into ``str`` so that parsing sees the same types as
over Redis.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from celeriac.protocol.envelope import Envelope

__all__ = ["AMQP_PROPERTY_NAMES", "from_amqp", "to_amqp_properties"]

AMQP_PROPERTY_NAMES = (
    "content_type",
    "content_encoding",
    "headers",
    "delivery_mode",
    "priority",
    "correlation_id",
    "reply_to",
    "expiration",
)


def to_amqp_properties(env: Envelope) -> dict[str, Any]:
    """The basic properties of ``env``; properties that are None are left out."""
    props: dict[str, Any] = {
        "content_type": env.content_type,
        "content_encoding": env.content_encoding,
        "headers": dict(env.headers),
        "delivery_mode": env.delivery_mode,
    }
    if env.priority is not None:
        props["priority"] = env.priority
    if env.correlation_id is not None:
        props["correlation_id"] = env.correlation_id
    if env.reply_to is not None:
        props["reply_to"] = env.reply_to
    if env.expiration is not None:
        props["expiration"] = env.expiration
    return props


_AS_IS = frozenset({str, int, float, bool, type(None)})


def _plain(value: Any) -> Any:
    kind = type(value)
    if kind in _AS_IS:
        return value
    if kind is dict:  # the usual headers table: only walk values that need it
        return {
            (key if type(key) is str else str(_plain(key))):
                (item if type(item) in _AS_IS else _plain(item))
            for key, item in value.items()
        }
    if isinstance(value, (bytes, bytearray)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return bytes(value)
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, Mapping):
        return {str(_plain(key)): _plain(item) for key, item in value.items()}
    return value


def _opt_str(value: Any) -> str | None:
    if value is None or type(value) is str:
        return value
    plain = _plain(value)
    return None if plain is None else str(plain)


def from_amqp(
    body: bytes,
    properties: Mapping[str, Any],
    *,
    exchange: str = "",
    routing_key: str = "",
    delivery_tag: str = "",
) -> Envelope:
    """Build an envelope from a received AMQP message's body and properties."""
    headers = properties.get("headers") or {}
    delivery_mode = properties.get("delivery_mode")
    expiration = properties.get("expiration")
    return Envelope(
        body=bytes(body),
        content_type=_opt_str(properties.get("content_type")) or "",
        content_encoding=_opt_str(properties.get("content_encoding")) or "",
        headers=_plain(headers),
        correlation_id=_opt_str(properties.get("correlation_id")),
        reply_to=_opt_str(properties.get("reply_to")),
        priority=properties.get("priority"),
        delivery_mode=int(delivery_mode) if delivery_mode is not None else 2,
        expiration=_opt_str(expiration),
        exchange=exchange,
        routing_key=routing_key,
        delivery_tag=delivery_tag,
    )
