"""The sync publisher's Redis calls: one EVALSHA per call on a kept connection.

A sync ``delay()`` is one Lua script call, and redis-py's command path around
it (``Script.__call__``, argument inspection, hooks, retry wrapper, the pool's
checkout and return with its readiness poll, a socket in timeout mode that
polls before every ``send`` and ``recv``) costs as much client CPU as the round
trip itself. :class:`SyncScriptCaller` keeps one connection of the client's
pool for itself (connected, authenticated and set to its database by redis-py)
and, when it is a plain TCP or Unix socket, does the I/O itself:

* The command is written with one ``sendall`` and the reply read with
  ``recv`` into a hiredis reader. The socket is switched to blocking mode
  with the kernel's ``SO_SNDTIMEO``/``SO_RCVTIMEO`` set to the client's
  ``socket_timeout``, so a server that stops answering still fails the call
  after that bound, with one system call per write and per read.
* **Liveness.** A connection used in the last :data:`IDLE_CHECK_SECONDS` is
  used as it is. One that has been idle longer is first checked (a
  non-blocking peek: readable means the server closed it, or a stray reply)
  and replaced if needed; that catches Redis's idle ``timeout`` (at least one
  second) and restarts during a pause. A connection the server closes within
  the window (``CLIENT KILL``, a restart under load) fails the call with a
  connection error when the reply cannot be read: the server had closed it
  before it could read the command, so the caller's retry policy resends it
  on a new connection and there is no duplicate. Any failure but a whole
  error reply drops the connection, so a half-written command or half-read
  reply never reaches the next call.
* **Scripts** are called by SHA-1 (computed here, as Redis does); a
  ``NOSCRIPT`` reply (restart, ``SCRIPT FLUSH``) is answered with an ``EVAL``
  that loads the script again.

TLS connections (and platforms without ``MSG_DONTWAIT``) keep redis-py's
reads and writes on the kept connection, checked before each use as the pool
checks its own. The kept connection is used by one thread at a time; a
second thread calling at the same moment borrows another one from the pool.
A forked child never uses its parent's. Errors are redis-py's, for
``translate_error`` and the caller's retry policy.
"""

from __future__ import annotations

import hashlib
import os
import socket
import struct
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import hiredis
import redis
import redis.connection
import redis.exceptions

__all__ = ["IDLE_CHECK_SECONDS", "PackedScript", "SyncScriptCaller"]

#: Seconds a kept connection may sit unused and still be used without a check.
IDLE_CHECK_SECONDS = 0.25

_PEEK = getattr(socket, "MSG_PEEK", 0) | getattr(socket, "MSG_DONTWAIT", 0)
_LEAN_IO = hasattr(socket, "MSG_DONTWAIT") and hasattr(socket, "SO_RCVTIMEO")

# Error replies whose prefix names a redis-py exception (others: ResponseError).
_ERRORS: dict[str, type[redis.exceptions.RedisError]] = {
    "NOSCRIPT": redis.exceptions.NoScriptError,
    "READONLY": redis.exceptions.ReadOnlyError,
    "LOADING": redis.exceptions.BusyLoadingError,
    "NOAUTH": redis.exceptions.AuthenticationError,
    "WRONGPASS": redis.exceptions.AuthenticationError,
    "NOPERM": redis.exceptions.NoPermissionError,
    "OOM": redis.exceptions.OutOfMemoryError,
    "EXECABORT": redis.exceptions.ExecAbortError,
}


# Error replies after which the connection is dropped: the server it reaches is
# not (or not yet) the one to use (a demoted primary, one still loading).
_WRONG_SERVER = (redis.exceptions.ReadOnlyError, redis.exceptions.BusyLoadingError)

# redis-py connection classes whose socket we may write and read ourselves
# (a Sentinel-managed one turns READONLY into a reconnect; TLS has its own I/O).
_PLAIN_CONNECTIONS = (redis.connection.Connection, redis.connection.UnixDomainSocketConnection)


# Bumped in a forked child: callers made before the fork drop their connection.
_forks = 0


def _count_fork() -> None:
    global _forks
    _forks += 1


os.register_at_fork(after_in_child=_count_fork)


