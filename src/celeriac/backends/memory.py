"""In-process result store: ``memory://`` (or ``memory://name``, ``cache+memory://``).

Backends built from the same URL in one process share one store, so a worker
and a client in the same process (users' tests, eager mode) see each other's
results. Waiting is push-based: ``wait_sync`` sleeps on a
:class:`threading.Condition` and ``wait`` on an event that a store wakes with
``call_soon_threadsafe``, so both return as soon as the result lands, from
whatever thread or event loop stored it. Results expire ``expires`` seconds
after they were stored (checked on read and swept on writes).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from celeriac.backends._rules import may_replace, wait_timeout
from celeriac.backends.base import BackendOptions, ChordPart, ResultBackend
from celeriac.protocol.results import ResultMeta
from celeriac.protocol.states import READY_STATES
from celeriac.transports._named import NamedStores

__all__ = ["MemoryBackend", "drop_store"]


@dataclass(slots=True, eq=False)
class _Store:
    """Shared state of one named in-process result store (all access under ``cond``)."""

    cond: threading.Condition = field(default_factory=threading.Condition)
    results: dict[str, tuple[ResultMeta, float]] = field(default_factory=dict)
    groups: dict[str, tuple[list[str], float]] = field(default_factory=dict)
    chord_sizes: dict[str, int] = field(default_factory=dict)
    chord_parts: dict[str, dict[str, ChordPart]] = field(default_factory=dict)
    chords_done: dict[str, float] = field(default_factory=dict)
    chords_completed: dict[str, tuple[str, list[ChordPart]]] = field(default_factory=dict)
    waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = field(default_factory=set)
    last_sweep: float = 0.0


_STORES: NamedStores[_Store] = NamedStores(_Store)


def drop_store(name: str = "") -> None:
    """Forget the in-process result store ``memory://name`` and everything in it."""
    _STORES.drop(name)


