"""The beat store interface, and the stores that need no server (memory, file).

One interface, :class:`BeatStore`, with blocking methods (the scheduler calls
them in a thread; the API and the CLI call them directly):

* **Run marks.** ``claim(name, due, holder)`` atomically moves an entry's mark
  (the due instant of its last run) forward to ``due``, and only if ``holder``
  holds the leader lease. It answers ``CLAIMED`` once per (entry, due instant):
  a mark that is already at or past ``due`` gives ``DONE``, so no two
  processes (nor one process after a restart) send the same run twice.
* **Leader lease.** ``acquire(holder, seconds)`` takes the lease when it is
  free or expired and renews it when ``holder`` has it.
* **Dynamic entries.** ``put_entry``/``remove_entry``/``entries`` with a
  ``version`` counter that changes on every edit, so beats reload cheaply.

Implementations: :class:`MemoryStore` (one process, tests), :class:`FileStore`
(the default when the broker cannot hold the state: a JSON file, atomic
writes, leadership by ``flock``), ``RedisStore`` and ``SqliteStore`` (shared by
every beat on that broker; in ``_store_redis``/``_store_sqlite``).
``celeriac.beat.stores.open_store`` picks one for an app. Keys and tables are celeriac's own,
under ``celeriac.beat.<app>.`` (see ``docs/decisions-beat-scheduler.md``).
"""

from __future__ import annotations

import contextlib
import enum
import fcntl
import json
import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from celeriac.beat.entries import from_us, to_us
from celeriac.errors import ConfigurationError, OperationalError

__all__ = ["BeatStore", "Claim", "FileStore", "MemoryStore", "store_namespace"]

_FILE_FORMAT = "celeriac-beat-1"


class Claim(enum.Enum):
    """The answer of :meth:`BeatStore.claim`."""

    #: This caller owns the run: send it.
    CLAIMED = "claimed"
    #: The run (or a later one) was already claimed: do not send.
    DONE = "done"
    #: The caller does not hold the leader lease: do not send.
    NOT_LEADER = "not-leader"


def store_namespace(app_name: str | None) -> str:
    """The prefix of every key or row beat keeps for an app."""
    return f"celeriac.beat.{app_name or 'default'}"


class BeatStore(ABC):
    """Persistent beat state (see the module docstring). Methods block; they are
    called from a thread by the scheduler."""

    #: True when several processes on several hosts can share this store.
    shared: bool = False

    @abstractmethod
    def describe(self) -> str:
        """Where the state lives, for the banner (no passwords)."""

    @abstractmethod
    def marks(self) -> dict[str, datetime]:
        """Entry name -> due instant of its last claimed run."""

    @abstractmethod
    def claim(self, name: str, due: datetime, holder: str) -> Claim:
        """Move ``name``'s mark to ``due`` if it is earlier and ``holder`` leads."""

    @abstractmethod
    def acquire(self, holder: str, seconds: float) -> bool:
        """Take or renew the leader lease for ``seconds``; True when ``holder`` has it."""

    @abstractmethod
    def release(self, holder: str) -> None:
        """Give the lease up if ``holder`` has it (a standby takes over at once)."""

    @abstractmethod
    def entries(self) -> dict[str, dict[str, Any]]:
        """Dynamic entries: name -> ``Entry.to_dict()`` data."""

    @abstractmethod
    def version(self) -> int:
        """A number that changes whenever dynamic entries change."""

    @abstractmethod
    def put_entry(self, name: str, data: Mapping[str, Any]) -> None:
        """Add or replace a dynamic entry (its run mark is kept)."""

    @abstractmethod
    def remove_entry(self, name: str) -> bool:
        """Remove a dynamic entry and its run mark; False if there was none."""

    def close(self) -> None:
        """Release connections and locks."""