def _reply_error(message: str) -> Exception:
    """The redis-py exception for an error reply (hiredis calls this)."""
    code, _, rest = message.partition(" ")
    kind = _ERRORS.get(code)
    if kind is None:
        return redis.exceptions.ResponseError(message)
    return kind(rest)


def script_sha(source: str) -> str:
    """The SHA-1 Redis names ``source`` by (what ``SCRIPT LOAD`` returns)."""
    return hashlib.sha1(source.encode("utf-8")).hexdigest()


def _timeval(seconds: float) -> bytes:
    whole = int(seconds)
    return struct.pack("@ll", whole, min(round((seconds - whole) * 1e6), 999999))


class SyncScriptCaller:
    """Run Lua scripts on a sync redis-py client with one EVALSHA per call."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._shas: dict[str, str] = {}
        self._lock = threading.Lock()
        self._forks = _forks
        self._conn: Any = None
        self._raw: Any = None  # the connection's socket last adopted (or refused)
        self._sock: socket.socket | None = None  # that socket when the I/O is ours
        self._reader: Any = None
        self._fresh_until = 0.0  # monotonic; before it, use the connection unchecked

    def __call__(self, source: str, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        """Run ``source`` with ``keys`` and ``args``; return Redis's raw reply."""
        tail = (len(keys), *keys, *args)
        return self.run(hiredis.pack_command(("EVALSHA", self._sha(source), *tail)),
                        hiredis.pack_command, ("EVAL", source, *tail))

    def packed(self, source: str, keys: Sequence[Any], head: Sequence[Any],
               tail: Sequence[Any]) -> PackedScript:
        """A call of ``source`` whose arguments are ``head``, one value, ``tail``."""
        return PackedScript(self, source, self._sha(source), keys, head, tail)

    def _sha(self, source: str) -> str:
        sha = self._shas.get(source)
        if sha is None:
            sha = self._shas[source] = script_sha(source)
        return sha

    # -- one call ------------------------------------------------------------------
    def run(self, frame: bytes, eval_frame: Callable[[Any], bytes], value: Any) -> Any:
        """Send the EVALSHA command ``frame`` and return the reply; on ``NOSCRIPT``
        send ``eval_frame(value)`` (the same call as an EVAL) instead."""
        if not self._lock.acquire(blocking=False):
            return self._borrowed(frame, eval_frame, value)  # another thread holds ours
        try:
            now = time.monotonic()
            sock = self._sock
            if sock is None or now > self._fresh_until or self._forks != _forks:
                sock = self._ready()
                if sock is None:
                    return self._redis_py_call(self._conn, frame, eval_frame, value)
            try:
                reply = self._exchange(sock, frame)
                if type(reply) is redis.exceptions.NoScriptError:
                    reply = self._exchange(sock, eval_frame(value))
            except BaseException:
                self._drop()
                raise
            self._fresh_until = now + IDLE_CHECK_SECONDS
            if isinstance(reply, Exception):  # a whole error reply was read
                if isinstance(reply, _WRONG_SERVER):
                    self._drop()
                raise reply
        finally:
            self._lock.release()
        return reply

    def _exchange(self, sock: socket.socket, frame: bytes) -> Any:
        reader = self._reader
        try:
            sock.sendall(frame)
            while True:
                data = sock.recv(65536)
                if not data:
                    raise redis.exceptions.ConnectionError(
                        "Connection closed by server (before its reply).")
                reader.feed(data)
                reply = reader.gets()
                if reply is not False:
                    return reply
        except BlockingIOError:  # SO_SNDTIMEO / SO_RCVTIMEO ran out
            raise redis.exceptions.TimeoutError("Timeout talking to Redis") from None
        except OSError as exc:
            raise redis.exceptions.ConnectionError(
                f"Error {exc.errno} talking to Redis: {exc.strerror or exc}") from exc

    # -- the kept connection ---------------------------------------------------------
    def _ready(self) -> socket.socket | None:
        """The kept connection, connected and checked; its socket if the I/O is ours."""
        if self._forks != _forks:
            # in a forked child the parent's socket is not ours to use or close
            self._forks = _forks
            self._conn = self._raw = self._sock = None
        conn = self._conn
        if conn is None:
            conn = self._conn = self._client.connection_pool.get_connection()
        elif getattr(conn, "_sock", None) is not None and not self._alive(conn):
            conn.disconnect()
        conn.connect()  # no-op while connected; else a new socket (and handshake)
        raw = getattr(conn, "_sock", None)
        if raw is not self._raw:
            self._raw = raw
            self._sock = self._adopt(conn, raw)
            self._reader = hiredis.Reader(replyError=_reply_error)
        return self._sock

    def _alive(self, conn: Any) -> bool:
        """Whether the kept connection is usable: open, with nothing to read."""
        sock = self._sock
        if sock is not None and self._raw is getattr(conn, "_sock", None):
            try:
                sock.recv(1, _PEEK)
            except BlockingIOError:
                return True  # nothing to read: open and idle
            except OSError:
                return False
            return False  # closed by the server (b""), or a stray reply
        try:
            return not conn.can_read()
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError):
            return False

    @staticmethod
    def _adopt(conn: Any, raw: Any) -> socket.socket | None:
        """Set a plain socket up for our own I/O; None leaves the I/O to redis-py."""
        if not _LEAN_IO or type(raw) is not socket.socket or type(conn) not in _PLAIN_CONNECTIONS:
            return None
        timeout = getattr(conn, "socket_timeout", None)
        try:
            raw.settimeout(None)  # blocking: the kernel bounds each call instead
            value = _timeval(float(timeout)) if timeout else _timeval(0.0)
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, value)
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, value)
        except OSError:
            raw.settimeout(timeout)
            return None
        return raw

    def _drop(self) -> None:
        """Disconnect the kept connection (it reconnects on next use)."""
        self._sock = self._raw = None
        self._fresh_until = 0.0
        if self._conn is not None:
            self._conn.disconnect()

    def _borrowed(self, frame: bytes, eval_frame: Callable[[Any], bytes], value: Any) -> Any:
        pool = self._client.connection_pool
        conn = pool.get_connection()
        try:
            return self._redis_py_call(conn, frame, eval_frame, value)
        finally:
            pool.release(conn)

    @staticmethod
    def _redis_py_call(conn: Any, frame: bytes, eval_frame: Callable[[Any], bytes],
                       value: Any) -> Any:
        """One call through redis-py's own reads and writes on ``conn``."""
        try:
            conn.send_packed_command([frame])
            try:
                return conn.read_response()
            except redis.exceptions.NoScriptError:
                conn.send_packed_command([eval_frame(value)])
                return conn.read_response()
        except redis.exceptions.ResponseError:
            raise  # a whole error reply was read: the connection is fine
        except BaseException:
            # a half-written command or half-read reply must not reach the next caller
            conn.disconnect()
            raise


