"""The embedded default result store: ``sqlite:///path`` (``sqlite://`` = ``./celeriac.sqlite``).

By default it shares the broker's file. Results are rows with one column per
:class:`~celeriac.protocol.results.ResultMeta` field (JSON for the structured
ones); the format is celeriac's own, not Celery's. Other tables hold saved
groups and chord counters: a chord part is keyed by ``(group_id, task_id)`` so
counting is idempotent, and the call that completes a chord marks it done in
the same transaction that reads the parts, so exactly one caller gets them.

``wait``/``wait_sync`` poll with short adaptive sleeps (1 ms doubling up to
``poll_interval``); a store in the same process wakes them at once. Rows older
than ``expires`` read as absent and are deleted by a sweep that stores run at
most every ``min(expires, 60 s)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Sequence
from functools import partial
from typing import Any

import orjson

from celeriac.backends._rules import may_replace, wait_timeout
from celeriac.backends.base import BackendOptions, ChordPart, ResultBackend
from celeriac.protocol.results import ResultMeta
from celeriac.protocol.serializers import json_dumps, json_loads
from celeriac.protocol.states import READY_STATES
from celeriac.transports._sqlite_db import (
    Backoff,
    SqliteDB,
    immediate,
    notifier_for,
    sqlite_path,
)

__all__ = ["SqliteBackend"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS celeriac_results (
    task_id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    result BLOB,
    traceback TEXT,
    children BLOB,
    date_done TEXT,
    group_id TEXT,
    parent_id TEXT,
    name TEXT,
    args BLOB,
    kwargs BLOB,
    worker TEXT,
    retries INTEGER,
    queue TEXT,
    extended INTEGER NOT NULL DEFAULT 0,
    stored_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS celeriac_results_stored_at ON celeriac_results (stored_at);
CREATE TABLE IF NOT EXISTS celeriac_groups (
    group_id TEXT PRIMARY KEY,
    task_ids BLOB NOT NULL,
    stored_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS celeriac_chords (
    group_id TEXT PRIMARY KEY,
    size INTEGER,
    done INTEGER NOT NULL DEFAULT 0,
    stored_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS celeriac_chord_done (
    group_id TEXT PRIMARY KEY,
    completed_by TEXT NOT NULL,
    parts BLOB NOT NULL,
    stored_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS celeriac_chord_parts (
    group_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    status TEXT NOT NULL,
    result BLOB,
    stored_at REAL NOT NULL,
    PRIMARY KEY (group_id, task_id)
);
"""

_COLUMNS = (
    "task_id, status, result, traceback, children, date_done, group_id, parent_id, "
    "name, args, kwargs, worker, retries, queue, extended"
)
_SWEPT_TABLES = (
    "celeriac_results", "celeriac_groups", "celeriac_chords", "celeriac_chord_parts",
    "celeriac_chord_done",
)


def _dumps(value: Any) -> bytes:
    # kombu's JSON with its type markers, so datetime, Decimal, UUID and bytes
    # results come back as what the task returned (raises EncodeError).
    return json_dumps(value)


def _loads(data: bytes | None) -> Any:
    if data is None:
        return None
    return json_loads(data)


def _row(meta: ResultMeta, now: float) -> tuple[Any, ...]:
    return (
        meta.task_id,
        meta.status,
        _dumps(meta.result),
        meta.traceback,
        None if meta.children is None else _dumps(meta.children),
        meta.date_done,
        meta.group_id,
        meta.parent_id,
        meta.name,
        None if meta.args is None else _dumps(meta.args),
        None if meta.kwargs is None else _dumps(meta.kwargs),
        meta.worker,
        meta.retries,
        meta.queue,
        int(meta.extended),
        now,
    )


def _meta(row: tuple[Any, ...]) -> ResultMeta:
    (task_id, status, result, tb, children, date_done, group_id, parent_id) = row[:8]
    (name, args, kwargs, worker, retries, queue, extended) = row[8:]
    return ResultMeta(
        task_id=task_id,
        status=status,
        result=_loads(result),
        traceback=tb,
        children=_loads(children),
        date_done=date_done,
        group_id=group_id,
        parent_id=parent_id,
        name=name,
        args=_loads(args),
        kwargs=_loads(kwargs),
        worker=worker,
        retries=retries,
        queue=queue,
        extended=bool(extended),
    )