class MemoryStore(BeatStore):
    """State in this process only: for tests and ``memory://`` brokers.

    Several schedulers in one process may share one instance (the lease makes
    one of them the leader).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._marks: dict[str, datetime] = {}
        self._entries: dict[str, dict[str, Any]] = {}
        self._version = 0
        self._holder: str | None = None
        self._expires = 0.0

    def describe(self) -> str:
        """``memory``."""
        return "memory (this process only)"

    def _leads(self, holder: str) -> bool:
        return self._holder == holder and time.monotonic() < self._expires

    def marks(self) -> dict[str, datetime]:
        """A copy of the marks."""
        with self._lock:
            return dict(self._marks)

    def claim(self, name: str, due: datetime, holder: str) -> Claim:
        """See :meth:`BeatStore.claim`."""
        with self._lock:
            if not self._leads(holder):
                return Claim.NOT_LEADER
            current = self._marks.get(name)
            if current is not None and current >= due:
                return Claim.DONE
            self._marks[name] = due
            return Claim.CLAIMED

    def acquire(self, holder: str, seconds: float) -> bool:
        """See :meth:`BeatStore.acquire`."""
        with self._lock:
            now = time.monotonic()
            if self._holder in (None, holder) or now >= self._expires:
                self._holder, self._expires = holder, now + seconds
                return True
            return False

    def release(self, holder: str) -> None:
        """See :meth:`BeatStore.release`."""
        with self._lock:
            if self._holder == holder:
                self._holder, self._expires = None, 0.0

    def entries(self) -> dict[str, dict[str, Any]]:
        """See :meth:`BeatStore.entries`."""
        with self._lock:
            return {name: dict(data) for name, data in self._entries.items()}

    def version(self) -> int:
        """See :meth:`BeatStore.version`."""
        return self._version

    def put_entry(self, name: str, data: Mapping[str, Any]) -> None:
        """See :meth:`BeatStore.put_entry`."""
        with self._lock:
            self._entries[name] = dict(data)
            self._version += 1

    def remove_entry(self, name: str) -> bool:
        """See :meth:`BeatStore.remove_entry`."""
        with self._lock:
            found = self._entries.pop(name, None) is not None
            self._marks.pop(name, None)
            self._version += 1
            return found


class FileStore(BeatStore):
    """State in a JSON file (``--schedule``/``beat_schedule_filename``).

    Writes go to a temporary file that replaces the old one (a crash leaves
    the old or the new state, never half of one). Edits take a short ``flock``
    on ``<path>.wlock`` so the CLI and a running beat do not lose each other's
    changes. Leadership is a ``flock`` on ``<path>.lock`` held while leading:
    the kernel frees it when the process dies, so a second beat on the same
    file waits as a standby. The file protects beats on one host only.
    """

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)
        self._lead_fd: int | None = None
        self._holder: str | None = None
        self._lock = threading.Lock()

    def describe(self) -> str:
        """``file <path>``."""
        return f"file {self.path}"

    # -- the file ------------------------------------------------------------
    def _read(self) -> dict[str, Any]:
        try:
            with open(self.path, "rb") as fh:
                raw = fh.read()
        except FileNotFoundError:
            return {"format": _FILE_FORMAT, "marks": {}, "entries": {}, "version": 0}
        except OSError as exc:
            raise OperationalError(f"cannot read beat state file {self.path}: {exc}") from exc
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        if not isinstance(data, dict) or data.get("format") != _FILE_FORMAT:
            raise ConfigurationError(
                f"{self.path} is not a celeriac beat state file (a Celery shelve file?); "
                "move it away or pass another --schedule path"
            )
        return data

    def _write(self, data: dict[str, Any]) -> None:
        tmp = f"{self.path}.tmp{os.getpid()}.{threading.get_ident()}"
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(data, fh, indent=1, sort_keys=True)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise OperationalError(f"cannot write beat state file {self.path}: {exc}") from exc

    @contextlib.contextmanager
    def _editing(self) -> Iterator[dict[str, Any]]:
        with self._lock:
            fd = os.open(f"{self.path}.wlock", os.O_CREAT | os.O_RDWR, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                data = self._read()
                before = json.dumps(data, sort_keys=True)
                yield data
                if json.dumps(data, sort_keys=True) != before:
                    self._write(data)
            finally:
                os.close(fd)

    # -- state ---------------------------------------------------------------
    def marks(self) -> dict[str, datetime]:
        """The marks in the file."""
        return {name: from_us(us) for name, us in self._read()["marks"].items()}

    def claim(self, name: str, due: datetime, holder: str) -> Claim:
        """See :meth:`BeatStore.claim`; the lease is this process's ``flock``."""
        if self._holder != holder or self._lead_fd is None:
            return Claim.NOT_LEADER
        with self._editing() as data:
            current = data["marks"].get(name)
            if current is not None and current >= to_us(due):
                return Claim.DONE
            data["marks"][name] = to_us(due)
        return Claim.CLAIMED

    def acquire(self, holder: str, seconds: float) -> bool:
        """Hold ``<path>.lock`` (non-blocking); ``seconds`` is not needed: death frees it."""
        with self._lock:
            if self._lead_fd is not None:
                return self._holder == holder
            fd = os.open(f"{self.path}.lock", os.O_CREAT | os.O_RDWR, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                return False
            self._lead_fd, self._holder = fd, holder
            return True

    def release(self, holder: str) -> None:
        """Unlock ``<path>.lock`` if ``holder`` has it."""
        with self._lock:
            if self._lead_fd is not None and self._holder == holder:
                os.close(self._lead_fd)
                self._lead_fd, self._holder = None, None

    def entries(self) -> dict[str, dict[str, Any]]:
        """See :meth:`BeatStore.entries`."""
        entries: dict[str, dict[str, Any]] = self._read()["entries"]
        return entries

    def version(self) -> int:
        """See :meth:`BeatStore.version`."""
        return int(self._read()["version"])

    def put_entry(self, name: str, data: Mapping[str, Any]) -> None:
        """See :meth:`BeatStore.put_entry`."""
        with self._editing() as state:
            state["entries"][name] = dict(data)
            state["version"] += 1

    def remove_entry(self, name: str) -> bool:
        """See :meth:`BeatStore.remove_entry`."""
        with self._editing() as state:
            found = state["entries"].pop(name, None) is not None
            state["marks"].pop(name, None)
            if found:
                state["version"] += 1
            return found

    def close(self) -> None:
        """Release the leader lock if held."""
        if self._holder is not None:
            self.release(self._holder)
