"""RabbitMQ topology facts: Celery's exchanges and queue arguments, celeriac's dead letters.

The AMQP transport and the ``rpc://`` backend declare what Celery declares,
with the same types, durability and arguments, because RabbitMQ refuses
(``PRECONDITION_FAILED``) a second declaration of an entity that differs from
the first: a celeriac worker and a Celery client share one broker only if
they agree on every flag. Captured from Celery 5.7 on RabbitMQ 3.10::

    celery               direct  durable
    celeryev             topic   durable       queues celeryev.<uuid>: auto-delete,
                                               exclusive, x-message-ttl 5000, x-expires 60000
    celery.pidbox        fanout  transient     queues <node>.celery.pidbox: auto-delete,
                                               exclusive, x-message-ttl 300000, x-expires 10000
    reply.celery.pidbox  direct  transient
    rpc reply queue      <client oid>: durable, auto-delete, x-expires 86400000

celeriac's own dead letters go to the direct exchange ``celeriac.dlx``, into
one queue per task queue (``celeriac.dead.<queue>``, routing key = the task
queue's name), with the reason in the ``x-celeriac-reason`` header.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from celeriac.protocol.keys import (
    DEFAULT_EXCHANGE,
    EVENT_EXCHANGE,
    PIDBOX_EXCHANGE,
    PIDBOX_REPLY_EXCHANGE,
    dead_letter_key,
    event_queue,
)

__all__ = [
    "DEAD_LETTER_EXCHANGE",
    "DEAD_LETTER_REASON_HEADER",
    "DEATH_HEADER",
    "RPC_BARRIER_CONTENT_TYPE",
    "RPC_REPLY_EXPIRES_MS",
    "ExchangeFacts",
    "broadcast_queue",
    "celery_exchange",
    "dead_letter_queue",
    "exchange_facts",
    "rpc_reply_queue_arguments",
]

#: Exchange rejected messages are republished to (celeriac's, never Celery's).
DEAD_LETTER_EXCHANGE = "celeriac.dlx"
#: Header carrying why a message was set aside.
DEAD_LETTER_REASON_HEADER = "x-celeriac-reason"
#: Header RabbitMQ adds when it dead-letters a message itself (reason inside).
DEATH_HEADER = "x-death"
#: Content type of the marker an rpc client sends to its own reply queue: once it
#: comes back, every reply queued before it has been received (queues are FIFO).
RPC_BARRIER_CONTENT_TYPE = "application/x-celeriac-barrier"
#: Celery's default lifetime of an unused rpc reply queue (``result_expires``, 1 day).
RPC_REPLY_EXPIRES_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class ExchangeFacts:
    """How an exchange must be declared to match what Celery declares."""

    type: str
    durable: bool


_CELERY_EXCHANGES: dict[str, ExchangeFacts] = {
    DEFAULT_EXCHANGE: ExchangeFacts("direct", True),
    EVENT_EXCHANGE: ExchangeFacts("topic", True),
    PIDBOX_EXCHANGE: ExchangeFacts("fanout", False),
    PIDBOX_REPLY_EXCHANGE: ExchangeFacts("direct", False),
}

_BROADCAST_QUEUE_ARGS: dict[str, dict[str, Any]] = {
    EVENT_EXCHANGE: {"x-message-ttl": 5000, "x-expires": 60000},
    PIDBOX_EXCHANGE: {"x-message-ttl": 300000, "x-expires": 10000},
}


def celery_exchange(name: str) -> ExchangeFacts | None:
    """How Celery declares the exchange ``name``, or ``None`` when it is not Celery's."""
    return _CELERY_EXCHANGES.get(name)


def exchange_facts(name: str, default_type: str = "topic") -> ExchangeFacts:
    """Celery's declaration of ``name``; unknown names get ``default_type``, transient.

    A topic exchange serves both fan-out (binding ``#``) and direct-style
    (exact key) subscribers, so it is the default for broadcast exchanges
    nobody declared before.
    """
    return _CELERY_EXCHANGES.get(name, ExchangeFacts(default_type, False))


def broadcast_queue(exchange: str, unique: str) -> tuple[str, dict[str, Any]]:
    """Name and arguments of one subscriber's exclusive queue on ``exchange``.

    Event receivers get Celery's ``celeryev.<uuid>`` with its TTLs; pidbox
    subscribers get Celery's pidbox TTLs; anything else a plain private queue.
    """
    arguments = dict(_BROADCAST_QUEUE_ARGS.get(exchange, {}))
    if exchange == EVENT_EXCHANGE:
        return event_queue(unique), arguments
    return f"{unique}.{exchange}", arguments


def dead_letter_queue(queue: str) -> str:
    """Where rejected messages of ``queue`` are kept (``celeriac.dead.<queue>``)."""
    return dead_letter_key(queue)


def rpc_reply_queue_arguments(expires_seconds: float | None) -> dict[str, Any]:
    """Arguments of an rpc reply queue: ``x-expires`` from ``result_expires`` (ms)."""
    if expires_seconds is None or expires_seconds <= 0:
        return {"x-expires": RPC_REPLY_EXPIRES_MS}
    return {"x-expires": int(expires_seconds * 1000)}
