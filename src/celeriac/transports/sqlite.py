"""The embedded default broker: one SQLite file shared by every process on the machine.

``sqlite:///relative.db``, ``sqlite:////absolute/path.db``, or ``sqlite://`` for
``./celeriac.sqlite``. Producers and workers open the same file (WAL journal),
so nothing has to be installed or started.

How it behaves:

* **Claiming** is one ``UPDATE ... RETURNING`` inside ``BEGIN IMMEDIATE``: up to
  ``limit`` ready rows, earlier queues in the given list first, then higher
  ``priority`` first (higher number runs first, as on AMQP; ``None`` is 0), then
  publication order. A cheap read checks first, so idle workers never take the
  write lock.
* **Leases**: a claimed row is invisible until ``now + lease_seconds`` and owned
  by the claiming transport. :meth:`SqliteTransport.maintain` renews the leases
  it holds every ``lease_seconds / 3``. Nothing else is needed for recovery: a
  worker killed with SIGKILL stops renewing, and its messages run again within
  ``lease_seconds`` (30 s by default), flagged ``redelivered``.
* **Waking**: workers poll with an adaptive delay (5 ms, doubling up to
  ``poll_interval`` while idle, back to 5 ms when work is found); a publish in
  the same process wakes them at once.
* **ETA** (``supports_delayed``): a delayed row simply becomes visible at its ETA.
* **Routing** uses :mod:`celeriac.transports._virtual` with bindings kept in the
  file; unroutable messages go to the dead-letter table with the reason.
* **Broadcast** (control and events): rows with increasing ids in a table that
  subscribers poll for ids above the last they saw; rows older than a minute go.

The storage format is celeriac's own, not Celery's: the envelope's properties
are a small orjson array and its body a raw blob.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import time
from collections.abc import Sequence
from functools import lru_cache, partial
from typing import Any

from celeriac.protocol.envelope import Envelope
from celeriac.transports import _virtual
from celeriac.transports._sqlite_db import (
    Backoff,
    SqliteDB,
    decode_envelope,
    encode_props,
    immediate,
    notifier_for,
    sqlite_path,
)
from celeriac.transports.base import (
    Binding,
    Delivery,
    OnBroadcast,
    QueueSpec,
    Transport,
    TransportOptions,
    raise_if_cancelled,
)

__all__ = ["SqliteTransport"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS celeriac_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    eta REAL,
    visible_at REAL NOT NULL DEFAULT 0,
    lease_owner TEXT,
    delivered_count INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    props BLOB NOT NULL,
    body BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS celeriac_messages_claim
    ON celeriac_messages (queue, priority DESC, id);
CREATE TABLE IF NOT EXISTS celeriac_dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    reason TEXT NOT NULL,
    failed_at REAL NOT NULL,
    props BLOB NOT NULL,
    body BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS celeriac_dead_letters_queue ON celeriac_dead_letters (queue, id);
CREATE TABLE IF NOT EXISTS celeriac_bindings (
    exchange TEXT NOT NULL,
    routing_key TEXT NOT NULL,
    queue TEXT NOT NULL,
    exchange_type TEXT NOT NULL,
    PRIMARY KEY (exchange, routing_key, queue)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS celeriac_broadcast (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    exchange TEXT NOT NULL,
    routing_key TEXT NOT NULL,
    created REAL NOT NULL,
    props BLOB NOT NULL,
    body BLOB NOT NULL
);
"""

#: Broadcast rows older than this are deleted (subscribers poll far more often).
BROADCAST_TTL = 60.0
_CHUNK = 500  # ids per statement, well under SQLite's bound-variable limit


@lru_cache(maxsize=64)
def _pick_sql(n_queues: int) -> str:
    # One sub-select per queue keeps each on the (queue, priority, id) index.
    parts = [
        f"SELECT * FROM (SELECT id, {i} AS qo, priority FROM celeriac_messages "
        "WHERE queue = ? AND visible_at <= ? ORDER BY priority DESC, id LIMIT ?)"
        for i in range(n_queues)
    ]
    return " UNION ALL ".join(parts) + " ORDER BY qo, priority DESC, id LIMIT ?"


def _ids(items: Sequence[int]) -> list[Sequence[int]]:
    return [items[i : i + _CHUNK] for i in range(0, len(items), _CHUNK)]


