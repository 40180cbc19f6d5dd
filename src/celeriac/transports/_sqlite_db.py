"""What the SQLite broker and the SQLite result backend share: one file, opened well.

* :func:`sqlite_path` turns ``sqlite:///relative.db``, ``sqlite:////abs.db`` and
  ``sqlite://`` (``./celeriac.sqlite``) into an absolute path, and refuses
  ``:memory:`` (every process would get its own private database).
* :class:`SqliteDB` owns the connections: WAL journal, ``synchronous=NORMAL``,
  a busy timeout. The async face runs every statement in one dedicated thread
  (sqlite3 connections belong to the thread that made them, and the event loop
  must never block on disk); the sync face uses its own connection under a lock.
  ``sqlite3`` errors are translated into :mod:`celeriac.errors` naming the file.
* :func:`encode_props`/:func:`decode_envelope` store an envelope as a small
  orjson array of its properties plus its raw body (celeriac's own format).
* :class:`Notifier` wakes waiters in this process at once when a writer in this
  process commits; other processes are seen by short adaptive polling
  (:class:`Backoff`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import orjson

from celeriac.errors import BadURLError, BrokerUnreachable, EncodeError, OperationalError
from celeriac.protocol.envelope import Envelope

__all__ = [
    "DEFAULT_FILE",
    "Backoff",
    "Notifier",
    "SqliteDB",
    "decode_envelope",
    "encode_props",
    "immediate",
    "notifier_for",
    "sqlite_path",
]

T = TypeVar("T")

#: The file ``sqlite://`` names, in the current directory.
DEFAULT_FILE = "celeriac.sqlite"


def sqlite_path(url: str) -> str:
    """The absolute database path a ``sqlite://`` (or ``db+sqlite://``) URL names."""
    _, sep, rest = url.partition("://")
    if not sep:
        raise BadURLError(f"not a sqlite URL: {url!r}")
    rest = rest.split("?", 1)[0]
    if rest in ("", "/"):
        return os.path.abspath(DEFAULT_FILE)
    if not rest.startswith("/"):
        raise BadURLError(
            f"sqlite URLs have no host: {url!r}; use sqlite:///relative.db "
            "or sqlite:////absolute/path.db"
        )
    path = rest[1:]
    if path == ":memory:" or path.startswith("file::memory:") or "mode=memory" in url:
        raise BadURLError(
            f"{url!r}: an in-memory SQLite database cannot be shared between "
            "processes (producers and workers); name a file such as sqlite:///celeriac.sqlite, "
            "or use memory:// for a single process"
        )
    return os.path.abspath(path)


def encode_props(envelope: Envelope) -> bytes:
    """The envelope minus its body, as a compact orjson array (our private format)."""
    try:
        return orjson.dumps(
            [
                envelope.content_type,
                envelope.content_encoding,
                dict(envelope.headers),
                envelope.correlation_id,
                envelope.reply_to,
                envelope.priority,
                envelope.delivery_mode,
                envelope.expiration,
                envelope.exchange,
                envelope.routing_key,
                envelope.delivery_tag,
            ]
        )
    except TypeError as exc:
        raise EncodeError(f"message headers are not JSON-serialisable: {exc}") from exc


def decode_envelope(props: bytes, body: bytes) -> Envelope:
    """Rebuild an :class:`Envelope` from :func:`encode_props` output and the body."""
    (ctype, cenc, headers, corr, reply_to, prio, mode, expiration, exch, rkey, tag) = orjson.loads(
        props
    )
    return Envelope(
        body=bytes(body),
        content_type=ctype,
        content_encoding=cenc,
        headers=headers,
        correlation_id=corr,
        reply_to=reply_to,
        priority=prio,
        delivery_mode=mode,
        expiration=expiration,
        exchange=exch,
        routing_key=rkey,
        delivery_tag=tag,
    )


@contextlib.contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A write transaction taken up front (``BEGIN IMMEDIATE``), so it cannot deadlock
    upgrading from read to write; committed on success, rolled back on error."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.rollback()
        raise
    conn.commit()


