"""Redis result store, byte-compatible with Celery's Redis backend.

Results live in Celery's task-meta keys (:func:`celeriac.protocol.keys.task_meta_key`)
written with a TTL of ``expires`` and published on the channel of the same name,
as a Celery worker does, so Celery clients read and wait on results of celeriac
workers and the other way round. Groups use Celery's taskset-meta keys; chords
count their header tasks with Celery 5.7's keys (:func:`~celeriac.protocol.keys.chord_keys`),
so a chord sent by a Celery client completes on celeriac workers.

Compared with Celery's implementation:

* a store is one Lua script (read the stored state, keep a ready state from
  being replaced by an unready one, ``SET`` with TTL, ``PUBLISH``): atomic and
  one round trip; :meth:`RedisBackend.store_many` writes a batch in one call;
* a chord part is counted and, when it is the last one, the parts are taken in
  the same script, so exactly one caller completes the chord, even when a
  header task is delivered twice;
* a worker's writes (results, chord counts) that cannot reach Redis are retried
  with backoff for up to ``retry_seconds`` (a ``result_backend_transport_options``
  key, 60 s by default), logged once per outage with the masked URL; the task's
  message is acknowledged only after the write, so a write that never happens
  leaves the message to be redelivered (nothing is lost);
* waiting is push-based (see :mod:`celeriac.backends._redis_waiters`), and
  :meth:`RedisBackend.subscribe_early` lets the producer subscribe at send time
  so that ``get()`` of a finished task costs no round trip.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import TypeVar

import redis
import redis.asyncio
import redis.exceptions
from redis.commands.core import Script

from celeriac.backends._redis_waiters import (
    AsyncResultListener,
    SyncResultListener,
    WaitTimedOut,
)
from celeriac.backends._rules import wait_timeout
from celeriac.backends.base import BackendOptions, ChordPart, ResultBackend
from celeriac.errors import OperationalError
from celeriac.protocol import keys
from celeriac.protocol.results import (
    ResultMeta,
    chord_part_member,
    decode_chord_part_member,
    decode_group_meta,
    decode_meta,
    encode_group_meta,
    encode_meta,
)
from celeriac.protocol.states import READY_STATES, SUCCESS
from celeriac.transports._redis_conn import (
    CONNECTION_ERRORS,
    DEFAULT_CONNECT_TIMEOUT,
    AsyncScriptCaller,
    make_async_client,
    make_sync_client,
    seconds_option,
    target_from_options,
    translate_error,
    translating,
)

__all__ = ["RedisBackend"]

log = logging.getLogger("celeriac.backends.redis")

T = TypeVar("T")

_DEFAULT_RETRY_SECONDS = 60.0
_MAX_PAUSE = 5.0

#: KEYS: result keys. ARGV: ttl ms (0 = none), SUCCESS, ready states joined by
#: ",", then ``value, status`` per key. Never replaces a ready state with an
#: unready one nor SUCCESS with anything else (Celery's GET-before-SET rule).
_STORE = r"""
local ready = {}
for state in string.gmatch(ARGV[3], '[^,]+') do ready[state] = true end
local ttl = tonumber(ARGV[1])
local stored = 0
for i = 1, #KEYS do
  local value, status = ARGV[2 * i + 2], ARGV[2 * i + 3]
  local allowed = true
  local current = redis.call('GET', KEYS[i])
  if current then
    local was = string.match(current, '^{"status": "([^"]*)"')
    if not was then
      local ok, obj = pcall(cjson.decode, current)
      if ok and type(obj) == 'table' and type(obj['status']) == 'string' then
        was = obj['status']
      end
    end
    if was and ((ready[was] and not ready[status]) or (was == ARGV[2] and status ~= ARGV[2])) then
      allowed = false
    end
  end
  if allowed then
    if ttl > 0 then
      redis.call('SET', KEYS[i], value, 'PX', ttl)
    else
      redis.call('SET', KEYS[i], value)
    end
    redis.call('PUBLISH', KEYS[i], value)
    stored = stored + 1
  end
end
return stored
"""

#: KEYS: .j .t .s .d group .c completer completed-parts. ARGV: task id, member,
#: index, ttl s, done ttl s. Counts a part once per ``<task id>:<index>``; the
#: call that reaches the size (``.s`` + ``.t``) takes ``.c`` and gets the parts,
#: others get nil. The completing task id and the parts are kept for the done
#: TTL, so a completer that is redelivered (its worker died before sending the
#: body) gets the parts again instead of losing the chord body.
_CHORD_PART = r"""
if redis.call('EXISTS', KEYS[6]) == 1 then
  if redis.call('GET', KEYS[7]) == ARGV[1] then
    return redis.call('ZRANGE', KEYS[8], 0, -1, 'WITHSCORES')
  end
  return false
