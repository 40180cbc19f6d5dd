"""The worker's consuming connection to RabbitMQ: one socket, one channel, our own reader.

Why not aiormq here (bench/PROFILE.md, RabbitMQ R5): its reader awaits each
frame in three reads, builds pamqp objects and decodes the header table with
pamqp, hands each frame through two queues and starts an asyncio task per
delivered message: ~90 us of CPU per delivery. This connection is an
``asyncio.Protocol``: ``data_received`` parses every frame of a chunk with
:class:`~celeriac.protocol.amqp_wire.FrameReader` and calls ``on_delivery``
for each message, in order, synchronously. Acks and rejects are written
straight to the socket (one write per batch).

It consumes: handshake (PLAIN), channel 1, ``basic.qos``,
``basic.consume``/``cancel``, ``basic.ack``/``reject``, heartbeats. It also
publishes, unconfirmed, what must reach the broker before the acks written
after it (the worker's rpc replies, :meth:`publish`), and tracks
``connection.blocked`` (a resource alarm) so that the owner can publish
elsewhere meanwhile: a blocked connection is not read, acks included. Any
``connection.close``/``channel.close`` from the broker, a broker-side
``basic.cancel``, a missed heartbeat or a socket error ends it and calls
``on_lost`` once: delivery tags die with the channel, so the owner drops
everything tied to it (the broker requeues the unacked messages itself).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, cast

from celeriac.protocol import amqp_wire as wire
from celeriac.transports._amqp_common import AMQPParams

__all__ = ["CHANNEL", "ConsumerConnection", "ConsumerLost"]

#: The one channel this connection consumes (and publishes) on.
CHANNEL = 1
#: Loop turns a publish waits for an ack to share its write (see ``publish``).
HOLD_TURNS = 5
_CLIENT_PROPERTIES: dict[str, Any] = {
    "product": "celeriac",
    "capabilities": {
        "consumer_cancel_notify": True,
        "basic.nack": True,
        "publisher_confirms": True,
        "connection.blocked": True,
        "authentication_failure_close": True,
    },
}


class ConsumerLost(ConnectionError):
    """The consuming connection or channel ended (``reply_code`` 0 = not the broker's doing)."""

    def __init__(self, reason: str, reply_code: int = 0) -> None:
        super().__init__(reason)
        self.reply_code = reply_code


class ConsumerConnection(asyncio.Protocol):
    """See the module docstring. Use :meth:`open`, then the methods; :meth:`close` ends it."""

    def __init__(self, params: AMQPParams,
                 on_delivery: Callable[[wire.Delivered], None],
                 on_lost: Callable[[str], None]) -> None:
        self.params = params
        self.on_delivery = on_delivery
        self.on_lost = on_lost
        self.lost: ConsumerLost | None = None
        self._reader = wire.FrameReader()
        self._transport: asyncio.Transport | None = None
        self._waiter: tuple[frozenset[int], asyncio.Future[wire.Method]] | None = None
        self._rpc_lock = asyncio.Lock()
        self._heartbeat = 0
        self._timer: asyncio.TimerHandle | None = None
        self._received = True
        self._silent = 0
        self._held: list[bytes] = []
        self._loop = asyncio.get_running_loop()  # made by the transport, in its loop
        self._release_due = False
        #: Largest frame the broker accepts (from ``connection.tune``).
        self.frame_max = 131072
        #: The handshake is done and the channel open.
        self.opened = False
        #: The broker announced a resource alarm (``connection.blocked``): it stops
        #: reading a connection that publishes, until ``connection.unblocked``.
        self.blocked = False

    # -- asyncio.Protocol ------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport; the handshake is driven by :meth:`open`."""
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        """Parse every frame in ``data``; deliveries go to ``on_delivery`` in order."""
        self._received = True
        try:
            events = self._reader.feed(data)
        except wire.FrameError as exc:
            self._end(ConsumerLost(f"bad frame from the broker: {exc}"))
            return
        on_delivery = self.on_delivery
        for event in events:
            if type(event) is wire.Delivered:
                on_delivery(event)
            elif type(event) is wire.Method:
                self._on_method(event)
            if self.lost is not None:
                return

    def connection_lost(self, exc: Exception | None) -> None:
        """The socket closed: end (if not already ended)."""
        self._end(ConsumerLost(f"connection lost: {exc}" if exc else "connection closed"))

    def _on_method(self, method: wire.Method) -> None:
        key = method.key
        if key == wire.CONNECTION_CLOSE or key == wire.CHANNEL_CLOSE:
            code, text = wire.decode_close(method.args)
            if self._transport is not None:
                self._transport.write(wire.close_ok_frame() if key == wire.CONNECTION_CLOSE
                                      else wire.channel_close_ok_frame(method.channel))
            self._end(ConsumerLost(f"{code} {text}", code))
            return
        if key == wire.BASIC_CANCEL:
            tag, _ = wire.decode_short_str(method.args, 0)
            self._end(ConsumerLost(f"the broker cancelled consumer {tag!r} "
                                   "(queue deleted?)"))
            return
        if key == wire.CONNECTION_BLOCKED or key == wire.CONNECTION_UNBLOCKED:
            self.blocked = key == wire.CONNECTION_BLOCKED
            return
        waiter = self._waiter
        if waiter is not None and key in waiter[0] and not waiter[1].done():
            self._waiter = None
            waiter[1].set_result(method)

    def _end(self, error: ConsumerLost) -> None:
        if self.lost is not None:
            return
        self.lost = error
        if self._timer is not None:
            self._timer.cancel()
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter[1].done():
            waiter[1].set_exception(error)
        if self._transport is not None:
            self._transport.close()
        self.on_lost(str(error))

    # -- requests ----------------------------------------------------------------------
    async def _call(self, frame: bytes, *replies: int) -> wire.Method:
        async with self._rpc_lock:
            if self.lost is not None:
                raise self.lost
            future: asyncio.Future[wire.Method] = asyncio.get_running_loop().create_future()
            self._waiter = (frozenset(replies), future)
            if frame:
                self._write(frame)
            return await future

    def _write(self, data: bytes) -> None:
        if self.lost is not None:
            raise self.lost
        assert self._transport is not None
        if self._held:
            data = b"".join(self._held) + data
            self._held.clear()
        self._transport.write(data)

    def _release(self, turns: int) -> None:
        """Write held publishes if no other write took them within ``turns`` loop turns."""
        if not self._held:
            self._release_due = False
            return
        if turns > 1:
            self._loop.call_soon(self._release, turns - 1)
            return
        self._release_due = False
        if self.lost is None:
            self._write(b"")

    async def open(self, timeout: float) -> None:
        """Connect, log in, open the channel; raise on failure (the socket closed)."""
        loop = self._loop
        context = self.params.ssl_context()  # broker_use_ssl; None: plain TCP
        try:
            async with asyncio.timeout(timeout):
                await loop.create_connection(lambda: self, self.params.host, self.params.port,
                                             ssl=context,
                                             server_hostname=self.params.server_hostname)
                start = self._call(wire.PROTOCOL_HEADER, wire.CONNECTION_START)
                await start
                tune = await self._call(
                    wire.start_ok_frame(_CLIENT_PROPERTIES, self.params.user,
                                        self.params.password),
                    wire.CONNECTION_TUNE)
                channel_max, frame_max, server_beat = wire.decode_tune(tune.args)
                if frame_max:
                    self.frame_max = frame_max
                beat = self.params.heartbeat
                beat = min(beat, server_beat) if beat and server_beat else beat or server_beat
                self._write(wire.tune_ok_frame(channel_max, frame_max, beat))
                await self._call(wire.open_frame(self.params.vhost), wire.CONNECTION_OPEN_OK)
                await self._call(wire.channel_open_frame(CHANNEL), wire.CHANNEL_OPEN_OK)
        except BaseException:
            self.abort()
            raise
        self._heartbeat = beat
        self.opened = True
        if beat:
            self._timer = loop.call_later(beat / 2, self._beat)

    def _beat(self) -> None:
        """Every heartbeat/2 s: send one; end if nothing came in for two periods."""
        if self.lost is not None:
            return
        if self._received:
            self._received = False
            self._silent = 0
        else:
            self._silent += 1
            if self._silent >= 4:  # 2 heartbeat periods of silence
                self._end(ConsumerLost("no heartbeat from the broker"))
                return
        with contextlib.suppress(ConsumerLost):
            self._write(wire.HEARTBEAT_FRAME)
        self._timer = asyncio.get_running_loop().call_later(self._heartbeat / 2, self._beat)

    async def qos(self, prefetch_count: int, *, global_: bool) -> None:
        """``basic.qos`` on the channel."""
        await self._call(wire.qos_frame(CHANNEL, prefetch_count, global_), wire.BASIC_QOS_OK)

    async def consume(self, queue: str, consumer_tag: str) -> None:
        """Start delivering ``queue`` (manual acks) under ``consumer_tag``."""
        await self._call(wire.consume_frame(CHANNEL, queue, consumer_tag),
                         wire.BASIC_CONSUME_OK)

    async def cancel(self, consumer_tag: str) -> None:
        """Stop a consumer; deliveries already sent still arrive before the reply."""
        await self._call(wire.cancel_frame(CHANNEL, consumer_tag), wire.BASIC_CANCEL_OK)

    def ack(self, frames: list[tuple[int, bool]]) -> None:
        """``basic.ack`` each ``(delivery tag, multiple)``, in one write."""
        self._write(b"".join(wire.ack_frame(CHANNEL, tag, multiple) for tag, multiple in frames))

    def publish(self, frames: bytes) -> None:
        """Send encoded ``basic.publish`` frames (channel :data:`CHANNEL`, no confirms):
        the broker handles them before any ack sent after them.

        They are held for a few loop turns so that the acks that usually follow
        (a worker acks a task a few turns after its result is published) share
        their write: one ``send`` and one broker read instead of two. Any other
        write, or the last of those turns, takes them.
        """
        if self.lost is not None:
            raise self.lost
        self._held.append(frames)
        if not self._release_due:
            self._release_due = True
            self._loop.call_soon(self._release, HOLD_TURNS)

    def reject(self, delivery_tag: int, *, requeue: bool) -> None:
        """``basic.reject`` one delivery."""
        self._write(wire.reject_frame(CHANNEL, delivery_tag, requeue))

    async def close(self, timeout: float = 2.0) -> None:
        """Close politely (the broker requeues what was not acked); idempotent."""
        if self.lost is not None:
            return
        with contextlib.suppress(Exception):
            async with asyncio.timeout(timeout):
                await self._call(wire.close_frame(), wire.CONNECTION_CLOSE_OK)
        self._end(ConsumerLost("closed by the client"))

    def abort(self) -> None:
        """Drop the socket at once."""
        if self._transport is not None:
            self._transport.abort()
        self._end(ConsumerLost("closed by the client"))