class SqliteDB:
    """Connections to one SQLite file, with ``schema`` created on first open.

    ``role`` (``"broker"`` or ``"result backend"``) words the error messages; a
    file that cannot be opened raises :class:`~celeriac.errors.BrokerUnreachable`
    for the broker and :class:`~celeriac.errors.OperationalError` otherwise.
    """

    def __init__(self, path: str, schema: str, *, role: str, busy_timeout: float = 10.0) -> None:
        self.path = path
        self.schema = schema
        self.role = role
        self.busy_timeout = busy_timeout
        self._sync_conn: sqlite3.Connection | None = None
        self._sync_lock = threading.Lock()
        self._async_conn: sqlite3.Connection | None = None
        self._executor: ThreadPoolExecutor | None = None

    def _open(self) -> sqlite3.Connection:
        # isolation_level=None: we issue BEGIN ourselves, and single statements autocommit.
        conn = sqlite3.connect(
            self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.executescript(f"BEGIN IMMEDIATE;\n{self.schema}\nCOMMIT;")
        except BaseException:
            conn.close()
            raise
        return conn

    def _translate(self, exc: sqlite3.Error) -> Exception:
        text = str(exc)
        if self.role == "broker" and "unable to open" in text:
            return BrokerUnreachable(f"cannot open the sqlite broker file {self.path}: {text}")
        return OperationalError(f"sqlite {self.role} file {self.path}: {text}")

    # -- sync face ---------------------------------------------------------
    def run_sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(connection)`` on the sync connection, in the calling thread."""
        with self._sync_lock:
            try:
                if self._sync_conn is None:
                    self._sync_conn = self._open()
                return fn(self._sync_conn)
            except sqlite3.Error as exc:
                raise self._translate(exc) from exc

    def close_sync(self) -> None:
        """Close the sync connection; idempotent."""
        with self._sync_lock:
            if self._sync_conn is not None:
                self._sync_conn.close()
                self._sync_conn = None

    # -- async face --------------------------------------------------------
    def _in_thread(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        try:
            if self._async_conn is None:
                self._async_conn = self._open()
            return fn(self._async_conn)
        except sqlite3.Error as exc:
            raise self._translate(exc) from exc

    def submit(self, fn: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        """Start ``fn(connection)`` in the database thread; the future resolves on the loop."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="celeriac-sqlite")
        return asyncio.get_running_loop().run_in_executor(self._executor, self._in_thread, fn)

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(connection)`` in the database thread without blocking the loop."""
        return await self.submit(fn)

    async def close(self) -> None:
        """Close the async connection and stop its thread; idempotent."""
        executor, self._executor = self._executor, None
        if executor is None:
            return
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(executor, self._close_async_conn)
        executor.shutdown(wait=False)

    def _close_async_conn(self) -> None:
        if self._async_conn is not None:
            self._async_conn.close()
            self._async_conn = None


class Backoff:
    """Adaptive poll delay: starts at ``first``, doubles up to ``longest``, resets on work."""

    def __init__(self, first: float, longest: float) -> None:
        self.first = min(first, longest)
        self.longest = longest
        self._next = self.first

    def reset(self) -> None:
        """Found work: poll quickly again."""
        self._next = self.first

    def next(self) -> float:
        """The delay before the next poll (each call doubles the following one)."""
        delay = self._next
        self._next = min(delay * 2, self.longest)
        return delay


class Notifier:
    """In-process wake-ups for one (file, topic): writers call :meth:`notify`."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self.version = 0

    def notify(self) -> None:
        """Wake every waiter (sync and async) in this process."""
        with self._cond:
            self.version += 1
            self._cond.notify_all()
            waiters = list(self._waiters)
        for loop, event in waiters:
            with contextlib.suppress(RuntimeError):  # that loop is closed
                loop.call_soon_threadsafe(event.set)

    @contextlib.contextmanager
    def waiter(self) -> Iterator[asyncio.Event]:
        """An event set by every :meth:`notify` while the context is open."""
        event = asyncio.Event()
        key = (asyncio.get_running_loop(), event)
        with self._cond:
            self._waiters.add(key)
        try:
            yield event
        finally:
            with self._cond:
                self._waiters.discard(key)

    def wait_sync(self, seen_version: int, timeout: float) -> None:
        """Block up to ``timeout`` unless a notify happened since ``seen_version``."""
        with self._cond:
            if self.version == seen_version:
                self._cond.wait(timeout)


_NOTIFIERS: dict[tuple[str, str], Notifier] = {}
_NOTIFIERS_LOCK = threading.Lock()


def notifier_for(path: str, topic: str) -> Notifier:
    """The process-wide :class:`Notifier` of ``topic`` in the file at ``path``."""
    with _NOTIFIERS_LOCK:
        notifier = _NOTIFIERS.get((path, topic))
        if notifier is None:
            notifier = _NOTIFIERS[(path, topic)] = Notifier()
        return notifier
