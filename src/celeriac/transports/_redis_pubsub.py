"""Pub/sub pieces of the Redis transport: the idle-consumer wake-up and broadcasts.

Both hold one dedicated pub/sub connection and survive Redis restarts: redis-py
re-subscribes on reconnect, and because messages sent while disconnected are
gone, the wake listener wakes its waiters after every failure so they poll.

Listening is a blocking read, so the client's ``socket_timeout`` does not apply
to it; :func:`next_message` bounds it instead: a connection silent for
:data:`PUBSUB_IDLE` seconds is sent a ``PING``, and one that does not answer
within the socket timeout counts as lost (a stopped server or a dead peer
would otherwise keep a listener waiting forever).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

import redis.asyncio
import redis.asyncio.client
import redis.exceptions

from celeriac.errors import DecodeError
from celeriac.protocol.kombu_json import decode_element
from celeriac.transports import _virtual
from celeriac.transports._redis_conn import RedisTarget
from celeriac.transports._redis_support import raise_if_cancelled
from celeriac.transports.base import OnBroadcast

__all__ = ["PUBSUB_IDLE", "WakeListener", "drop_connection", "next_message", "subscribe_loop"]

log = logging.getLogger("celeriac.transports.redis")

#: Seconds of silence after which a pub/sub connection must prove it is alive.
PUBSUB_IDLE = 15.0


async def next_message(
    pubsub: redis.asyncio.client.PubSub,
    *,
    ignore_subscribe_messages: bool = False,
    idle: float = PUBSUB_IDLE,
) -> dict[str, Any] | None:
    """The next pub/sub message (a ``pong`` counts).

    Raises redis-py's ``TimeoutError`` when nothing arrived for ``idle`` seconds
    and a ``PING`` then got no answer within the connection's socket timeout
    (with no socket timeout, ``None`` is returned after ``idle`` seconds).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + idle
    pinged = False
    while True:
        raise_if_cancelled()
        remaining = deadline - loop.time()
        if remaining <= 0:
            answer_within = pubsub.connection_pool.connection_kwargs.get("socket_timeout")
            if pinged:
                raise redis.exceptions.TimeoutError(
                    f"pub/sub connection silent for {idle:.0f}s and no answer to PING within "
                    f"{answer_within}s"
                )
            if answer_within is None:
                return None
            await pubsub.ping()
            pinged = True
            deadline = loop.time() + float(answer_within)
            continue
        message: dict[str, Any] | None = await pubsub.get_message(
            ignore_subscribe_messages=ignore_subscribe_messages, timeout=remaining
        )
        if message is not None:
            return message


async def drop_connection(pubsub: redis.asyncio.client.PubSub) -> None:
    """Close a pub/sub connection after an error so the next read reconnects.

    redis-py (8.x) leaves a connection the server closed marked as connected;
    every later read fails again. Once disconnected, the next read connects
    and re-subscribes to every channel and pattern.
    """
    connection = pubsub.connection
    if connection is not None:
        with contextlib.suppress(redis.exceptions.RedisError, OSError):
            await connection.disconnect()


