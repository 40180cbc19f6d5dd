"""The consuming side of the Redis transport: fetch, ack, reject, defer, leases.

Mixed into :class:`~celeriac.transports.redis.RedisTransport`, which owns the
connections and the publishing side; the design (atomic fetch into a per-consumer
in-flight hash, leases, the ETA zset, wake-ups) is described in that module's
docstring and in ``docs/decisions-redis.md``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import redis
import redis.asyncio
import redis.exceptions

from celeriac.errors import BrokerUnreachable, DecodeError, OperationalError
from celeriac.protocol import keys
from celeriac.protocol.kombu_json import decode_element
from celeriac.transports import _redis_scripts as lua
from celeriac.transports._redis_conn import RedisTarget, translate_error
from celeriac.transports._redis_pubsub import WakeListener
from celeriac.transports._redis_pushed import PushLedger, split_located
from celeriac.transports._redis_support import RedisTag, dead_record, raise_if_cancelled
from celeriac.transports.base import Delivery, TransportOptions

__all__ = ["RedisConsuming", "tag_of"]

log = logging.getLogger("celeriac.transports.redis")

T = TypeVar("T")

_IDLE_POLL_MIN = 0.01
# After a poll that no wake-up announced found messages, some producer of these
# queues publishes no wake-ups (Celery): for this long, a fetch that came back
# short is followed by another at once instead of waiting for a wake-up.
_SILENT_PRODUCER_MEMORY = 30.0
_MAX_DUE_MOVES = 200
_MAX_DEAD_CONSUMERS = 50
# How long an ack_soon() waits for a fetch to carry it before it goes alone.
_ACK_LINGER = 0.005
# How long an idle registration lasts unless a fetch renews it: an idle consumer
# fetches at least every poll bound (<= 0.25 s), so a registration outlives that
# only when its consumer is gone or blocked, and a dead consumer is handed
# messages (which then wait for its lease to run out) for this long at most.
_REGISTRATION_SECONDS = 1.0


class RedisConsuming:
    """Fetch, ack, reject, defer and lease upkeep for one consumer id.

    The transport calls :meth:`_init_consuming` from its constructor and
    provides the connection methods declared below.
    """

    options: TransportOptions
    consumer_id: str
    _target: RedisTarget
    _wake_prefix: str
    _push_channel: str

    if TYPE_CHECKING:
        def _async_client(self) -> redis.asyncio.Redis: ...

        async def _script(self, source: str, keys_: Sequence[str],
                          args: Sequence[Any]) -> Any: ...

        async def _retrying(self, doing: str, call: Callable[[], Awaitable[T]]) -> T: ...

        def describe(self) -> str: ...

    def _init_consuming(self) -> None:
        self._inflight_key = keys.inflight_key(self.consumer_id)
        self._seq = 0
        self._pending_acks: list[str] = []
        self._linger: asyncio.TimerHandle | None = None
        self._lingering: set[asyncio.Task[None]] = set()
        self._unknown_fetches: list[list[str]] = []
        # FETCH calls whose reply was lost: (first tag, limit), given back before
        # the next fetch (with pushes into their reserved tags not yet seen).
        self._lost_fetches: list[tuple[int, int]] = []
        self._pushed = PushLedger()
        # A push came while an earlier message was still unfinished (a stream, not
        # an idle worker): fetch in batches without registering until a fetch
        # finds nothing.
        self._streaming = False
        self._running: set[str] = set()  # tags returned by fetch() and not finished
        self._registration_seconds = float(
            self.options.extra.get("idle_registration_seconds", _REGISTRATION_SECONDS))
        self._queue_of: dict[str, str] = {}
        self._polled: set[str] = set()
        # (queues, poll order, list names, channels to watch) of the last fetch
        self._fetch_plan: tuple[
            tuple[str, ...], list[tuple[str, str]], list[str], list[str]] | None = None
        self._reconciled_generation = 0
        #: FETCH scripts run (a counter for tests and stats).
        self.fetch_round_trips = 0
        # Rejections that could not reach Redis: the messages stay in our in-flight
        # hash, and a live consumer's lease never lapses, so they are finished here
        # as soon as Redis answers again (next fetch or maintenance round).
        self._pending_requeues: list[str] = []
        self._pending_dead: list[tuple[RedisTag, str, str]] = []
        self._down_since: float | None = None
        self._wake: WakeListener | None = None
        self._poll_cap = max(_IDLE_POLL_MIN, min(self.options.poll_interval, 0.25))
        # The last fetch took fewer messages than asked: its lists were empty then.
        self._short = False
        self._silent_until = 0.0  # loop time until which silent producers are assumed
        self._next_due: float | None = None  # earliest ETA score the last fetch saw

    def _poll_order(self, queues: Sequence[str]) -> list[tuple[str, str]]:
        """(list, queue) pairs in kombu's order: priority-major, queues interleaved."""
        return [(keys.priority_queue(q, step), q) for step in keys.PRIORITY_STEPS for q in queues]

    async def fetch(self, queues: Sequence[str], limit: int, timeout: float) -> list[Delivery]:
        """Take up to ``limit`` messages atomically; wait up to ``timeout`` for the first."""
        try:
            deliveries = await self._fetch(queues, limit, timeout)
        except (redis.exceptions.RedisError, OSError, OperationalError):
            self._note_down()
            raise
        self._note_up()
        return deliveries

    def _note_down(self) -> None:
        if self._down_since is None:
            self._down_since = time.monotonic()

    def _note_up(self) -> None:
        """Say so in the log when Redis answers again after a failure."""
        if self._down_since is not None:
            log.warning("reconnected to Redis (%s) after %.1fs", self.describe(),
                        time.monotonic() - self._down_since)  # fmt: skip
            self._down_since = None

    def _polling_plan(self, queues: Sequence[str]) -> tuple[
            list[tuple[str, str]], list[str], list[str]]:
        """(poll order, list names, channels to watch) for ``queues``; the consumer
        asks for the same queues at every fetch, so the last plan is kept."""
        key = tuple(queues)
        plan = self._fetch_plan
        if plan is None or plan[0] != key:
            order = self._poll_order(queues)
            lists = [name for name, _ in order]
            watch = [*(self._wake_prefix + name for name in lists), self._push_channel]
            plan = self._fetch_plan = (key, order, lists, watch)
        return plan[1], plan[2], plan[3]

    async def _fetch(self, queues: Sequence[str], limit: int, timeout: float) -> list[Delivery]:
        order, lists, channels = self._polling_plan(queues)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, timeout)
        if self._wake is None:
            self._wake = WakeListener(self._async_client(), self._target, self._push_channel,
                                      self._pushed.take_announcement)  # fmt: skip
        if any(name not in self._queue_of for name in lists):
            self._queue_of.update(order)
        if len(self._polled) != len(lists) or not self._polled.issuperset(lists):
            await self._stop_polling(self._polled - set(lists))
            self._polled = set(lists)
        await self._wake.watch(channels)
        idle = _IDLE_POLL_MIN
        failures = 0
        woken = True
        if self._short and loop.time() >= self._silent_until:
            # The lists were empty when the last fetch ran, and the wake-up event
            # was cleared before it: until a push wakes us, another fetch would
            # find nothing (and cost a round trip in the middle of running what
            # the last one brought). The short poll bound covers pushes that
            # publish no wake-up, and the ETA messages due meanwhile.
            pause = min(idle, max(0.0, deadline - loop.time()))
            if self._next_due is not None:
                pause = max(0.0, min(pause, self._next_due - time.time()))
            woken = await self._wake.wait(pause) or self._due()
        while True:
            raise_if_cancelled()
            lists_woken = self._wake.clear()
            try:
                if self._wake.generation != self._reconciled_generation:
                    await self._reconcile(with_current=True)
                if self._pushed.buffer:  # pushed to us while idle: no FETCH needed
                    if lists_woken:
                        # A list got messages too (pushes ran out of room): the
                        # wake-up is used up here, so the next fetch looks at once.
                        self._short = False
                    return await self._take_pushed(limit)
                if (self._pending_requeues or self._pending_dead or self._lost_fetches
                        or self._unknown_fetches):
                    await self._recover_unknown_fetches()
                deliveries, next_due = await self._fetch_once(order, lists, limit)
                failures = 0
            except (redis.exceptions.RedisError, OSError) as exc:
                self._note_down()
                failures += 1
                pause = min(0.1 * 2**failures, 5.0)
                if loop.time() + pause > deadline:
                    raise translate_error(exc, self._target, "fetching") from exc
                log.warning("Redis fetch failed (%s), reconnecting in %.1fs: %s",
                            self.describe(), pause, exc)  # fmt: skip
                await asyncio.sleep(pause)
                continue
            if deliveries:
                if not woken:
                    self._silent_until = loop.time() + _SILENT_PRODUCER_MEMORY
                return deliveries
            if next_due is not None and next_due <= time.time():
                continue  # more due ETA messages than one script moves
            remaining = deadline - loop.time()
            if remaining <= 0:
                return []
            pause = min(remaining, idle)
            if next_due is not None:
                pause = max(0.0, min(pause, next_due - time.time()))
            woken = await self._wake.wait(pause)
            idle = _IDLE_POLL_MIN if woken else min(idle * 2, self._poll_cap)
            woken = woken or self._due()

    def _due(self) -> bool:
        """Whether the earliest ETA message the last fetch saw is due (ours to move:
        messages it brings were announced by no wake-up, yet no producer is silent)."""
        return self._next_due is not None and self._next_due <= time.time()

    async def _take_pushed(self, limit: int) -> list[Delivery]:
        """Up to ``limit`` of the messages pushed to this consumer, oldest first."""
        deliveries: list[Delivery] = []
        buffer = self._pushed.buffer
        if len(buffer) > 1 or self._running:
            self._streaming = True
        stray: list[str] = []
        while buffer and len(deliveries) < limit:
            seq, list_name, element = buffer.popleft()
            if list_name not in self._polled:  # pushed just before we stopped polling it
                stray.append(seq)
                continue
            queue = self._queue_of.get(list_name, list_name)
            try:
                deliveries.append(self._delivery(seq, list_name, queue, element, False))
            except DecodeError as exc:
                await self._set_aside_undecodable(RedisTag(seq, list_name, element), queue, exc)
        if stray:
            await self._retrying("giving back pushed messages", lambda: self._requeue(
                stray, mark=False))  # fmt: skip
        return deliveries

    def _finished(self, seqs: Sequence[str]) -> None:
        self._running.difference_update(seqs)

    @property
    def pushed_deliveries(self) -> int:
        """Messages received pushed to this consumer while it was idle (a counter)."""
        return self._pushed.received

    async def _reconcile(self, *, with_current: bool) -> None:
        """Read back pushed messages whose announcement did not arrive: after the push
        channel came back (``with_current``: also unregisters, so nothing more is
        pushed until the next fetch registers again), or those of earlier
        registrations still unseen after a maintenance round."""
        assert self._wake is not None
        generation = self._wake.generation
        firsts, tags = self._pushed.suspects(with_current=with_current)
        if not firsts and not with_current:
            return
        raw = await self._script(lua.RECONCILE, [self._inflight_key, keys.IDLE_CONSUMERS_HASH],
                                 [self.consumer_id, "1" if with_current else "0", *tags])
        found = 0
        for i in range(1, len(raw), 2):
            list_name, element = split_located(raw[i + 1])
            found += self._pushed.take(raw[i].decode(), list_name, element)
        self._pushed.reconciled(firsts, with_current=with_current, room=raw[0])
        if with_current:
            self._reconciled_generation = generation
        if found:
            log.warning("took %d pushed message(s) whose announcement was lost back from "
                        "Redis (%s)", found, self.describe())  # fmt: skip
            self._wake.set()

    async def _stop_polling(self, dropped: set[str]) -> None:
        """Lists no longer polled (a cancelled consumer): no more pushes from them, and
        what was pushed from them but not taken yet goes back to its list."""
        if not dropped:
            return
        prefix = keys.idle_consumers_prefix()
        client = self._async_client()
        for name in dropped:
            await self._retrying("leaving an idle list", partial(
                client.zrem, prefix + name, self.consumer_id))  # fmt: skip
        buffer = self._pushed.buffer
        back = [item for item in buffer if item[1] in dropped]
        if back:
            kept = [item for item in buffer if item[1] not in dropped]
            buffer.clear()
            buffer.extend(kept)
            await self._retrying("giving back pushed messages", lambda: self._requeue(
                [seq for seq, _, _ in back], mark=False))  # fmt: skip

    async def stop_fetching(self) -> None:
        """Take no more messages: drop the idle registration (no more pushes) and
        give back the pushed messages not returned by :meth:`fetch` yet."""
        tags = self._pushed.stop()
        try:
            await self._async_client().hdel(keys.IDLE_CONSUMERS_HASH, self.consumer_id)
            if tags:
                await self._requeue(tags, mark=False)
        except (redis.exceptions.RedisError, OSError) as exc:
            # still in our in-flight hash: close() gives them back (or the lease runs out)
            log.warning("could not give back pushed messages on stop: %s (%s)", exc,
                        self.describe())  # fmt: skip

    async def _fetch_once(
        self, order: list[tuple[str, str]], lists: list[str], limit: int
    ) -> tuple[list[Delivery], float | None]:
        first = self._seq
        self._seq += limit
        acks, self._pending_acks = self._pending_acks, []  # forgotten by the same script
        if self._linger is not None:  # nothing left for an ack_soon() timer to send
            self._linger.cancel()
            self._linger = None
        # Register idle only while pushes can be heard (the push channel subscribed).
        hearing = self._wake is not None and self._wake.push_ready.is_set()
        idle = hearing and not self._streaming
        register = repr(self._registration_seconds) if idle else "0"
        self._pushed.reserve(first, limit)
        try:
            raw = await self._script(
                lua.FETCH,
                [self._inflight_key, keys.LEASES_ZSET, keys.DELAYED_ZSET, keys.REDELIVERED_HASH,
                 keys.IDLE_CONSUMERS_HASH, *lists],
                [limit, self.consumer_id, first, self.options.lease_seconds, self._wake_prefix,
                 _MAX_DUE_MOVES, keys.idle_consumers_prefix(), register, *acks],
            )  # fmt: skip
        except BaseException:
            # The script may have run with its reply lost (or we were cancelled):
            # whatever it took for us is requeued before the next fetch, and the
            # acks are sent again (forgetting a tag twice is harmless).
            self._lost_fetches.append((first, limit))
            self._pending_acks[:0] = acks
            if acks and self._linger is None:
                self._arm_linger()
            raise
        self.fetch_round_trips += 1
        next_due = self._next_due = float(raw[0]) if raw[0] else None
        taken = (len(raw) - 2) // 4
        self._short = taken < limit
        if taken == 0:
            self._streaming = False  # idle again: the next fetch registers
        self._pushed.fetched(first, taken, registered=self._short and register != "0",
                             previous_room=raw[1])  # fmt: skip
        deliveries: list[Delivery] = []
        delivery = self._delivery
        for i in range(2, len(raw), 4):
            seq, index, element = raw[i].decode(), int(raw[i + 1]) - 1, raw[i + 3]
            list_name, queue = order[index]
            try:
                deliveries.append(delivery(seq, list_name, queue, element, raw[i + 2] == b"1"))
            except DecodeError as exc:
                await self._set_aside_undecodable(RedisTag(seq, list_name, element), queue, exc)
        return deliveries, next_due

    def _delivery(self, seq: str, list_name: str, queue: str, element: bytes,
                  redelivered: bool) -> Delivery:
        """The delivery of a fetched or pushed element now running here;
        ``DecodeError`` when it does not decode (the caller sets it aside as dead)."""
        envelope = decode_element(element)
        self._running.add(seq)
        return Delivery(envelope, queue, RedisTag(seq, list_name, element), redelivered)

    async def _set_aside_undecodable(self, tag: RedisTag, queue: str, exc: DecodeError) -> None:
        dead = keys.dead_letter_key(queue)
        log.error("undecodable message on queue %r set aside in %r: %s; first bytes %r",
                  queue, dead, exc, tag.element[:80])  # fmt: skip
        try:
            await self._dead_letter(tag, queue, str(exc))
        except OperationalError:
            # Still in our in-flight hash: requeue it with the unknown fetches
            # so that the next attempt sets it aside; never lose it.
            self._unknown_fetches.insert(0, [tag.seq])

    async def _recover_unknown_fetches(self) -> None:
        """Requeue what fetch calls whose reply was lost may have taken for us, and
        finish rejections that could not reach Redis."""
        if self._pending_requeues:
            batch, self._pending_requeues = self._pending_requeues, []
            try:
                await self._requeue(batch, mark=True)
            except BaseException:
                self._pending_requeues[:0] = batch
                raise
        while self._pending_dead:
            await self._dead_letter_once(*self._pending_dead[0])
            self._pending_dead.pop(0)
        while self._lost_fetches:
            first, _limit = self._lost_fetches[-1]
            tags = self._pushed.give_back(first)
            # no more pushes into tags whose fetch we know nothing about
            await self._async_client().hdel(keys.IDLE_CONSUMERS_HASH, self.consumer_id)
            await self._requeue(tags, mark=False)
            self._pushed.forget_lost(first)
            self._lost_fetches.pop()
        while self._unknown_fetches:
            tags = self._unknown_fetches.pop()
            try:
                await self._requeue(tags, mark=False)
            except BaseException:
                self._unknown_fetches.append(tags)
                raise

    async def _requeue(self, tags: Sequence[str], *, mark: bool) -> Any:
        flag = "1" if mark else "0"
        keys_ = [self._inflight_key, keys.REDELIVERED_HASH]
        return await self._script(lua.REQUEUE, keys_, [self._wake_prefix, flag, *tags])

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        """Forget finished deliveries (one HDEL); kept and retried if Redis is away."""
        seqs = [tag_of(d).seq for d in deliveries]
        self._pending_acks.extend(seqs)
        self._finished(seqs)
        try:
            await self._flush_acks()
        except (redis.exceptions.RedisError, OSError) as exc:
            self._note_down()
            log.warning("Redis ack failed (%s), will retry: %s", self.describe(), exc)

    async def ack_soon(self, deliveries: Sequence[Delivery]) -> None:
        """Forget finished deliveries with the next fetch, or with one HDEL of their
        own if no fetch runs within a few milliseconds (an idle worker)."""
        seqs = [tag_of(d).seq for d in deliveries]
        self._pending_acks += seqs
        self._running.difference_update(seqs)
        if self._linger is None:
            self._arm_linger()

    def _arm_linger(self) -> None:
        self._linger = asyncio.get_running_loop().call_later(_ACK_LINGER, self._lingered)

    def _lingered(self) -> None:
        self._linger = None
        if self._pending_acks:
            task = asyncio.ensure_future(self.ack(()))
            self._lingering.add(task)
            task.add_done_callback(self._lingering.discard)

    async def _flush_acks(self) -> None:
        if self._pending_acks:
            batch, self._pending_acks = self._pending_acks, []
            try:
                await self._async_client().hdel(self._inflight_key, *batch)
            except BaseException:
                self._pending_acks[:0] = batch
                raise

    async def reject(self, delivery: Delivery, *, requeue: bool, reason: str = "") -> None:
        """Requeue at the head of its queue, or move to ``<queue>.dead`` with ``reason``."""
        tag = tag_of(delivery)
        self._finished([tag.seq])
        try:
            if requeue:
                await self._retrying("requeueing", partial(self._requeue, [tag.seq], mark=True))
            else:
                await self._dead_letter(tag, delivery.queue, reason or "rejected")
        except BrokerUnreachable as exc:
            self._note_down()
            if requeue:
                self._pending_requeues.append(tag.seq)
            else:
                self._pending_dead.append((tag, delivery.queue, reason or "rejected"))
            log.warning(
                "%s; the message stays with this worker and is %s once Redis answers again",
                exc,
                "requeued" if requeue else "dead-lettered",
            )

    async def _dead_letter(self, tag: RedisTag, queue: str, reason: str) -> None:
        await self._retrying("dead-lettering", partial(self._dead_letter_once, tag, queue, reason))

    async def _dead_letter_once(self, tag: RedisTag, queue: str, reason: str) -> None:
        record = dead_record(queue, reason, tag.element)
        dead = keys.dead_letter_key(queue)
        await self._script(lua.DEAD_LETTER, [self._inflight_key, dead], [tag.seq, record])

    async def defer(self, delivery: Delivery, eta: float) -> None:
        """Move a fetched message into the ETA zset, atomically with its in-flight record."""
        tag = tag_of(delivery)
        self._finished([tag.seq])
        member = lua.locate(tag.list_name, tag.element)
        await self._retrying("deferring", lambda: self._script(
            lua.DEFER, [self._inflight_key, keys.DELAYED_ZSET],
            [tag.seq, repr(float(eta)), member]))  # fmt: skip

    async def maintain(self) -> None:
        """Renew the lease, restore dead consumers' messages, move due ETA messages."""
        interval = max(0.05, min(self.options.lease_seconds / 3, 1.0))
        failures = 0
        while True:
            raise_if_cancelled()
            try:
                await self._flush_acks()
                await self._recover_unknown_fetches()
                restored, _moved = await self._script(
                    lua.MAINTAIN,
                    [keys.LEASES_ZSET, keys.DELAYED_ZSET, self._inflight_key,
                     keys.REDELIVERED_HASH, keys.IDLE_CONSUMERS_HASH],
                    [self.consumer_id, self.options.lease_seconds, keys.inflight_key(""),
                     self._wake_prefix, _MAX_DEAD_CONSUMERS, _MAX_DUE_MOVES],
                )  # fmt: skip
                if restored:
                    log.warning("restored %d message(s) of consumers whose lease ran out",
                                restored)  # fmt: skip
                if self._wake is not None:
                    await self._reconcile(with_current=False)
                failures = 0
                self._note_up()
                await asyncio.sleep(interval)
            except (redis.exceptions.RedisError, OSError) as exc:
                self._note_down()
                failures += 1
                pause = min(0.1 * 2**failures, 5.0)
                # Once per outage; the lines that follow say when Redis is back.
                log.log(logging.ERROR if failures == 1 else logging.DEBUG,
                        "Redis maintenance failed: %s; retrying with backoff (next in %.1fs,"
                        " at most 5s)", translate_error(exc, self._target, "renewing the lease"),
                        pause)  # fmt: skip
                await asyncio.sleep(pause)


def tag_of(delivery: Delivery) -> RedisTag:
    """The Redis tag of ``delivery``; ``OperationalError`` if another transport made it."""
    tag = delivery.tag
    if not isinstance(tag, RedisTag):
        raise OperationalError(f"delivery {delivery!r} was not fetched from Redis")
    return tag