class SqliteTransport(Transport):
    """The broker behind ``sqlite://`` URLs (see the module docstring)."""

    schemes = ("sqlite",)
    supports_delayed = True
    supports_priority = True

    def __init__(self, url: str = "sqlite://", options: TransportOptions | None = None) -> None:
        super().__init__(url, options)
        self.path = sqlite_path(url)
        self._db = SqliteDB(self.path, SCHEMA, role="broker")
        self._messages = notifier_for(self.path, "messages")
        self._broadcasts = notifier_for(self.path, "broadcast")
        self._consumer = f"{os.uname().nodename}:{os.getpid()}:{id(self):x}"
        self._held: set[int] = set()
        self._backoff = Backoff(0.005, self.options.poll_interval)
        self._last_broadcast_cleanup = 0.0

    # -- lifecycle ---------------------------------------------------------
    async def connect(self) -> None:
        """Open the file (creating tables); raise ``BrokerUnreachable`` if impossible."""
        await self._db.run(lambda conn: None)

    async def close(self) -> None:
        """Close the async connection and its thread; idempotent."""
        await self._db.close()

    def close_sync(self) -> None:
        """Close the sync connection; idempotent."""
        self._db.close_sync()

    # -- topology ----------------------------------------------------------
    async def declare(self, queues: Sequence[QueueSpec]) -> None:
        """Store the bindings of ``queues`` in the file (idempotent)."""
        bindings = _virtual.bindings_for(queues)
        await self._db.run(lambda conn: _insert_bindings(conn, bindings))

    def declare_sync(self, queues: Sequence[QueueSpec]) -> None:
        """Sync face of :meth:`declare`."""
        bindings = _virtual.bindings_for(queues)
        self._db.run_sync(lambda conn: _insert_bindings(conn, bindings))

    # -- publishing --------------------------------------------------------
    async def publish(self, envelope: Envelope, *, eta: float | None = None) -> None:
        """Store one message (visible at ``eta`` when given)."""
        await self.publish_many([(envelope, eta)])

    async def publish_many(self, items: Sequence[tuple[Envelope, float | None]]) -> None:
        """Store many messages in one transaction."""
        rows = [(envelope, eta, encode_props(envelope)) for envelope, eta in items]
        await self._db.run(lambda conn: _insert_messages(conn, rows))
        self._messages.notify()

    def publish_sync(self, envelope: Envelope, *, eta: float | None = None) -> None:
        """Blocking :meth:`publish` on the sync connection."""
        self.publish_many_sync([(envelope, eta)])

    def publish_many_sync(self, items: Sequence[tuple[Envelope, float | None]]) -> None:
        """Blocking :meth:`publish_many`."""
        rows = [(envelope, eta, encode_props(envelope)) for envelope, eta in items]
        self._db.run_sync(lambda conn: _insert_messages(conn, rows))
        self._messages.notify()

    # -- consuming ---------------------------------------------------------
    async def fetch(self, queues: Sequence[str], limit: int, timeout: float) -> list[Delivery]:
        """Claim up to ``limit`` ready messages, polling up to ``timeout`` seconds."""
        queues = list(queues)
        if not queues or limit <= 0:
            return []
        deadline = time.monotonic() + timeout
        with self._messages.waiter() as event:
            while True:
                event.clear()
                out = await self._claim_once(queues, limit)
                if out:
                    self._backoff.reset()
                    return out
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return []
                try:
                    await asyncio.wait_for(event.wait(), min(self._backoff.next(), remaining))
                except TimeoutError:
                    pass
                else:
                    self._backoff.reset()
                raise_if_cancelled()

    async def _claim_once(self, queues: list[str], limit: int) -> list[Delivery]:
        lease_until_delta = self.options.lease_seconds
        owner = self._consumer

        def claim(conn: sqlite3.Connection) -> list[Delivery]:
            return _claim(conn, queues, limit, owner, lease_until_delta)

        future = self._db.submit(claim)
        try:
            out = await asyncio.shield(future)
        except asyncio.CancelledError:
            # The claim may have committed already; hand the rows straight back
            # rather than leaving them invisible for a whole lease.
            with contextlib.suppress(Exception):  # a failed claim holds nothing
                claimed = await future
                if claimed:
                    tags = [d.tag for d in claimed]
                    await self._db.run(lambda conn: _release(conn, tags, owner))
                    self._messages.notify()
            raise
        self._held.update(d.tag for d in out)
        return out

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        """Delete acknowledged messages in one transaction (only rows this consumer holds)."""
        tags = [int(d.tag) for d in deliveries]
        self._held.difference_update(tags)
        if tags:
            await self._db.run(lambda conn: _delete_owned(conn, tags, self._consumer))

    async def reject(self, delivery: Delivery, *, requeue: bool, reason: str = "") -> None:
        """Requeue (clear the lease) or move the row to the dead-letter table with ``reason``."""
        tag = int(delivery.tag)
        self._held.discard(tag)
        owner = self._consumer
        if requeue:
            await self._db.run(lambda conn: _release(conn, [tag], owner))
            self._messages.notify()
        else:
            await self._db.run(lambda conn: _dead_letter(conn, tag, owner, reason))

    async def defer(self, delivery: Delivery, eta: float) -> None:
        """Make a fetched message invisible until ``eta`` and release it, atomically."""
        tag = int(delivery.tag)
        self._held.discard(tag)
        sql = (
            "UPDATE celeriac_messages SET eta = ?, visible_at = ?, lease_owner = NULL, "
            "delivered_count = 0 WHERE id = ? AND lease_owner = ?"
        )
        await self._db.run(lambda conn: conn.execute(sql, (eta, eta, tag, self._consumer)))
        self._messages.notify()

    async def maintain(self) -> None:
        """Renew this consumer's leases every ``lease_seconds / 3`` until cancelled."""
        while True:
            await asyncio.sleep(self.options.lease_seconds / 3)
            held = sorted(self._held)
            if not held:
                continue
            until = time.time() + self.options.lease_seconds
            kept = await self._db.run(partial(_renew, tags=held, owner=self._consumer, until=until))
            # Leases that ran out and were claimed by someone else are not ours any more.
            self._held.difference_update(set(held) - kept)

    # -- inspection --------------------------------------------------------
    async def queue_length(self, queue: str) -> int:
        """Ready messages in ``queue`` (not delayed, not leased)."""
        return await self._db.run(lambda conn: _count_ready(conn, queue))

    def queue_length_sync(self, queue: str) -> int:
        """Sync face of :meth:`queue_length`."""
        return self._db.run_sync(lambda conn: _count_ready(conn, queue))

    async def purge(self, queue: str) -> int:
        """Delete the ready messages of ``queue``; return how many."""
        sql = "DELETE FROM celeriac_messages WHERE queue = ? AND visible_at <= ?"
        return await self._db.run(lambda conn: conn.execute(sql, (queue, time.time())).rowcount)

    async def dead_letters(self, queue: str) -> list[tuple[Envelope, str]]:
        """Dead-lettered messages of ``queue`` with their reasons, oldest first."""
        sql = "SELECT props, body, reason FROM celeriac_dead_letters WHERE queue = ? ORDER BY id"
        rows = await self._db.run(lambda conn: conn.execute(sql, (queue,)).fetchall())
        return [(decode_envelope(props, body), reason) for props, body, reason in rows]

    # -- broadcast ---------------------------------------------------------
    async def broadcast(self, exchange: str, envelope: Envelope) -> None:
        """Append ``envelope`` to the broadcast table for current subscribers."""
        props = encode_props(envelope)
        now = time.time()
        cleanup = now - self._last_broadcast_cleanup > BROADCAST_TTL / 6
        if cleanup:
            self._last_broadcast_cleanup = now

        def insert(conn: sqlite3.Connection) -> None:
            with immediate(conn):
                conn.execute(
                    "INSERT INTO celeriac_broadcast (exchange, routing_key, created, props, body)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (exchange, envelope.routing_key, now, props, envelope.body),
                )
                if cleanup:
                    conn.execute(
                        "DELETE FROM celeriac_broadcast WHERE created < ?", (now - BROADCAST_TTL,)
                    )

        await self._db.run(insert)
        self._broadcasts.notify()

    async def subscribe(
        self, exchange: str, binding_keys: Sequence[str], handler: OnBroadcast
    ) -> None:
        """Call ``handler`` for each new broadcast on ``exchange`` matching ``binding_keys``
        (topic patterns; none means all) until cancelled."""
        patterns = tuple(binding_keys)
        last: int = await self._db.run(
            lambda conn: conn.execute(
                "SELECT coalesce(max(id), 0) FROM celeriac_broadcast"
            ).fetchone()[0]
        )
        backoff = Backoff(0.005, self.options.poll_interval)
        sql = (
            "SELECT id, routing_key, props, body FROM celeriac_broadcast "
            "WHERE id > ? AND exchange = ? ORDER BY id"
        )
        with self._broadcasts.waiter() as event:
            while True:
                event.clear()
                rows = await self._db.run(partial(_select_all, sql=sql, params=(last, exchange)))
                for row_id, routing_key, props, body in rows:
                    last = row_id
                    if _virtual.matches_any(patterns, routing_key):
                        await _virtual.call_handler(handler, decode_envelope(props, body))
                if rows:
                    backoff.reset()
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), backoff.next())
                raise_if_cancelled()


