"""Exchange and binding emulation for brokers that only have queues.

AMQP routes a message published to ``exchange``/``routing_key`` through the
bindings declared on that exchange. Brokers without exchanges (memory, SQLite,
Redis) emulate that here, once, as pure functions over :class:`Binding` values;
each transport only decides where it keeps its bindings.

Rules:

* the default exchange ``""`` routes to the queue named by the routing key;
* ``direct``: every queue bound with exactly the routing key;
* ``fanout``: every bound queue, whatever the key;
* ``topic``: every queue whose binding pattern matches the key, where words are
  separated by ``.``, ``*`` matches exactly one word and ``#`` zero or more;
* an exchange with no bindings at all behaves like the default exchange, so a
  message published before any consumer declared its queue is not dropped.
  An exchange that has bindings but none that match gives ``[]`` (unroutable);
  the transport decides what to do with it (ours dead-letter it).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Iterable, Sequence
from functools import lru_cache

from celeriac.errors import ConfigurationError
from celeriac.protocol.envelope import Envelope
from celeriac.transports.base import Binding, OnBroadcast, QueueSpec

__all__ = [
    "EXCHANGE_TYPES",
    "bindings_for",
    "call_handler",
    "matches_any",
    "route",
    "topic_matches",
    "unroutable_reason",
]

log = logging.getLogger(__name__)

#: Exchange types the emulation understands.
EXCHANGE_TYPES = ("direct", "fanout", "topic")


def bindings_for(specs: Iterable[QueueSpec]) -> list[Binding]:
    """The bindings a declaration of ``specs`` creates (none for the default exchange).

    Raises :class:`~celeriac.errors.ConfigurationError` for an exchange type
    that cannot be emulated (``headers``).
    """
    out: list[Binding] = []
    for spec in specs:
        if not spec.exchange:
            continue
        if spec.exchange_type not in EXCHANGE_TYPES:
            raise ConfigurationError(
                f"queue {spec.name!r}: exchange type {spec.exchange_type!r} cannot be "
                f"emulated on this broker; use one of {', '.join(EXCHANGE_TYPES)}"
            )
        out.append(Binding(spec.exchange, spec.routing_key, spec.name, spec.exchange_type))
    return out


def route(bindings: Iterable[Binding], exchange: str, routing_key: str) -> list[str]:
    """Queue names a message to ``exchange``/``routing_key`` goes to, without duplicates.

    ``bindings`` may hold bindings of other exchanges; they are ignored.
    """
    if not exchange:
        return [routing_key]
    queues: list[str] = []
    bound = False
    for binding in bindings:
        if binding.exchange != exchange:
            continue
        bound = True
        if _binding_matches(binding, routing_key) and binding.queue not in queues:
            queues.append(binding.queue)
    if not bound:
        return [routing_key] if routing_key else []
    return queues


def _binding_matches(binding: Binding, routing_key: str) -> bool:
    if binding.exchange_type == "fanout":
        return True
    if binding.exchange_type == "topic":
        return topic_matches(binding.routing_key, routing_key)
    return binding.routing_key == routing_key


def matches_any(patterns: Sequence[str], routing_key: str) -> bool:
    """True if ``routing_key`` matches one of the topic ``patterns`` (or there are none)."""
    if not patterns:
        return True
    return any(topic_matches(pattern, routing_key) for pattern in patterns)


@lru_cache(maxsize=1024)
def topic_matches(pattern: str, routing_key: str) -> bool:
    """AMQP topic matching: ``*`` is exactly one word, ``#`` is zero or more words."""
    return _match_words(tuple(pattern.split(".")), tuple(routing_key.split(".")))


def _match_words(pattern: tuple[str, ...], words: tuple[str, ...]) -> bool:
    # reachable[j]: the pattern prefix consumed so far can match words[:j].
    reachable = [True] + [False] * len(words)
    for part in pattern:
        nxt = [False] * (len(words) + 1)
        if part == "#":
            seen = False
            for j in range(len(words) + 1):
                seen = seen or reachable[j]
                nxt[j] = seen
        else:
            for j in range(len(words)):
                if reachable[j] and (part == "*" or part == words[j]):
                    nxt[j + 1] = True
        reachable = nxt
    return reachable[len(words)]


def unroutable_reason(envelope: Envelope) -> str:
    """The dead-letter reason of a message that no binding routes anywhere."""
    return (
        f"unroutable: no queue bound to exchange {envelope.exchange!r} "
        f"for routing key {envelope.routing_key!r}"
    )


async def call_handler(handler: OnBroadcast, envelope: Envelope) -> None:
    """Run one broadcast handler; its errors are logged so that a subscription survives."""
    try:
        outcome = handler(envelope)
        if inspect.isawaitable(outcome):
            await outcome
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("broadcast handler %r failed", handler)