class PackedScript:
    """One script's call with fixed keys and arguments around one varying value.

    The command is packed once around a marker; each call only splices the
    value in (``PUBLISH`` of one element: everything but the element is fixed).
    """

    __slots__ = ("_caller", "_eval", "_evalsha")

    def __init__(self, caller: SyncScriptCaller, source: str, sha: str, keys: Sequence[Any],
                 head: Sequence[Any], tail: Sequence[Any]) -> None:
        self._caller = caller
        self._evalsha = self._split("EVALSHA", sha, keys, head, tail)
        self._eval = self._split("EVAL", source, keys, head, tail)

    @staticmethod
    def _split(verb: str, script: str, keys: Sequence[Any], head: Sequence[Any],
               tail: Sequence[Any]) -> tuple[bytes, bytes]:
        mark = b"\x00" + os.urandom(16).hex().encode()
        packed = hiredis.pack_command((verb, script, len(keys), *keys, *head, mark, *tail))
        item = b"$%d\r\n%s\r\n" % (len(mark), mark)
        before, found, after = packed.partition(item)
        if not found or item in after:
            raise ValueError("could not pack the script call around its value")
        return before, after

    def __call__(self, value: bytes) -> Any:
        """Run the script with ``value``; return Redis's raw reply."""
        before, after = self._evalsha
        frame = b"".join((before, b"$%d\r\n" % len(value), value, b"\r\n", after))
        return self._caller.run(frame, self._eval_frame, value)

    def _eval_frame(self, value: bytes) -> bytes:
        before, after = self._eval
        return b"".join((before, b"$%d\r\n" % len(value), value, b"\r\n", after))