class SqliteBackend(ResultBackend):
    """The result store behind ``sqlite://`` and ``db+sqlite://`` URLs."""

    schemes = ("sqlite", "db+sqlite")

    def __init__(self, url: str = "sqlite://", options: BackendOptions | None = None) -> None:
        super().__init__(url, options)
        self.path = sqlite_path(url)
        self._db = SqliteDB(self.path, SCHEMA, role="result backend")
        self._notifier = notifier_for(self.path, "results")
        self._last_sweep = 0.0

    def _cutoff(self, now: float) -> float:
        expires = self.options.expires
        return float("-inf") if expires is None else now - expires

    # -- lifecycle ---------------------------------------------------------
    async def connect(self) -> None:
        """Open the file (creating tables)."""
        await self._db.run(lambda conn: None)

    async def close(self) -> None:
        """Close the async connection and its thread; idempotent."""
        await self._db.close()

    def close_sync(self) -> None:
        """Close the sync connection; idempotent."""
        self._db.close_sync()

    # -- single results --------------------------------------------------------
    def _store_rows(self, conn: sqlite3.Connection, metas: Sequence[ResultMeta]) -> None:
        now = time.time()
        rows = [_row(meta, now) for meta in metas]
        sweep = self._sweep_due(now)
        cutoff = self._cutoff(now)
        with immediate(conn):
            for meta, row in zip(metas, rows, strict=True):
                current = conn.execute(
                    "SELECT status FROM celeriac_results WHERE task_id = ? AND stored_at >= ?",
                    (meta.task_id, cutoff),
                ).fetchone()
                if may_replace(current[0] if current else None, meta.status):
                    conn.execute(
                        f"INSERT OR REPLACE INTO celeriac_results ({_COLUMNS}, stored_at) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        row,
                    )
            if sweep:
                for table in _SWEPT_TABLES:
                    conn.execute(f"DELETE FROM {table} WHERE stored_at < ?", (cutoff,))

    def _sweep_due(self, now: float) -> bool:
        expires = self.options.expires
        if expires is None or now - self._last_sweep < min(expires, 60.0):
            return False
        self._last_sweep = now
        return True

    async def store(self, meta: ResultMeta) -> None:
        """Store ``meta`` (a ready state is never replaced by a non-ready one)."""
        await self.store_many([meta])

    async def store_many(self, metas: Sequence[ResultMeta]) -> None:
        """Store several states in one transaction."""
        await self._db.run(partial(self._store_rows, metas=metas))
        self._notifier.notify()

    def store_sync(self, meta: ResultMeta) -> None:
        """Blocking :meth:`store`."""
        self._db.run_sync(partial(self._store_rows, metas=[meta]))
        self._notifier.notify()

    def _select(self, conn: sqlite3.Connection, task_id: str) -> ResultMeta | None:
        row = conn.execute(
            f"SELECT {_COLUMNS} FROM celeriac_results WHERE task_id = ? AND stored_at >= ?",
            (task_id, self._cutoff(time.time())),
        ).fetchone()
        return None if row is None else _meta(row)

    async def get(self, task_id: str) -> ResultMeta | None:
        """The stored meta, or ``None``."""
        return await self._db.run(partial(self._select, task_id=task_id))

    def get_sync(self, task_id: str) -> ResultMeta | None:
        """Blocking :meth:`get`."""
        return self._db.run_sync(partial(self._select, task_id=task_id))

    async def wait(self, task_id: str, timeout: float | None) -> ResultMeta:
        """Poll (1 ms doubling to ``poll_interval``) until the task is ready."""
        deadline = None if timeout is None else time.monotonic() + timeout
        backoff = Backoff(0.001, self.options.poll_interval)
        with self._notifier.waiter() as event:
            while True:
                event.clear()
                meta = await self.get(task_id)
                if meta is not None and meta.status in READY_STATES:
                    return meta
                delay = backoff.next()
                if deadline is not None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise wait_timeout(task_id, timeout)
                    delay = min(delay, remaining)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), delay)

    def wait_sync(self, task_id: str, timeout: float | None) -> ResultMeta:
        """Blocking :meth:`wait`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        backoff = Backoff(0.001, self.options.poll_interval)
        while True:
            seen = self._notifier.version
            meta = self.get_sync(task_id)
            if meta is not None and meta.status in READY_STATES:
                return meta
            delay = backoff.next()
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise wait_timeout(task_id, timeout)
                delay = min(delay, remaining)
            self._notifier.wait_sync(seen, delay)

    async def forget(self, task_id: str) -> None:
        """Delete what is stored for ``task_id``."""
        await self._db.run(partial(_delete_result, task_id=task_id))

    def forget_sync(self, task_id: str) -> None:
        """Blocking :meth:`forget`."""
        self._db.run_sync(partial(_delete_result, task_id=task_id))

    # -- groups ----------------------------------------------------------------
    def save_group_sync(self, group_id: str, task_ids: Sequence[str]) -> None:
        """Store the member ids of a group."""
        sql = (
            "INSERT OR REPLACE INTO celeriac_groups (group_id, task_ids, stored_at) "
            "VALUES (?, ?, ?)"
        )
        params = (group_id, orjson.dumps(list(task_ids)), time.time())
        self._db.run_sync(lambda conn: conn.execute(sql, params))

    def restore_group_sync(self, group_id: str) -> list[str] | None:
        """The member ids saved for ``group_id``, or ``None``."""
        sql = "SELECT task_ids FROM celeriac_groups WHERE group_id = ? AND stored_at >= ?"
        params = (group_id, self._cutoff(time.time()))
        row = self._db.run_sync(lambda conn: conn.execute(sql, params).fetchone())
        return None if row is None else list(orjson.loads(row[0]))

    def forget_group_sync(self, group_id: str) -> None:
        """Delete a saved group."""
        sql = "DELETE FROM celeriac_groups WHERE group_id = ?"
        self._db.run_sync(lambda conn: conn.execute(sql, (group_id,)))

    # -- chords ----------------------------------------------------------------
    def set_chord_size_sync(self, group_id: str, size: int) -> None:
        """Record how many header tasks the chord ``group_id`` waits for."""
        self._db.run_sync(partial(_set_chord_size, group_id=group_id, size=size))

    async def set_chord_size(self, group_id: str, size: int) -> None:
        """Async :meth:`set_chord_size_sync`."""
        await self._db.run(partial(_set_chord_size, group_id=group_id, size=size))

    async def chord_part_return(self, part: ChordPart) -> list[ChordPart] | None:
        """Count one header task; the completing call gets every part, ordered by index."""
        return await self._db.run(partial(_chord_part_return, part=part))


# -- statements ---------------------------------------------------------------


def _delete_result(conn: sqlite3.Connection, task_id: str) -> None:
    conn.execute("DELETE FROM celeriac_results WHERE task_id = ?", (task_id,))


def _set_chord_size(conn: sqlite3.Connection, group_id: str, size: int) -> None:
    conn.execute(
        "INSERT INTO celeriac_chords (group_id, size, done, stored_at) VALUES (?, ?, 0, ?) "
        "ON CONFLICT (group_id) DO UPDATE SET size = excluded.size",
        (group_id, size, time.time()),
    )


def _chord_part_return(conn: sqlite3.Connection, part: ChordPart) -> list[ChordPart] | None:
    group_id = part.group_id
    with immediate(conn):
        chord = conn.execute(
            "SELECT size, done FROM celeriac_chords WHERE group_id = ?", (group_id,)
        ).fetchone()
        if chord is not None and chord[1]:
            # Done: only the task that completed it (redelivered after its worker
            # died before sending the body) gets the parts again.
            done = conn.execute(
                "SELECT parts FROM celeriac_chord_done WHERE group_id = ? AND completed_by = ?",
                (group_id, part.task_id),
            ).fetchone()
            if done is None:
                return None
            return [ChordPart(group_id, tid, idx, status, result)
                    for tid, idx, status, result in _loads(done[0])]
        inserted = conn.execute(
            "INSERT OR IGNORE INTO celeriac_chord_parts "
            "(group_id, task_id, idx, status, result, stored_at) VALUES (?, ?, ?, ?, ?, ?)",
            (group_id, part.task_id, part.index, part.status, _dumps(part.result), time.time()),
        ).rowcount
        if not inserted or chord is None or chord[0] is None:
            return None
        (count,) = conn.execute(
            "SELECT count(*) FROM celeriac_chord_parts WHERE group_id = ?", (group_id,)
        ).fetchone()
        if count < chord[0]:
            return None
        conn.execute("UPDATE celeriac_chords SET done = 1 WHERE group_id = ?", (group_id,))
        rows = conn.execute(
            "DELETE FROM celeriac_chord_parts WHERE group_id = ? "
            "RETURNING task_id, idx, status, result",
            (group_id,),
        ).fetchall()
        parts = [
            ChordPart(group_id, tid, idx, status, _loads(res)) for tid, idx, status, res in rows
        ]
        parts.sort(key=lambda p: p.index)
        conn.execute(
            "INSERT OR REPLACE INTO celeriac_chord_done (group_id, completed_by, parts, stored_at) "
            "VALUES (?, ?, ?, ?)",
            (group_id, part.task_id,
             _dumps([[p.task_id, p.index, p.status, p.result] for p in parts]), time.time()),
        )
    return parts