end
local dedupe = ARGV[1] .. ':' .. ARGV[3]
if redis.call('SISMEMBER', KEYS[4], dedupe) == 1 then return false end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
redis.call('SADD', KEYS[4], dedupe)
local count = redis.call('ZCOUNT', KEYS[1], '-inf', '+inf')
local ttl = tonumber(ARGV[4])
if ttl > 0 then
  for i = 1, 5 do redis.call('EXPIRE', KEYS[i], ttl) end
end
local size = tonumber(redis.call('GET', KEYS[3]) or '0')
size = size + tonumber(redis.call('GET', KEYS[2]) or '0')
if size > 0 and count >= size and redis.call('SET', KEYS[6], 'done', 'NX', 'EX', ARGV[5]) then
  local parts = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
  redis.call('RENAME', KEYS[1], KEYS[8])
  redis.call('EXPIRE', KEYS[8], ARGV[5])
  redis.call('SET', KEYS[7], ARGV[1], 'EX', ARGV[5])
  redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
  return parts
end
return false
"""

_CHORD_DONE_TTL = 300
_READY = ",".join(sorted(READY_STATES))


class RedisBackend(ResultBackend):
    """Celery-compatible Redis result store with push-based waiting."""

    schemes = ("redis", "rediss", "redis+socket", "unix", "sentinel")
    pushes = True

    def __init__(self, url: str, options: BackendOptions | None = None) -> None:
        super().__init__(url, options)
        extra = self.options.extra
        self._target = target_from_options(url, extra, connect_default=DEFAULT_CONNECT_TIMEOUT,
                                           setting_prefix="redis_",
                                           use_ssl=extra.get("use_ssl"),
                                           ssl_setting="redis_backend_use_ssl")
        retry = seconds_option(extra.get("retry_seconds", _DEFAULT_RETRY_SECONDS),
                               "retry_seconds")  # fmt: skip
        self._retry_seconds = math.inf if retry is None else retry
        self._down_since: float | None = None
        self._sync: redis.Redis | None = None
        self._aio: redis.asyncio.Redis | None = None
        self._sync_listener: SyncResultListener | None = None
        self._aio_listener: AsyncResultListener | None = None
        self._sync_scripts: dict[str, Script] = {}
        self._aio_scripts: AsyncScriptCaller | None = None
        self._max_early = int(extra.get("max_early_subscriptions", 10_000))

    # -- plumbing --------------------------------------------------------------
    def _sync_client(self) -> redis.Redis:
        if self._sync is None:
            self._sync = make_sync_client(self._target, retries=1)
        return self._sync

    def _async_client(self) -> redis.asyncio.Redis:
        if self._aio is None:
            self._aio = make_async_client(self._target, retries=1)
        return self._aio

    def _decode(self, data: bytes | str, task_id: str) -> ResultMeta:
        return decode_meta(data, self.options.serializer, task_id, self.options.accept)

    def _ttl_ms(self) -> int:
        expires = self.options.expires
        return 0 if expires is None else max(1, math.ceil(expires * 1000))

    def _store_args(self, metas: Sequence[ResultMeta]) -> tuple[list[str], list[object]]:
        names = [keys.task_meta_key(meta.task_id) for meta in metas]
        args: list[object] = [self._ttl_ms(), SUCCESS, _READY]
        for meta in metas:
            args += [encode_meta(meta, self.options.serializer), meta.status]
        return names, args

    async def _script(self, source: str, keys_: list[str], args: list[object]) -> object:
        if self._aio_scripts is None:
            self._aio_scripts = AsyncScriptCaller(self._async_client())
        return await self._aio_scripts(source, keys_, args)

    def _script_sync(self, source: str, keys_: list[str], args: list[object]) -> object:
        script = self._sync_scripts.get(source)
        if script is None:
            script = self._sync_scripts[source] = self._sync_client().register_script(source)
        return script(keys=keys_, args=args)  # type: ignore[arg-type]

    async def _io(
        self, doing: str, call: Callable[[], Awaitable[T]], *, patient: bool = False
    ) -> T:
        """Run ``call``, translating redis-py errors; see :meth:`_io_again` on failure."""
        try:
            result = await call()
        except CONNECTION_ERRORS as exc:
            return await self._io_again(doing, call, exc, patient)
        except (redis.exceptions.RedisError, OSError) as exc:
            raise translate_error(exc, self._target, doing, OperationalError) from exc
        if self._down_since is not None:
            self._note_up()
        return result

    async def _io_again(
        self, doing: str, call: Callable[[], Awaitable[T]], exc: BaseException, patient: bool
    ) -> T:
        """Retry after a connection failure.

        A dropped connection (the server restarted) is retried at once on a fresh
        one: redis-py's asyncio client does not do it. A ``patient`` call (a
        worker's write) then keeps retrying with backoff for up to ``retry_seconds``,
        saying so once per outage; after that the error is raised.
        """
        loop = asyncio.get_running_loop()
        give_up = loop.time() + (self._retry_seconds if patient else 0.0)
        # A timeout means the server is there but silent: no point retrying at once.
        pause = 0.1 if isinstance(exc, redis.exceptions.TimeoutError) else 0.0
        while True:
            if pause:
                if loop.time() + pause > give_up:
                    raise translate_error(exc, self._target, doing, OperationalError) from exc
                self._note_down(exc, doing, pause)
                await asyncio.sleep(pause)
            try:
                result = await call()
            except CONNECTION_ERRORS as again:
                exc = again
            except (redis.exceptions.RedisError, OSError) as other:
                raise translate_error(other, self._target, doing, OperationalError) from other
            else:
                if self._down_since is not None:
                    self._note_up()
                return result
            pause = min(max(pause * 2, 0.1), _MAX_PAUSE)

    def _note_down(self, exc: BaseException, doing: str, pause: float) -> None:
        if self._down_since is None:
            self._down_since = time.monotonic()
            log.error("result store: %s; retrying with backoff (next in %.1fs, at most %.0fs)",
                      translate_error(exc, self._target, doing, OperationalError), pause,
                      _MAX_PAUSE)  # fmt: skip

    def _note_up(self) -> None:
        if self._down_since is not None:
            log.warning("result store: reconnected to Redis (%s) after %.1fs",
                        self._target.masked, time.monotonic() - self._down_since)  # fmt: skip
            self._down_since = None

    async def connect(self) -> None:
        """Check that Redis answers (``OperationalError`` with the masked URL if not)."""
        with translating(self._target, "connecting", OperationalError):
            await self._async_client().ping()

    async def close(self) -> None:
        """Close the async connections; idempotent."""
        if self._aio_listener is not None:
            await self._aio_listener.close()
            self._aio_listener = None
        if self._aio is not None:
            if self._aio_scripts is not None:
                await self._aio_scripts.close()
                self._aio_scripts = None
            await self._aio.aclose()
            self._aio = None

    def close_sync(self) -> None:
        """Close the sync connections; idempotent."""
        if self._sync_listener is not None:
            self._sync_listener.close()
            self._sync_listener = None
        if self._sync is not None:
            self._sync.close()
            self._sync = None
            self._sync_scripts.clear()

    # -- single results ----------------------------------------------------------
    async def store(self, meta: ResultMeta) -> None:
        """Write and publish ``meta`` atomically (one round trip)."""
        await self.store_many([meta])

    async def store_many(self, metas: Sequence[ResultMeta]) -> None:
        """Write and publish a batch in one script call."""
        if metas:
            names, args = self._store_args(metas)
            call = partial(self._script, _STORE, names, args)
            await self._io("storing results", call, patient=True)

    def store_sync(self, meta: ResultMeta) -> None:
        """Blocking :meth:`store`."""
        names, args = self._store_args([meta])
        with translating(self._target, "storing a result", OperationalError):
            self._script_sync(_STORE, names, args)

    async def get(self, task_id: str) -> ResultMeta | None:
        """The stored meta, or ``None``."""
        key = keys.task_meta_key(task_id)
        raw = await self._io("reading a result", partial(self._async_client().get, key))
        return None if raw is None else self._decode(raw, task_id)

    def get_sync(self, task_id: str) -> ResultMeta | None:
        """Blocking :meth:`get`."""
        with translating(self._target, "reading a result", OperationalError):
            raw = self._sync_client().get(keys.task_meta_key(task_id))
        return None if raw is None else self._decode(raw, task_id)

    def _alistener(self) -> AsyncResultListener:
        if self._aio_listener is None:
            self._aio_listener = AsyncResultListener(
                self._async_client(), keys.task_meta_key(""), self._decode
            )
        return self._aio_listener

    async def asubscribe_early(self, task_id: str) -> None:
        """Async :meth:`subscribe_early`: the SUBSCRIBE is written, not waited for."""
        with translating(self._target, "subscribing to a result", OperationalError):
            await self._alistener().subscribe(task_id)

    async def wait(self, task_id: str, timeout: float | None) -> ResultMeta:
        """Wait for the ready result, woken by Redis pub/sub (no polling)."""
        listener = self._alistener()
        try:
            with translating(self._target, "waiting for a result", OperationalError):
                return await listener.wait(task_id, timeout, lambda: self.get(task_id))
        except WaitTimedOut:
            raise wait_timeout(task_id, timeout) from None

    def _listener(self) -> SyncResultListener:
        if self._sync_listener is None:
            self._sync_listener = SyncResultListener(
                make_sync_client(self._target, retries=0),
                keys.task_meta_key(""),
                self._decode,
                self._max_early,
            )
        return self._sync_listener

    def subscribe_early(self, task_id: str) -> None:
        """Start receiving ``task_id``'s result now, buffered until ``wait_sync``.

        Meant for the producer right before it sends the task: the SUBSCRIBE is
        written without waiting for a reply, and when the task is done before
        ``get()`` is called the result is already in this process.
        """
        with translating(self._target, "subscribing to a result", OperationalError):
            self._listener().subscribe(task_id)

    def wait_sync(self, task_id: str, timeout: float | None) -> ResultMeta:
        """Blocking :meth:`wait` over one shared pub/sub connection."""
        try:
            with translating(self._target, "waiting for a result", OperationalError):
                return self._listener().wait(task_id, timeout, lambda: self.get_sync(task_id))
        except WaitTimedOut:
            raise wait_timeout(task_id, timeout) from None

    async def forget(self, task_id: str) -> None:
        """Delete the stored result."""
        key = keys.task_meta_key(task_id)
        await self._io("forgetting a result", partial(self._async_client().delete, key))

    def forget_sync(self, task_id: str) -> None:
        """Blocking :meth:`forget`."""
        with translating(self._target, "forgetting a result", OperationalError):
            self._sync_client().delete(keys.task_meta_key(task_id))

    # -- groups ------------------------------------------------------------------
    def save_group_sync(self, group_id: str, task_ids: Sequence[str]) -> None:
        """Store the member ids under Celery's group key, with the result TTL."""
        value = encode_group_meta(group_id, task_ids)
        ttl = self._ttl_ms() or None
        with translating(self._target, "saving a group", OperationalError):
            self._sync_client().set(keys.group_meta_key(group_id), value, px=ttl)

    def restore_group_sync(self, group_id: str) -> list[str] | None:
        """The member ids saved for ``group_id``, or ``None``."""
        with translating(self._target, "restoring a group", OperationalError):
            raw = self._sync_client().get(keys.group_meta_key(group_id))
        return None if raw is None else decode_group_meta(raw)

    def forget_group_sync(self, group_id: str) -> None:
        """Delete a saved group."""
        with translating(self._target, "forgetting a group", OperationalError):
            self._sync_client().delete(keys.group_meta_key(group_id))

    # -- chords ------------------------------------------------------------------
    def set_chord_size_sync(self, group_id: str, size: int) -> None:
        """What a Celery client does before sending a chord: ``DEL .c``, ``SET .s``."""
        chord = keys.chord_keys(group_id)
        with translating(self._target, "setting a chord size", OperationalError):
            pipe = self._sync_client().pipeline(transaction=True)
            pipe.delete(chord.lock)
            pipe.set(chord.size, size, ex=keys.CHORD_KEY_TTL)
            pipe.execute()

    async def set_chord_size(self, group_id: str, size: int) -> None:
        """Async :meth:`set_chord_size_sync`."""
        chord = keys.chord_keys(group_id)

        async def write() -> object:
            # A new pipeline per attempt: execute() empties the one it ran.
            pipe = self._async_client().pipeline(transaction=True)
            pipe.delete(chord.lock)
            pipe.set(chord.size, size, ex=keys.CHORD_KEY_TTL)
            return await pipe.execute()

        await self._io("setting a chord size", write, patient=True)

    async def chord_part_return(self, part: ChordPart) -> list[ChordPart] | None:
        """Count one header task (idempotent); the completing call gets all parts."""
        chord = keys.chord_keys(part.group_id)
        member = chord_part_member(part.task_id, part.status, part.result)
        names = [chord.results, chord.total, chord.size, chord.dedupe, chord.group, chord.lock,
                 chord.completer, chord.completed_parts]
        args: list[object] = [part.task_id, member, part.index, keys.CHORD_KEY_TTL,
                              _CHORD_DONE_TTL]  # fmt: skip
        # A retry after a lost reply is safe: the part is counted once (.d).
        raw = await self._io(
            "counting a chord part", partial(self._script, _CHORD_PART, names, args), patient=True
        )
        if not raw:
            return None
        assert isinstance(raw, list)
        parts: list[ChordPart] = []
        for i in range(0, len(raw), 2):
            task_id, status, result = decode_chord_part_member(raw[i])
            parts.append(ChordPart(part.group_id, task_id, int(float(raw[i + 1])), status, result))
        return parts