# -- statements (run in the database thread or under the sync lock) ---------


def _insert_bindings(conn: sqlite3.Connection, bindings: Sequence[Binding]) -> None:
    if not bindings:
        return
    with immediate(conn):
        conn.executemany(
            "INSERT OR IGNORE INTO celeriac_bindings (exchange, routing_key, queue, exchange_type)"
            " VALUES (?, ?, ?, ?)",
            [(b.exchange, b.routing_key, b.queue, b.exchange_type) for b in bindings],
        )


def _bindings_of(conn: sqlite3.Connection, exchange: str) -> list[Binding]:
    rows = conn.execute(
        "SELECT routing_key, queue, exchange_type FROM celeriac_bindings WHERE exchange = ?",
        (exchange,),
    ).fetchall()
    return [Binding(exchange, key, queue, kind) for key, queue, kind in rows]


def _insert_messages(
    conn: sqlite3.Connection, rows: Sequence[tuple[Envelope, float | None, bytes]]
) -> None:
    now = time.time()
    bindings: dict[str, list[Binding]] = {}
    messages: list[tuple[Any, ...]] = []
    dead: list[tuple[Any, ...]] = []
    with immediate(conn):
        for envelope, eta, props in rows:
            exchange = envelope.exchange
            if exchange and exchange not in bindings:
                bindings[exchange] = _bindings_of(conn, exchange)
            queues = _virtual.route(bindings.get(exchange, ()), exchange, envelope.routing_key)
            if not queues:
                reason = _virtual.unroutable_reason(envelope)
                dead.append((envelope.routing_key, reason, now, props, envelope.body))
            visible_at = eta if eta is not None else 0.0
            priority = envelope.priority or 0
            messages.extend(
                (queue, priority, eta, visible_at, now, props, envelope.body) for queue in queues
            )
        conn.executemany(
            "INSERT INTO celeriac_messages (queue, priority, eta, visible_at, created, props, body)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            messages,
        )
        if dead:
            conn.executemany(
                "INSERT INTO celeriac_dead_letters (queue, reason, failed_at, props, body)"
                " VALUES (?, ?, ?, ?, ?)",
                dead,
            )


