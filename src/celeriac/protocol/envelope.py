"""The transport-neutral message envelope: what every transport moves.

An :class:`Envelope` is the AMQP-shaped view of a message: a serialized body
(opaque bytes), its content type and encoding, application headers and the few
message properties Celery uses. Transports move envelopes and never look inside
``body``. How an envelope is laid out on a particular wire (kombu's JSON element
on Redis, AMQP basic properties) is encoded in this package too
(:mod:`celeriac.protocol.kombu_json`), so no transport knows field names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = ["Envelope"]

_EMPTY: Mapping[str, Any] = {}


@dataclass(frozen=True, slots=True)
class Envelope:
    """One message as it travels through a broker.

    ``exchange`` and ``routing_key`` are where it was published to (Celery puts
    task messages on the default exchange ``""`` with the queue name as key).
    ``delivery_tag`` is the publisher-made id kombu's Redis transport uses; it is
    empty for transports that number deliveries themselves.
    ``extra_properties`` carries message properties that have no field here
    (kombu passes some through, e.g. ``origin`` on retried messages), so that
    re-publishing a message keeps them.
    """

    body: bytes
    content_type: str = "application/json"
    content_encoding: str = "utf-8"
    headers: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    correlation_id: str | None = None
    reply_to: str | None = None
    priority: int | None = 0
    delivery_mode: int = 2
    expiration: str | None = None
    exchange: str = ""
    routing_key: str = ""
    delivery_tag: str = ""
    extra_properties: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)

    def with_route(self, exchange: str, routing_key: str) -> Envelope:
        """Return a copy addressed to ``exchange``/``routing_key``."""
        return replace(self, exchange=exchange, routing_key=routing_key)
