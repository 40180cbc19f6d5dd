"""One Redis pub/sub connection read by hand, for blocking result waits.

redis-py's ``PubSub.get_message`` costs ~100 us of client CPU per message here
(a readiness poll, its retry wrapper, response callbacks, a dict per message),
and a sequential ``delay().get()`` reads three messages per call (the
subscription's confirmation, the result, a share of the batched
unsubscriptions). This keeps a connection of redis-py's pool for itself --
redis-py still connects it (TLS, AUTH, Sentinel, unix sockets) -- and then
talks on the raw socket: ``SUBSCRIBE``/``UNSUBSCRIBE`` are written without
waiting for their confirmation, and every read takes whatever bytes have
arrived and splits them into replies with hiredis's RESP parser. The socket
stays non-blocking; a wait with a timeout polls the descriptor first.

Replies come back as hiredis gives them: ``[b"message", channel, data]``,
``[b"subscribe", channel, count]``, ``[b"unsubscribe", channel, count]``.
Errors are redis-py's or ``OSError``; after one the connection is dropped
and stays closed until :meth:`PushConnection.connect` (the caller then
subscribes again).
"""

from __future__ import annotations

import contextlib
import select
import ssl
from collections.abc import Iterable
from typing import Any

import hiredis
import redis
import redis.exceptions

__all__ = ["PushConnection"]

_CHUNK = 256 * 1024
_WOULD_BLOCK = (BlockingIOError, InterruptedError, ssl.SSLWantReadError)


class PushConnection:
    """A subscribed connection: fire-and-forget commands, batched reads."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._conn: Any = None
        self._sock: Any = None
        self._poll: Any = None
        self._reader: Any = None

    @property
    def connected(self) -> bool:
        """Whether a socket is open (it may still turn out to be dead on use)."""
        return self._sock is not None

    def connect(self) -> None:
        """Open (or reopen) the connection; raises redis-py's connection errors."""
        self.close()
        pool = self._client.connection_pool
        conn = pool.get_connection()
        sock = conn._sock  # redis-py connected and authenticated it; we read it from now on
        if sock is None:  # pragma: no cover - a pool hands out connected connections
            pool.release(conn)
            raise redis.exceptions.ConnectionError("no socket after connecting")
        sock.setblocking(False)
        poll = select.poll()
        poll.register(sock.fileno(), select.POLLIN)
        self._conn, self._sock, self._poll = conn, sock, poll
        self._reader = hiredis.Reader()

    def send(self, commands: Iterable[tuple[Any, ...]]) -> None:
        """Write ``commands`` in one go without reading replies."""
        if self._sock is None:
            raise redis.exceptions.ConnectionError("the pub/sub connection is not open")
        data = b"".join(hiredis.pack_command(command) for command in commands)
        sock = self._sock
        try:
            # Non-blocking: a full send buffer (a reader far behind) waits for room.
            view = memoryview(data)
            while view:
                try:
                    sent = sock.send(view)
                except (BlockingIOError, InterruptedError, ssl.SSLWantWriteError):
                    select.select([], [sock], [], 5.0)
                    continue
                view = view[sent:]
        except BaseException:
            self._close_if(sock)
            raise

    def read(self, timeout: float) -> list[Any]:
        """The replies that have arrived, waiting up to ``timeout`` s for the first bytes.

        An empty list means nothing came in time. ``timeout`` 0 only takes what
        is already there.
        """
        if self._sock is None:
            raise redis.exceptions.ConnectionError("the pub/sub connection is not open")
        sock, reader, poll = self._sock, self._reader, self._poll
        try:
            buffered = isinstance(sock, ssl.SSLSocket) and sock.pending()
            if timeout > 0 and not buffered and not poll.poll(timeout * 1000.0):
                return []
            try:
                data = sock.recv(_CHUNK)
            except _WOULD_BLOCK:
                return []
            if not data:
                raise redis.exceptions.ConnectionError("Redis closed the pub/sub connection")
            reader.feed(data)
            replies = []
            reply = reader.gets()
            while reply is not False:
                replies.append(reply)
                reply = reader.gets()
            return replies
        except hiredis.ProtocolError as exc:
            self._close_if(sock)
            raise redis.exceptions.ConnectionError(f"unreadable pub/sub reply: {exc}") from exc
        except BaseException:
            self._close_if(sock)
            raise

    def _close_if(self, sock: Any) -> None:
        # Another thread may have replaced the connection meanwhile: keep the new one.
        if self._sock is sock:
            self.close()

    def close(self) -> None:
        """Drop the connection (idempotent)."""
        conn, self._conn, self._sock, self._poll, self._reader = self._conn, None, None, None, None
        if conn is not None:
            with contextlib.suppress(redis.exceptions.RedisError, OSError):
                conn.disconnect()
            self._client.connection_pool.release(conn)