def _claim(
    conn: sqlite3.Connection, queues: list[str], limit: int, owner: str, lease: float
) -> list[Delivery]:
    now = time.time()
    pick = _pick_sql(len(queues))
    params: list[Any] = []
    for queue in queues:
        params += [queue, now, limit]
    params.append(limit)
    if not conn.execute(pick, params).fetchone():
        return []  # nothing ready: do not take the write lock
    with immediate(conn):
        rows = conn.execute(
            "UPDATE celeriac_messages SET visible_at = ?, lease_owner = ?, "
            f"delivered_count = delivered_count + 1 WHERE id IN (SELECT id FROM ({pick})) "
            "RETURNING id, queue, priority, delivered_count, props, body",
            [now + lease, owner, *params],
        ).fetchall()
    order = {queue: i for i, queue in enumerate(queues)}
    rows.sort(key=lambda r: (order[r[1]], -r[2], r[0]))
    return [
        Delivery(decode_envelope(props, body), queue, row_id, count > 1)
        for row_id, queue, _, count, props, body in rows
    ]


def _release(conn: sqlite3.Connection, tags: Sequence[int], owner: str) -> None:
    with immediate(conn):
        for chunk in _ids(tags):
            marks = ",".join("?" * len(chunk))
            conn.execute(
                "UPDATE celeriac_messages SET visible_at = 0, lease_owner = NULL "
                f"WHERE id IN ({marks}) AND lease_owner = ?",
                [*chunk, owner],
            )


def _delete_owned(conn: sqlite3.Connection, tags: Sequence[int], owner: str) -> None:
    with immediate(conn):
        for chunk in _ids(tags):
            marks = ",".join("?" * len(chunk))
            conn.execute(
                f"DELETE FROM celeriac_messages WHERE id IN ({marks}) AND lease_owner = ?",
                [*chunk, owner],
            )


def _dead_letter(conn: sqlite3.Connection, tag: int, owner: str, reason: str) -> None:
    with immediate(conn):
        conn.execute(
            "INSERT INTO celeriac_dead_letters (queue, reason, failed_at, props, body) "
            "SELECT queue, ?, ?, props, body FROM celeriac_messages "
            "WHERE id = ? AND lease_owner = ?",
            (reason, time.time(), tag, owner),
        )
        conn.execute("DELETE FROM celeriac_messages WHERE id = ? AND lease_owner = ?", (tag, owner))


def _renew(conn: sqlite3.Connection, tags: Sequence[int], owner: str, until: float) -> set[int]:
    kept: set[int] = set()
    with immediate(conn):
        for chunk in _ids(tags):
            marks = ",".join("?" * len(chunk))
            rows = conn.execute(
                f"UPDATE celeriac_messages SET visible_at = ? WHERE id IN ({marks}) "
                "AND lease_owner = ? RETURNING id",
                [until, *chunk, owner],
            ).fetchall()
            kept.update(row[0] for row in rows)
    return kept


def _select_all(conn: sqlite3.Connection, sql: str, params: Sequence[Any]) -> list[Any]:
    return conn.execute(sql, params).fetchall()


def _count_ready(conn: sqlite3.Connection, queue: str) -> int:
    row = conn.execute(
        "SELECT count(*) FROM celeriac_messages WHERE queue = ? AND visible_at <= ?",
        (queue, time.time()),
    ).fetchone()
    return int(row[0])
