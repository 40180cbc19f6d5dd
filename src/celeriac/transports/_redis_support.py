"""Small pure pieces of the Redis transport: tags, dead-letter records, retry policy.

Kept apart from :mod:`celeriac.transports.redis` so that module reads as the
I/O flow only. Nothing here talks to Redis.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
import redis.exceptions

from celeriac.errors import DecodeError
from celeriac.protocol.envelope import Envelope
from celeriac.protocol.kombu_json import decode_element
from celeriac.transports._redis_conn import CONNECTION_ERRORS, RedisTarget, translate_error
from celeriac.transports.base import raise_if_cancelled

__all__ = [
    "RedisTag",
    "RetryPolicy",
    "dead_record",
    "raise_if_cancelled",
    "read_dead_record",
    "retry_async",
    "retry_sync",
]

log = logging.getLogger("celeriac.transports.redis")
T = TypeVar("T")



@dataclass(frozen=True, slots=True)
class RedisTag:
    """What :class:`~celeriac.transports.base.Delivery.tag` holds for Redis.

    ``seq`` is the field in this consumer's in-flight hash, ``list_name`` the
    list (priority sub-queue included) the message came from, ``element`` its
    raw bytes (needed to dead-letter or defer it without a round trip).
    """

    seq: str
    list_name: str
    element: bytes


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Celery's publish ``retry_policy``: how often and how long to retry.

    ``max_retries=None`` retries forever. Sleeps are ``interval_start``, then
    growing by ``interval_step`` up to ``interval_max`` seconds.
    """

    enabled: bool = True
    max_retries: int | None = 3
    interval_start: float = 0.0
    interval_step: float = 0.2
    interval_max: float = 0.2

    @classmethod
    def from_options(cls, extra: Mapping[str, Any]) -> RetryPolicy:
        """Read ``retry`` and ``retry_policy`` (or the policy's keys at top level)."""
        policy: Mapping[str, Any] = extra.get("retry_policy") or extra
        max_retries = policy.get("max_retries", 3)
        return cls(
            enabled=bool(extra.get("retry", True)),
            max_retries=None if max_retries is None else int(max_retries),
            interval_start=float(policy.get("interval_start", 0.0)),
            interval_step=float(policy.get("interval_step", 0.2)),
            interval_max=float(policy.get("interval_max", 0.2)),
        )

    def sleeps(self) -> Iterator[float]:
        """The pauses between attempts; exhausted when no retry is left."""
        if not self.enabled:
            return
        pause = self.interval_start
        attempt = 0
        while self.max_retries is None or attempt < self.max_retries:
            yield min(pause, self.interval_max)
            pause += self.interval_step
            attempt += 1


def dead_record(queue: str, reason: str, element: bytes) -> bytes:
    """The dead-letter list value: a celeriac-private JSON object with the reason.

    The original element is kept verbatim when it is UTF-8 text (``element``),
    base64 otherwise (``element_b64``), so nothing is lost for a later replay.
    """
    record: dict[str, Any] = {"queue": queue, "reason": reason, "at": time.time()}
    try:
        record["element"] = element.decode("utf-8")
    except UnicodeDecodeError:
        record["element_b64"] = base64.b64encode(element).decode("ascii")
    return orjson.dumps(record)


def read_dead_record(raw: bytes | str) -> tuple[Envelope, str]:
    """Decode a dead-letter value into ``(envelope, reason)``.

    An element that is not a decodable kombu envelope comes back as an
    envelope whose ``body`` is the raw element, typed
    ``application/octet-stream``, so tools can still show it.
    """
    try:
        record = orjson.loads(raw)
        reason = str(record["reason"])
        if "element" in record:
            element = str(record["element"]).encode("utf-8")
        else:
            element = base64.b64decode(record["element_b64"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        body = raw.encode("utf-8") if isinstance(raw, str) else raw
        return Envelope(body=body, content_type="application/octet-stream"), "unreadable record"
    try:
        return decode_element(element), reason
    except DecodeError:
        return (
            Envelope(body=element, content_type="application/octet-stream",
                     content_encoding="binary"),
            reason,
        )  # fmt: skip


async def retry_async(
    policy: RetryPolicy, target: RedisTarget, doing: str, call: Callable[[], Awaitable[T]]
) -> T:
    """Run ``call``, retrying connection errors per ``policy``; then raise celeriac's error."""
    sleeps = policy.sleeps()
    while True:
        try:
            return await call()
        except (redis.exceptions.RedisError, OSError) as exc:
            pause = next(sleeps, None) if isinstance(exc, CONNECTION_ERRORS) else None
            if pause is None:
                raise translate_error(exc, target, doing) from exc
            log.warning("Redis %s failed (%s), retrying in %.2fs: %s", doing, target.masked,
                        pause, exc)  # fmt: skip
            await asyncio.sleep(pause)


def retry_sync(policy: RetryPolicy, target: RedisTarget, doing: str, call: Callable[[], T]) -> T:
    """Blocking :func:`retry_async`."""
    sleeps = policy.sleeps()
    while True:
        try:
            return call()
        except (redis.exceptions.RedisError, OSError) as exc:
            pause = next(sleeps, None) if isinstance(exc, CONNECTION_ERRORS) else None
            if pause is None:
                raise translate_error(exc, target, doing) from exc
            log.warning("Redis %s failed (%s), retrying in %.2fs: %s", doing, target.masked,
                        pause, exc)  # fmt: skip
            time.sleep(pause)
