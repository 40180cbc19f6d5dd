"""Push-based waiting for Redis results: one pub/sub connection, many waiters.

A worker writes a result and ``PUBLISH``es the same string on the result key's
channel (Celery's protocol). A waiter subscribes to the channel, *then* reads
the key, so a result stored in between is never missed: whatever was stored
before the subscription took effect is seen by the read, whatever after is
pushed. No polling.

Each backend keeps one long-lived pub/sub connection per face, shared by all
concurrent waits through a small demultiplexer:

* :class:`SyncResultListener` (``AsyncResult.get()``): no helper thread. The
  waiting thread itself reads the socket (by hand, through
  :class:`~celeriac.backends._redis_push.PushConnection`: SUBSCRIBE and
  UNSUBSCRIBE are written without waiting, and one read takes every reply
  that has arrived); when several threads wait, one reads
  at a time ("leader") and hands each message to whoever waits for it through a
  condition variable. Ids subscribed early (:meth:`SyncResultListener.subscribe`
  at send time) get their results buffered as they arrive, so ``get()`` of a
  finished task only drains bytes already in the socket: no round trip. If no
  push has come within :data:`EARLY_GRACE`, the wait reads the key once, in
  case the result's PUBLISH overtook the SUBSCRIBE on its way to Redis.
* :class:`AsyncResultListener` (``await result``): one reader task; its waits
  run in the waiting task (no task per wait) and UNSUBSCRIBEs are batched too.

After a lost connection the listener subscribes again on reconnect (the async
face: redis-py does); messages sent in the gap are gone, so every waiter
re-confirms its subscription and reads the key again (a *generation* counter tells them).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import redis
import redis.asyncio
import redis.asyncio.client
import redis.exceptions

from celeriac.backends._redis_push import PushConnection
from celeriac.errors import DecodeError
from celeriac.protocol.results import ResultMeta
from celeriac.protocol.states import READY_STATES
from celeriac.transports._redis_pubsub import drop_connection, next_message

__all__ = ["AsyncResultListener", "SyncResultListener", "WaitTimedOut"]

Decode = Callable[[bytes | str, str], ResultMeta]
_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)
_UNSUBSCRIBE_BATCH = 64
#: How long a wait on an early subscription trusts the push alone before it
#: also reads the key once. Redis orders commands per connection only: in
#: practice the task's own trip through a worker puts the SUBSCRIBE first, but
#: a SUBSCRIBE held up on the network could land after the result's PUBLISH.
EARLY_GRACE = 1.0


class WaitTimedOut(Exception):
    """Internal: the deadline passed (the backend raises celeriac's TimeoutError)."""


def _ready(meta: ResultMeta | None) -> ResultMeta | None:
    return meta if meta is not None and meta.status in READY_STATES else None


class _Mailbox:
    """What both faces share: subscriptions, confirmations, buffered results."""

    def __init__(self, prefix: str, decode: Decode, max_early: int) -> None:
        self.prefix = prefix
        self.decode = decode
        self.max_early = max_early
        self.waiters: OrderedDict[str, int] = OrderedDict()  # task id -> waiting calls
        self.confirmed: set[str] = set()
        self.values: dict[str, ResultMeta] = {}
        self.generation = 0
        # Ids subscribed before their task was sent, with the connection generation
        # then: their result cannot have been published before the subscription.
        self.early: dict[str, int] = {}

    def channel(self, task_id: str) -> str:
        return self.prefix + task_id

    def ready(self, task_id: str) -> ResultMeta | None:
        return _ready(self.values.get(task_id))

    def take(self, task_id: str) -> ResultMeta | None:
        meta = self.ready(task_id)
        if meta is not None:
            self.values.pop(task_id, None)
        return meta

    def handle(self, message: dict[str, Any]) -> None:
        """One message as redis-py's pub/sub gives it (a dict)."""
        raw_channel = message.get("channel")
        channel = raw_channel.decode() if isinstance(raw_channel, bytes) else str(raw_channel)
        self.handle_reply(message.get("type"), channel, message.get("data"))

    def handle_reply(self, kind: object, channel: str, data: Any) -> None:
        """One pushed reply: ``kind`` is ``message``, ``subscribe`` or ``unsubscribe``."""
        if kind == "message" or kind == b"message":
            if channel.startswith(self.prefix):
                task_id = channel[len(self.prefix) :]
                if task_id in self.waiters:
                    with contextlib.suppress(DecodeError):
                        self.values[task_id] = self.decode(data, task_id)
        elif kind == "subscribe" or kind == b"subscribe":
            self.confirmed.add(channel)
        elif kind == "unsubscribe" or kind == b"unsubscribe":
            self.confirmed.discard(channel)

    def lost(self) -> None:
        self.generation += 1
        self.confirmed.clear()

    def evictable(self) -> list[str]:
        """Early subscriptions beyond the cap that nobody waits on (oldest first)."""
        extra = len(self.waiters) - self.max_early
        if extra <= 0:
            return []
        return [tid for tid, count in self.waiters.items() if count == 0][:extra]


def _grace_deadline(now: float, deadline: float | None) -> float:
    """When an early-subscribed wait stops trusting the push alone."""
    grace = now + EARLY_GRACE
    return grace if deadline is None else min(grace, deadline)


def _ready_or_lost(box: _Mailbox, task_id: str, generation: int) -> bool:
    """The waited-for result arrived, or the connection was lost since ``generation``."""
    return box.ready(task_id) is not None or box.generation != generation


class SyncResultListener:
    """Shared pub/sub for blocking waits (see the module docstring)."""

    def __init__(self, client: redis.Redis, prefix: str, decode: Decode, max_early: int) -> None:
        self._push = PushConnection(client)
        self._box = _Mailbox(prefix, decode, max_early)
        self._cond = threading.Condition()
        self._reading = False
        self._unsubscribe: dict[str, None] = {}  # channels to leave, in order

    def subscribe(self, task_id: str) -> None:
        """Start receiving ``task_id``'s result now (a send-time call: no round trip).

        Call it before the task is sent: then ``wait`` needs no read of the key,
        since nothing can have been published before the subscription.
        """
        with self._cond:
            box = self._box
            if task_id in box.waiters:
                box.waiters.move_to_end(task_id)
                return
            # Recorded before the SUBSCRIBE: if writing it fails, the connection
            # counts as lost and the wait reads the key instead of trusting a push.
            box.early[task_id] = box.generation
            self._add(task_id, 0)

    def _add(self, task_id: str, waiters: int) -> None:
        """Count a waiter for ``task_id``, subscribing if new (call with the lock held)."""
        box = self._box
        if task_id in box.waiters:
            box.waiters[task_id] += waiters
            box.waiters.move_to_end(task_id)
            return
        channel = box.channel(task_id)
        box.waiters[task_id] = waiters
        if channel in self._unsubscribe:
            del self._unsubscribe[channel]  # never left: still subscribed
        elif self._push.connected:
            self._send(("SUBSCRIBE", channel))
        else:
            self._connect()  # subscribes to every channel waited on, this one too
        for old in box.evictable():
            self._drop(old)

    def _send(self, *commands: tuple[str, ...]) -> None:
        try:
            self._push.send(commands)
        except _ERRORS:
            self._box.lost()  # the next read reconnects and subscribes again

    def _connect(self) -> None:
        """(Re)connect and subscribe to every channel waited on (lock held).

        Messages published while disconnected are gone: the generation moves on,
        so every wait re-confirms its subscription and reads the key.
        """
        self._unsubscribe.clear()
        channels = [self._box.channel(task_id) for task_id in self._box.waiters]
        try:
            self._push.connect()
            if channels:
                self._push.send([("SUBSCRIBE", *channels)])
        except _ERRORS:
            self._box.lost()  # a read tries again; a send fails on its own connection

    def _drop(self, task_id: str) -> None:
        box = self._box
        box.waiters.pop(task_id, None)
        box.values.pop(task_id, None)
        box.early.pop(task_id, None)
        # UNSUBSCRIBE in batches: one write per task would cost a syscall and a
        # server command each; a late message on a dropped channel is ignored.
        self._unsubscribe[box.channel(task_id)] = None
        if len(self._unsubscribe) >= _UNSUBSCRIBE_BATCH:
            batch, self._unsubscribe = list(self._unsubscribe), {}
            if self._push.connected:
                self._send(("UNSUBSCRIBE", *batch))

    def wait(
        self, task_id: str, timeout: float | None, read: Callable[[], ResultMeta | None]
    ) -> ResultMeta:
        """The ready result of ``task_id``; ``read`` GETs the key. Raises WaitTimedOut."""
        box = self._box
        deadline = None if timeout is None else time.monotonic() + timeout
        channel = box.channel(task_id)
        with self._cond:
            meta = box.take(task_id)
            if meta is not None and box.waiters.get(task_id) == 0:
                # Pushed before get(): nothing to read or wait for.
                self._drop(task_id)
                return meta
            self._add(task_id, 1)
        try:
            if meta is not None:
                return meta
            with self._cond:
                early = box.early.get(task_id)
            if early is not None:
                # Subscribed before the send: the push alone brings the result,
                # unless it has not come within the grace (then read once below).
                with contextlib.suppress(WaitTimedOut):
                    self._pump(partial(_ready_or_lost, box, task_id, early),
                               _grace_deadline(time.monotonic(), deadline))
            while True:
                with self._cond:
                    meta = box.take(task_id)
                if meta is not None:
                    return meta
                self._pump(lambda: channel in box.confirmed or box.ready(task_id), deadline)
                with self._cond:
                    generation = box.generation
                meta = _ready(read())
                if meta is not None:
                    return meta
                self._pump(partial(_ready_or_lost, box, task_id, generation), deadline)
        finally:
            with self._cond:
                box.waiters[task_id] -= 1
                if box.waiters[task_id] <= 0:
                    self._drop(task_id)

    def _pump(self, done: Callable[[], object], deadline: float | None) -> None:
        """Read pushed replies until ``done()``; one thread reads, the others wait."""
        while True:
            with self._cond:
                while True:
                    if done():
                        return
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        raise WaitTimedOut
                    if not self._reading:
                        self._reading = True
                        break
                    self._cond.wait(1.0 if remaining is None else min(remaining, 1.0))
            try:
                self._read_some(1.0 if remaining is None else min(remaining, 1.0))
            finally:
                with self._cond:
                    self._reading = False
                    self._cond.notify_all()

    def _read_some(self, timeout: float) -> None:
        """Handle the replies that arrive within ``timeout`` (the reader's turn)."""
        try:
            if not self._push.connected:
                with self._cond:
                    self._connect()
            replies = self._push.read(timeout)  # not connected: raises, counted as lost
        except _ERRORS:
            with self._cond:
                self._box.lost()
            time.sleep(min(timeout, 0.1))
            return
        if not replies:
            return
        with self._cond:
            handle = self._box.handle_reply
            for reply in replies:
                if isinstance(reply, list) and len(reply) == 3:  # hiredis: a list subclass
                    kind, channel, data = reply
                    handle(kind, channel.decode(), data)

    def close(self) -> None:
        """Close the pub/sub connection; idempotent."""
        with self._cond:
            self._push.close()
            self._box.waiters.clear()
            self._box.values.clear()
            self._box.confirmed.clear()
            self._box.early.clear()
            self._unsubscribe.clear()


class AsyncResultListener:
    """Shared pub/sub for ``await``-ed waits: one reader task feeds every waiter."""

    def __init__(self, client: redis.asyncio.Redis, prefix: str, decode: Decode) -> None:
        self._client = client
        self._box = _Mailbox(prefix, decode, max_early=10_000)
        self._pubsub: redis.asyncio.client.PubSub | None = None
        self._reader: asyncio.Task[None] | None = None
        self._events: set[asyncio.Event] = set()
        self._unsubscribe: dict[str, None] = {}  # channels to leave, in order

    async def wait(
        self,
        task_id: str,
        timeout: float | None,
        read: Callable[[], Awaitable[ResultMeta | None]],
    ) -> ResultMeta:
        """The ready result of ``task_id``; ``read`` GETs the key. Raises WaitTimedOut."""
        box = self._box
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        channel = box.channel(task_id)
        if task_id in box.waiters:
            box.waiters[task_id] += 1
        else:
            await self._subscribe(task_id, 1)
        try:
            early = box.early.get(task_id)
            if early is not None:
                # Subscribed before the send: the push alone brings the result,
                # unless it has not come within the grace (then read once below).
                with contextlib.suppress(WaitTimedOut):
                    await self._until(partial(_ready_or_lost, box, task_id, early),
                                      _grace_deadline(loop.time(), deadline))
            while True:
                meta = box.take(task_id)
                if meta is not None:
                    return meta
                await self._until(lambda: channel in box.confirmed or box.ready(task_id), deadline)
                generation = box.generation
                meta = _ready(await read())
                if meta is not None:
                    return meta
                await self._until(partial(_ready_or_lost, box, task_id, generation), deadline)
        finally:
            remaining = box.waiters.get(task_id, 1) - 1
            if remaining > 0:
                box.waiters[task_id] = remaining
            else:
                await self._drop(task_id)

    async def subscribe(self, task_id: str) -> None:
        """Start receiving ``task_id``'s result before its task is sent (no round trip)."""
        if task_id in self._box.waiters:
            return
        await self._subscribe(task_id, 0)
        self._box.early[task_id] = self._box.generation
        for old in self._box.evictable():
            await self._drop(old)

    async def _subscribe(self, task_id: str, waiters: int) -> None:
        self._box.waiters[task_id] = waiters
        if self._pubsub is None:
            self._pubsub = self._client.pubsub()
        channel = self._box.channel(task_id)
        if channel in self._unsubscribe:
            del self._unsubscribe[channel]  # never left: still subscribed
        else:
            await self._pubsub.subscribe(channel)
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._read(), name="celeriac-redis-results")

    async def _drop(self, task_id: str) -> None:
        box = self._box
        box.waiters.pop(task_id, None)
        box.values.pop(task_id, None)
        box.early.pop(task_id, None)
        # UNSUBSCRIBE in batches, as the blocking face does: one write per task
        # would cost a syscall and a server command each; a late message on a
        # channel left behind is ignored (nobody waits on it).
        self._unsubscribe[box.channel(task_id)] = None
        if len(self._unsubscribe) >= _UNSUBSCRIBE_BATCH and self._pubsub is not None:
            batch, self._unsubscribe = list(self._unsubscribe), {}
            with contextlib.suppress(*_ERRORS):
                await self._pubsub.unsubscribe(*batch)

    async def _until(self, done: Callable[[], object], deadline: float | None) -> None:
        loop = asyncio.get_running_loop()
        while not done():
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                raise WaitTimedOut
            event = asyncio.Event()
            self._events.add(event)
            try:
                # In this task (no wait_for task): a push resumes the waiter next turn.
                async with asyncio.timeout(remaining):
                    await event.wait()
            except TimeoutError:
                if not event.is_set():
                    raise WaitTimedOut from None
            finally:
                self._events.discard(event)

    def _wake_all(self) -> None:
        for event in self._events:
            event.set()

    async def _read(self) -> None:
        assert self._pubsub is not None
        failures = 0
        while True:
            try:
                message = await next_message(self._pubsub)
                failures = 0
            except _ERRORS:
                failures += 1
                self._box.lost()
                self._wake_all()
                await drop_connection(self._pubsub)
                await asyncio.sleep(min(0.05 * 2**failures, 2.0))
                continue
            if message is not None:
                self._box.handle(message)
                self._wake_all()

    async def close(self) -> None:
        """Stop the reader and close the pub/sub connection; idempotent."""
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
            self._reader = None
        if self._pubsub is not None:
            with contextlib.suppress(*_ERRORS):
                await self._pubsub.aclose()  # type: ignore[no-untyped-call]
            self._pubsub = None
        # A later wait subscribes afresh on a new connection.
        self._unsubscribe.clear()
        self._box.lost()
        self._box.waiters.clear()
        self._box.values.clear()
        self._box.early.clear()
