"""A blocking reader of one reply queue: py-amqp opens it, our frame reader reads it.

Used by the sync side of the ``rpc://`` backend. Why not py-amqp's
``drain_events`` (bench/PROFILE.md, RabbitMQ R6): it reads each frame with
two exact-size ``recv`` calls and builds a message object through its generic
method dispatch, three frames per reply; and reading what was already waiting
with ``basic.get`` cost one round trip per reply (5,000 results waiting after
a burst of ``delay()`` took ~1.5 s). Here the connection, channel, queue
declaration and ``basic.consume`` (no acks) are py-amqp's; from then on this
class owns the socket: each ``recv`` takes whatever has arrived (up to
256 KiB) and :class:`~celeriac.protocol.amqp_wire.FrameReader` turns every
frame of it into deliveries in one pass.

What was already in the queue when it was opened is read by :meth:`open`
before it returns: ``queue.declare`` reports how many messages wait, and
the broker pushes them to the new consumer at once, so that is one round
trip plus the transfer instead of one round trip per message.

A ``connection.close``, ``channel.close`` or ``basic.cancel`` from the broker,
or the socket closing, raises :class:`ReplyQueueLost` (a ``ConnectionError``):
the owner drops the reader and opens a new one on its next read.
"""

from __future__ import annotations

import contextlib
import select
import time
from collections.abc import Callable
from typing import Any

from celeriac.protocol import amqp_wire as wire
from celeriac.transports._amqp_sync import SyncAMQP, open_channel

__all__ = ["ReplyQueueLost", "ReplyReader"]

#: One ``recv`` takes up to this much of what has arrived.
_CHUNK = 262144
#: Longest :meth:`ReplyReader.open` waits for the messages the queue reported.
_BACKLOG_WAIT = 5.0
#: Socket timeout once data is known to be arriving (TLS: the rest of a record).
_READ_TIMEOUT = 5.0

#: ``on_reply(body, properties)``: properties with AMQP's names (``correlation_id``, ...).
OnReply = Callable[[bytes, dict[str, Any]], None]


class ReplyQueueLost(ConnectionError):
    """The reply queue's connection or consumer ended; open a new reader."""


class ReplyReader:
    """One consumer (no acks) of ``queue`` on its own connection (see the module docstring)."""

    def __init__(self, sync: SyncAMQP, queue: str, arguments: dict[str, Any],
                 on_reply: OnReply) -> None:
        self.sync = sync
        self.queue = queue
        self.arguments = arguments
        self.on_reply = on_reply
        self._conn: Any = None
        self._sock: Any = None
        self._reader = wire.FrameReader()
        self._received = 0

    def open(self) -> None:
        """Connect, declare the queue, consume it, and read what was waiting in it."""
        conn = self.sync.new_connection()
        self.sync.detach(conn)  # closed here, never through py-amqp once taken over
        self._conn = conn
        try:
            channel = open_channel(conn)
            ok = channel.queue_declare(self.queue, durable=True, auto_delete=True,
                                       arguments=self.arguments)
            # Deliveries come after consume-ok; a callback all the same, in case
            # py-amqp reads one before it returns.
            channel.basic_consume(self.queue, no_ack=True, callback=self._from_py_amqp)
            sock = conn.sock
            leftover = bytes(getattr(conn.transport, "_read_buffer", b"") or b"")
            sock.settimeout(_READ_TIMEOUT)
            self._sock = sock
            if leftover:
                self._dispatch(leftover)
            waiting = int(ok.message_count or 0)
            deadline = time.monotonic() + _BACKLOG_WAIT
            while self._received < waiting and time.monotonic() < deadline:
                self.drive(deadline - time.monotonic())
        except BaseException:
            self.abort()
            raise

    def _from_py_amqp(self, message: Any) -> None:
        body = message.body  # py-amqp gives an empty body as ''
        properties = dict(message.properties)
        self._received += 1
        self.on_reply(body.encode() if isinstance(body, str) else bytes(body), properties)

    def _readable(self, wait: float) -> bool:
        sock = self._sock
        pending = getattr(sock, "pending", None)
        if pending is not None and pending():
            return True  # TLS: decrypted bytes already buffered
        return bool(select.select((sock,), (), (), max(0.0, wait))[0])

    def drive(self, wait: float) -> None:
        """Wait up to ``wait`` s for replies, then read every one that has arrived."""
        if self._sock is None:
            raise ReplyQueueLost("reply queue reader is closed")
        if not self._readable(wait):
            return
        while True:
            try:
                data = self._sock.recv(_CHUNK)
            except (TimeoutError, BlockingIOError):
                return
            if not data:
                raise ReplyQueueLost("the broker closed the reply queue's connection")
            self._dispatch(data)
            if not self._readable(0):
                return

    def _dispatch(self, data: bytes) -> None:
        try:
            events = self._reader.feed(data)
        except wire.FrameError as exc:
            raise ReplyQueueLost(f"bad frame from the broker: {exc}") from None
        for event in events:
            if type(event) is wire.Delivered:
                self._received += 1
                self.on_reply(event.body, event.properties)
            elif type(event) is wire.Method:
                self._on_method(event)

    def _on_method(self, method: wire.Method) -> None:
        key = method.key
        if key == wire.CONNECTION_CLOSE or key == wire.CHANNEL_CLOSE:
            code, text = wire.decode_close(method.args)
            with contextlib.suppress(OSError):
                self._sock.sendall(wire.close_ok_frame() if key == wire.CONNECTION_CLOSE
                                   else wire.channel_close_ok_frame(method.channel))
            raise ReplyQueueLost(f"{code} {text}")
        if key == wire.BASIC_CANCEL:
            raise ReplyQueueLost(f"the broker cancelled the consumer of {self.queue!r} "
                                 "(queue deleted?)")

    def close(self, timeout: float = 1.0) -> None:
        """Close politely (``connection.close``, then its ok), then the socket; idempotent."""
        sock = self._sock
        if sock is not None:
            with contextlib.suppress(Exception):
                sock.sendall(wire.close_frame())
                deadline = time.monotonic() + timeout
                while time.monotonic() < deadline:
                    if not self._readable(deadline - time.monotonic()):
                        break
                    data = sock.recv(_CHUNK)
                    if not data or any(type(e) is wire.Method and
                                       e.key == wire.CONNECTION_CLOSE_OK
                                       for e in self._reader.feed(data)):
                        break
        self.abort()

    def abort(self) -> None:
        """Drop the socket at once; idempotent."""
        conn, self._conn, self._sock = self._conn, None, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.collect()