class WakeListener:
    """Sets an event whenever a watched wake channel gets a message.

    A fetcher calls :meth:`clear` *before* it looks at the lists and
    :meth:`wait` after it found them empty, so a push that lands in between is
    never missed: its wake-up arrives after the clear.

    With ``push_channel``, messages on that channel (messages pushed to this
    consumer) go to ``on_push`` and set the event too. :attr:`generation` counts
    the times the connection came back (re-subscribed) after a failure: pushes
    announced meanwhile are lost and must be read back from Redis.
    """

    def __init__(
        self,
        client: redis.asyncio.Redis,
        target: RedisTarget,
        push_channel: str | None = None,
        on_push: Callable[[bytes], object] | None = None,
    ) -> None:
        self._client = client
        self._target = target
        self._pubsub: redis.asyncio.client.PubSub | None = None
        self._channels: set[str] = set()
        self._event = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        self._push_channel = push_channel.encode() if push_channel else None
        self._on_push = on_push
        self._lost = False
        self._lists_woken = False
        self.generation = 0
        self.push_ready = asyncio.Event()

    async def watch(self, channels: Sequence[str]) -> None:
        """Subscribe to ``channels`` not yet watched (failures fall back to polling)."""
        new = [name for name in channels if name not in self._channels]
        if not new:
            return
        if self._pubsub is None:
            self._pubsub = self._client.pubsub()
        try:
            await self._pubsub.subscribe(*new)
        except (redis.exceptions.RedisError, OSError) as exc:
            log.warning("cannot subscribe to wake-ups at %s, polling instead: %s",
                        self._target.masked, exc)  # fmt: skip
            return
        self._channels.update(new)
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._read(), name="celeriac-redis-wake")

    def clear(self) -> bool:
        """Forget earlier wake-ups (call before looking at the lists); True if one of
        them said a list got messages (a wake-up channel, or a lost connection),
        not only that messages were pushed to this consumer."""
        self._event.clear()
        lists, self._lists_woken = self._lists_woken, False
        return lists

    def set(self) -> None:
        """Wake the waiter (something to take arrived by another way)."""
        self._event.set()

    async def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for a wake-up; True if one came.

        Awaited in the caller's own task (``asyncio.timeout``, not ``wait_for``):
        a wake-up resumes the fetch in the next loop turn, with no task to start
        and finish per wait.
        """
        if self._event.is_set():
            return True
        try:
            async with asyncio.timeout(timeout):
                await self._event.wait()
        except TimeoutError:
            return self._event.is_set()  # set in the very turn the time ran out
        return True

    async def _read(self) -> None:
        assert self._pubsub is not None
        failures = 0
        while True:
            raise_if_cancelled()
            try:
                message = await next_message(self._pubsub)
                failures = 0
            except (redis.exceptions.RedisError, OSError) as exc:
                failures += 1
                self._lost = True
                self.push_ready.clear()
                self._lists_woken = True
                self._event.set()  # wake-ups may have been lost: let waiters poll
                await drop_connection(self._pubsub)
                pause = min(0.05 * 2**failures, 2.0)
                if failures == 1:
                    log.warning("wake-up channel to %s lost, reconnecting: %s",
                                self._target.masked, exc)  # fmt: skip
                await asyncio.sleep(pause)
                continue
            if message is None:
                continue
            kind = message.get("type")
            if kind == "message":
                if message["channel"] != self._push_channel:
                    self._lists_woken = True
                elif self._on_push is not None:
                    self._on_push(message["data"])
                self._event.set()
            elif kind == "subscribe" and message["channel"] == self._push_channel:
                if self._lost:
                    self._lost = False
                    self.generation += 1
                    self._event.set()
                self.push_ready.set()

    async def close(self) -> None:
        """Stop reading and close the pub/sub connection."""
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
            self._reader = None
        if self._pubsub is not None:
            with contextlib.suppress(redis.exceptions.RedisError, OSError):
                await self._pubsub.aclose()  # type: ignore[no-untyped-call]
            self._pubsub = None


async def subscribe_loop(
    client: redis.asyncio.Redis,
    target: RedisTarget,
    channels: Sequence[str],
    globs: Sequence[str],
    topic_prefix: str,
    patterns: Sequence[str],
    handler: OnBroadcast,
) -> None:
    """Feed broadcasts to ``handler`` until cancelled.

    ``channels`` are SUBSCRIBEd (fanout), ``globs`` PSUBSCRIBEd (topic). A
    Redis glob is coarser than an AMQP topic pattern, so topic messages are
    checked again against ``patterns`` on the routing key (the channel name
    after ``topic_prefix``).
    """
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    failures = 0
    try:
        while True:
            raise_if_cancelled()
            try:
                if not pubsub.subscribed:
                    if channels:
                        await pubsub.subscribe(*channels)
                    if globs:
                        await pubsub.psubscribe(*globs)
                message = await next_message(pubsub, ignore_subscribe_messages=True)
                failures = 0
            except (redis.exceptions.RedisError, OSError) as exc:
                failures += 1
                await drop_connection(pubsub)
                if failures == 1:
                    log.warning("broadcast subscription to %s lost, reconnecting: %s",
                                target.masked, exc)  # fmt: skip
                await asyncio.sleep(min(0.05 * 2**failures, 2.0))
                continue
            if message is None or message.get("type") not in ("message", "pmessage"):
                continue
            if topic_prefix:
                channel = message["channel"]
                name = channel.decode() if isinstance(channel, bytes) else str(channel)
                if not _virtual.matches_any(patterns, name[len(topic_prefix) :]):
                    continue
            try:
                envelope = decode_element(message["data"])
            except DecodeError as exc:
                log.error("undecodable broadcast on %r dropped: %s", message["channel"], exc)
                continue
            await _virtual.call_handler(handler, envelope)
    finally:
        with contextlib.suppress(redis.exceptions.RedisError, OSError):
            await pubsub.aclose()  # type: ignore[no-untyped-call]
