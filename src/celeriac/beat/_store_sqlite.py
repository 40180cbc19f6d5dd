"""The beat store in the SQLite broker file: shared by every beat on this host.

Tables (celeriac's own, beside the broker's), each row keyed by the app's
namespace ``celeriac.beat.<app>``:

* ``celeriac_beat_lease(ns, holder, expires)``: the lease. Taken or renewed by
  one ``UPDATE ... WHERE holder = me OR expires < now`` (atomic in SQLite).
* ``celeriac_beat_marks(ns, name, due_us)``: the due instant of each entry's
  last run. A claim checks the lease and then ``INSERT OR IGNORE``s or moves
  the mark forward, in one ``BEGIN IMMEDIATE`` transaction.
* ``celeriac_beat_entries(ns, name, data)`` and ``celeriac_beat_version(ns,
  version)`` for dynamic entries.

Expiry times are wall-clock seconds (``time.time()``): every process that
opens the file runs on the same host and reads the same clock.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from celeriac.beat._store_base import BeatStore, Claim
from celeriac.beat.entries import from_us, to_us
from celeriac.transports._sqlite_db import SqliteDB, immediate, sqlite_path

__all__ = ["SqliteStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS celeriac_beat_lease (
    ns TEXT PRIMARY KEY, holder TEXT NOT NULL, expires REAL NOT NULL);
CREATE TABLE IF NOT EXISTS celeriac_beat_marks (
    ns TEXT NOT NULL, name TEXT NOT NULL, due_us INTEGER NOT NULL, PRIMARY KEY (ns, name));
CREATE TABLE IF NOT EXISTS celeriac_beat_entries (
    ns TEXT NOT NULL, name TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY (ns, name));
CREATE TABLE IF NOT EXISTS celeriac_beat_version (
    ns TEXT PRIMARY KEY, version INTEGER NOT NULL);
"""


class SqliteStore(BeatStore):
    """Beat state in the broker's SQLite file (see the module docstring)."""

    shared = True

    def __init__(self, url: str, namespace: str) -> None:
        self.path = sqlite_path(url)
        self.ns = namespace
        self.db = SqliteDB(self.path, _SCHEMA, role="beat store")

    def describe(self) -> str:
        """``sqlite <path>``."""
        return f"sqlite {self.path} (namespace {self.ns})"

    def marks(self) -> dict[str, datetime]:
        """See :meth:`BeatStore.marks`."""
        rows = self.db.run_sync(
            lambda c: c.execute(
                "SELECT name, due_us FROM celeriac_beat_marks WHERE ns = ?", (self.ns,)
            ).fetchall()
        )
        return {name: from_us(us) for name, us in rows}

    def claim(self, name: str, due: datetime, holder: str) -> Claim:
        """See :meth:`BeatStore.claim`."""
        due_us = to_us(due)

        def run(conn: sqlite3.Connection) -> Claim:
            with immediate(conn):
                lease = conn.execute(
                    "SELECT holder, expires FROM celeriac_beat_lease WHERE ns = ?", (self.ns,)
                ).fetchone()
                if lease is None or lease[0] != holder or lease[1] <= time.time():
                    return Claim.NOT_LEADER
                inserted = conn.execute(
                    "INSERT OR IGNORE INTO celeriac_beat_marks (ns, name, due_us) VALUES (?, ?, ?)",
                    (self.ns, name, due_us),
                ).rowcount
                if inserted:
                    return Claim.CLAIMED
                moved = conn.execute(
                    "UPDATE celeriac_beat_marks SET due_us = ? "
                    "WHERE ns = ? AND name = ? AND due_us < ?",
                    (due_us, self.ns, name, due_us),
                ).rowcount
                return Claim.CLAIMED if moved else Claim.DONE

        return self.db.run_sync(run)

    def acquire(self, holder: str, seconds: float) -> bool:
        """See :meth:`BeatStore.acquire`."""

        def run(conn: sqlite3.Connection) -> bool:
            now = time.time()
            with immediate(conn):
                conn.execute(
                    "INSERT OR IGNORE INTO celeriac_beat_lease (ns, holder, expires) "
                    "VALUES (?, '', 0)",
                    (self.ns,),
                )
                return (
                    conn.execute(
                        "UPDATE celeriac_beat_lease SET holder = ?, expires = ? "
                        "WHERE ns = ? AND (holder = ? OR expires < ?)",
                        (holder, now + seconds, self.ns, holder, now),
                    ).rowcount
                    == 1
                )

        return self.db.run_sync(run)

    def release(self, holder: str) -> None:
        """See :meth:`BeatStore.release`."""
        self.db.run_sync(
            lambda c: c.execute(
                "UPDATE celeriac_beat_lease SET holder = '', expires = 0 "
                "WHERE ns = ? AND holder = ?",
                (self.ns, holder),
            )
        )

    def entries(self) -> dict[str, dict[str, Any]]:
        """See :meth:`BeatStore.entries`."""
        rows = self.db.run_sync(
            lambda c: c.execute(
                "SELECT name, data FROM celeriac_beat_entries WHERE ns = ?", (self.ns,)
            ).fetchall()
        )
        return {name: json.loads(data) for name, data in rows}

    def version(self) -> int:
        """See :meth:`BeatStore.version`."""
        row = self.db.run_sync(
            lambda c: c.execute(
                "SELECT version FROM celeriac_beat_version WHERE ns = ?", (self.ns,)
            ).fetchone()
        )
        return int(row[0]) if row else 0

    def _bump(self, conn: sqlite3.Connection) -> None:
        conn.execute(
            "INSERT INTO celeriac_beat_version (ns, version) VALUES (?, 1) "
            "ON CONFLICT (ns) DO UPDATE SET version = version + 1",
            (self.ns,),
        )

    def put_entry(self, name: str, data: Mapping[str, Any]) -> None:
        """See :meth:`BeatStore.put_entry`."""
        text = json.dumps(dict(data), sort_keys=True)

        def run(conn: sqlite3.Connection) -> None:
            with immediate(conn):
                conn.execute(
                    "INSERT OR REPLACE INTO celeriac_beat_entries (ns, name, data) "
                    "VALUES (?, ?, ?)",
                    (self.ns, name, text),
                )
                self._bump(conn)

        self.db.run_sync(run)

    def remove_entry(self, name: str) -> bool:
        """See :meth:`BeatStore.remove_entry`."""

        def run(conn: sqlite3.Connection) -> bool:
            with immediate(conn):
                found = conn.execute(
                    "DELETE FROM celeriac_beat_entries WHERE ns = ? AND name = ?", (self.ns, name)
                ).rowcount
                conn.execute(
                    "DELETE FROM celeriac_beat_marks WHERE ns = ? AND name = ?", (self.ns, name)
                )
                self._bump(conn)
                return bool(found)

        return self.db.run_sync(run)

    def close(self) -> None:
        """Close the connection."""
        self.db.close_sync()