class MemoryBackend(ResultBackend):
    """The in-process result store behind ``memory://[name]`` (see the module docstring)."""

    schemes = ("memory", "cache+memory")
    pushes = True

    def __init__(self, url: str = "memory://", options: BackendOptions | None = None) -> None:
        super().__init__(url, options)
        self.name = url.partition("://")[2].strip("/")
        self._store = _STORES.get(self.name)

    # -- helpers (call with the lock held) -----------------------------------
    def _fresh(self, stored_at: float, now: float) -> bool:
        expires = self.options.expires
        return expires is None or now - stored_at <= expires

    def _lookup(self, task_id: str, now: float) -> ResultMeta | None:
        entry = self._store.results.get(task_id)
        if entry is None:
            return None
        if not self._fresh(entry[1], now):
            del self._store.results[task_id]
            return None
        return entry[0]

    def _sweep(self, now: float) -> None:
        store = self._store
        expires = self.options.expires
        if expires is None or now - store.last_sweep < min(expires, 60.0):
            return
        store.last_sweep = now
        for key in [k for k, (_, at) in store.results.items() if now - at > expires]:
            del store.results[key]
        for key in [k for k, (_, at) in store.groups.items() if now - at > expires]:
            del store.groups[key]
        for key in [k for k, at in store.chords_done.items() if now - at > expires]:
            del store.chords_done[key]
            store.chords_completed.pop(key, None)

    def _wake(self) -> None:
        store = self._store
        store.cond.notify_all()
        for loop, event in list(store.waiters):
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # that loop is closed: its waiter is gone
                store.waiters.discard((loop, event))

    # -- single results --------------------------------------------------------
    async def store(self, meta: ResultMeta) -> None:
        """Store ``meta`` (a ready state is never replaced by a non-ready one)."""
        self.store_many_sync([meta])

    async def store_many(self, metas: Sequence[ResultMeta]) -> None:
        """Store several states under one lock."""
        self.store_many_sync(metas)

    def store_sync(self, meta: ResultMeta) -> None:
        """Blocking :meth:`store` (the same call)."""
        self.store_many_sync([meta])

    def store_many_sync(self, metas: Sequence[ResultMeta]) -> None:
        """Blocking :meth:`store_many`."""
        now = time.time()
        with self._store.cond:
            self._sweep(now)
            for meta in metas:
                current = self._lookup(meta.task_id, now)
                if may_replace(current.status if current else None, meta.status):
                    self._store.results[meta.task_id] = (meta, now)
            self._wake()

    async def get(self, task_id: str) -> ResultMeta | None:
        """The stored meta, or ``None``."""
        return self.get_sync(task_id)

    def get_sync(self, task_id: str) -> ResultMeta | None:
        """Blocking :meth:`get`."""
        with self._store.cond:
            return self._lookup(task_id, time.time())

    def _ready(self, task_id: str) -> ResultMeta | None:
        meta = self._lookup(task_id, time.time())
        return meta if meta is not None and meta.status in READY_STATES else None

    async def wait(self, task_id: str, timeout: float | None) -> ResultMeta:
        """Return the meta once ready; woken by the store, not by polling."""
        store = self._store
        event = asyncio.Event()
        waiter = (asyncio.get_running_loop(), event)
        deadline = None if timeout is None else time.monotonic() + timeout
        with store.cond:
            store.waiters.add(waiter)
        try:
            while True:
                event.clear()
                with store.cond:
                    meta = self._ready(task_id)
                if meta is not None:
                    return meta
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise wait_timeout(task_id, timeout)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), remaining)
        finally:
            with store.cond:
                store.waiters.discard(waiter)

    def wait_sync(self, task_id: str, timeout: float | None) -> ResultMeta:
        """Blocking :meth:`wait`, woken by the store's condition variable."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._store.cond:
            while True:
                meta = self._ready(task_id)
                if meta is not None:
                    return meta
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise wait_timeout(task_id, timeout)
                self._store.cond.wait(remaining)

    async def forget(self, task_id: str) -> None:
        """Delete what is stored for ``task_id``."""
        self.forget_sync(task_id)

    def forget_sync(self, task_id: str) -> None:
        """Blocking :meth:`forget`."""
        with self._store.cond:
            self._store.results.pop(task_id, None)

    # -- groups ----------------------------------------------------------------
    def save_group_sync(self, group_id: str, task_ids: Sequence[str]) -> None:
        """Store the member ids of a group."""
        with self._store.cond:
            self._store.groups[group_id] = (list(task_ids), time.time())

    def restore_group_sync(self, group_id: str) -> list[str] | None:
        """The member ids saved for ``group_id``, or ``None``."""
        with self._store.cond:
            entry = self._store.groups.get(group_id)
            if entry is None or not self._fresh(entry[1], time.time()):
                return None
            return list(entry[0])

    def forget_group_sync(self, group_id: str) -> None:
        """Delete a saved group."""
        with self._store.cond:
            self._store.groups.pop(group_id, None)

    # -- chords ----------------------------------------------------------------
    def set_chord_size_sync(self, group_id: str, size: int) -> None:
        """Record how many header tasks the chord ``group_id`` waits for."""
        with self._store.cond:
            self._store.chord_sizes[group_id] = size

    async def chord_part_return(self, part: ChordPart) -> list[ChordPart] | None:
        """Count one header task; the completing call gets every part, ordered by index."""
        store = self._store
        with store.cond:
            if part.group_id in store.chords_done:
                completed = store.chords_completed.get(part.group_id)
                if completed is not None and completed[0] == part.task_id:
                    return list(completed[1])
                return None
            parts = store.chord_parts.setdefault(part.group_id, {})
            if part.task_id in parts:
                return None
            parts[part.task_id] = part
            size = store.chord_sizes.get(part.group_id)
            if size is None or len(parts) < size:
                return None
            store.chords_done[part.group_id] = time.time()
            del store.chord_parts[part.group_id]
            store.chord_sizes.pop(part.group_id, None)
            ordered = sorted(parts.values(), key=lambda p: p.index)
            store.chords_completed[part.group_id] = (part.task_id, ordered)
            return list(ordered)
