"""AMQP 0-9-1 as a consumer reads it: frames, deliveries, field tables; and what it sends.

:class:`FrameReader` takes the bytes of a socket as they arrive (any chunking)
and returns, per chunk, every complete event in it: a :class:`Delivered`
(``basic.deliver`` method, content header and body frames put together, the
properties decoded), a :class:`Method` (any other method: its class and
method id and raw arguments) or :data:`HEARTBEAT`. One call per chunk, no
object per frame, no I/O.

Field tables are decoded the way py-amqp (Celery's client) reads them, tags
included that RabbitMQ itself writes (``x-death``'s ``l`` and ``T``):

====  =========================  ====  =========================
tag   value                      tag   value
====  =========================  ====  =========================
``t`` bool                       ``S`` str (bytes if not UTF-8)
``b`` signed 8-bit               ``x`` bytes
``B`` unsigned 8-bit             ``F`` dict (nested table)
``s`` / ``U`` signed 16-bit      ``A`` list (array)
``u`` unsigned 16-bit            ``T`` datetime (UTC)
``I`` signed 32-bit              ``D`` Decimal
``i`` unsigned 32-bit            ``d`` float (double)
``l`` / ``L`` signed 64-bit      ``f`` float (single)
``V`` None
====  =========================  ====  =========================

The client side of the methods a consumer needs (connection handshake,
channel open, ``basic.qos``/``consume``/``cancel``/``ack``/``reject``,
close) is encoded by the ``*_frame`` functions below.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from struct import Struct
from typing import Any, Final

from celeriac.protocol.amqp_frames import BASIC_PROPERTIES, encode_table

__all__ = [
    "BASIC_CANCEL",
    "BASIC_CANCEL_OK",
    "BASIC_CONSUME_OK",
    "BASIC_QOS_OK",
    "CHANNEL_CLOSE",
    "CHANNEL_CLOSE_OK",
    "CHANNEL_OPEN_OK",
    "CONNECTION_CLOSE",
    "CONNECTION_CLOSE_OK",
    "CONNECTION_OPEN_OK",
    "CONNECTION_START",
    "CONNECTION_TUNE",
    "HEARTBEAT",
    "HEARTBEAT_FRAME",
    "PROTOCOL_HEADER",
    "Delivered",
    "FrameError",
    "FrameReader",
    "Method",
    "ack_frame",
    "cancel_frame",
    "channel_close_ok_frame",
    "channel_open_frame",
    "close_frame",
    "close_ok_frame",
    "consume_frame",
    "decode_close",
    "decode_properties",
    "decode_short_str",
    "decode_table",
    "decode_tune",
    "open_frame",
    "qos_frame",
    "reject_frame",
    "start_ok_frame",
    "tune_ok_frame",
]

PROTOCOL_HEADER: Final = b"AMQP\x00\x00\x09\x01"


def _key(class_id: int, method_id: int) -> int:
    return class_id << 16 | method_id


CONNECTION_START: Final = _key(10, 10)
CONNECTION_TUNE: Final = _key(10, 30)
CONNECTION_OPEN_OK: Final = _key(10, 41)
CONNECTION_CLOSE: Final = _key(10, 50)
CONNECTION_CLOSE_OK: Final = _key(10, 51)
CONNECTION_BLOCKED: Final = _key(10, 60)
CONNECTION_UNBLOCKED: Final = _key(10, 61)
CHANNEL_OPEN_OK: Final = _key(20, 11)
CHANNEL_CLOSE: Final = _key(20, 40)
CHANNEL_CLOSE_OK: Final = _key(20, 41)
BASIC_QOS_OK: Final = _key(60, 11)
BASIC_CONSUME_OK: Final = _key(60, 21)
BASIC_CANCEL: Final = _key(60, 30)
BASIC_CANCEL_OK: Final = _key(60, 31)
_BASIC_DELIVER: Final = _key(60, 60)

_FRAME_HEAD = Struct(">BHI")
_METHOD_KEY = Struct(">I")
_U8 = Struct(">B")
_I8 = Struct(">b")
_U16 = Struct(">H")
_I16 = Struct(">h")
_U32 = Struct(">I")
_I32 = Struct(">i")
_I64 = Struct(">q")
_U64 = Struct(">Q")
_F32 = Struct(">f")
_F64 = Struct(">d")
_TUNE = Struct(">HIH")
_DELIVER_TAIL = Struct(">QB")
_CONTENT_HEAD = Struct(">HHQH")

#: A heartbeat frame (also what :meth:`FrameReader.feed` returns for one).
HEARTBEAT_FRAME: Final = b"\x08\x00\x00\x00\x00\x00\x00\xce"
HEARTBEAT: Final = "heartbeat"


class FrameError(ValueError):
    """The peer sent bytes that are not AMQP 0-9-1 as this reader understands it."""


@dataclass(frozen=True, slots=True)
class Method:
    """A method frame other than ``basic.deliver``: ``key`` = class id << 16 | method id."""

    channel: int
    key: int
    args: bytes


@dataclass(frozen=True, slots=True)
class Delivered:
    """One ``basic.deliver`` with its properties (names as in AMQP's basic class) and body."""

    channel: int
    consumer_tag: str
    delivery_tag: int
    redelivered: bool
    exchange: str
    routing_key: str
    properties: dict[str, Any]
    body: bytes


# -- field tables -----------------------------------------------------------------


def decode_short_str(data: bytes, at: int) -> tuple[str, int]:
    """A short string at ``at``: (text, offset after it)."""
    end = at + 1 + data[at]
    return data[at + 1:end].decode("utf-8", "surrogateescape"), end


def _long_str(data: bytes, at: int) -> tuple[Any, int]:
    size = _U32.unpack_from(data, at)[0]
    end = at + 4 + size
    raw = data[at + 4:end]
    try:
        return raw.decode("utf-8"), end
    except UnicodeDecodeError:
        return raw, end


def _value(data: bytes, at: int) -> tuple[Any, int]:
    """One tagged value at ``at`` (the tag byte): (value, offset after it)."""
    tag = data[at]
    at += 1
    if tag == 83:  # S
        return _long_str(data, at)
    if tag == 73:  # I
        return _I32.unpack_from(data, at)[0], at + 4
    if tag == 86:  # V
        return None, at
    if tag == 116:  # t
        return data[at] != 0, at + 1
    if tag == 70:  # F
        return decode_table(data, at)
    if tag == 65:  # A
        return _array(data, at)
    if tag == 108 or tag == 76:  # l, L
        return _I64.unpack_from(data, at)[0], at + 8
    if tag == 84:  # T
        return datetime.fromtimestamp(_U64.unpack_from(data, at)[0], tz=UTC), at + 8
    if tag == 100:  # d
        return _F64.unpack_from(data, at)[0], at + 8
    return _rare(tag, data, at)


def _rare(tag: int, data: bytes, at: int) -> tuple[Any, int]:
    if tag == 98:  # b
        return _I8.unpack_from(data, at)[0], at + 1
    if tag == 66:  # B
        return data[at], at + 1
    if tag == 115 or tag == 85:  # s, U
        return _I16.unpack_from(data, at)[0], at + 2
    if tag == 117:  # u
        return _U16.unpack_from(data, at)[0], at + 2
    if tag == 105:  # i
        return _U32.unpack_from(data, at)[0], at + 4
    if tag == 102:  # f
        return _F32.unpack_from(data, at)[0], at + 4
    if tag == 68:  # D
        scale = data[at]
        digits = _I32.unpack_from(data, at + 1)[0]
        return Decimal(digits).scaleb(-scale), at + 5
    if tag == 120:  # x
        size = _U32.unpack_from(data, at)[0]
        return bytes(data[at + 4:at + 4 + size]), at + 4 + size
    raise FrameError(f"unknown AMQP field type {chr(tag)!r} at offset {at - 1}")


def decode_table(data: bytes, at: int = 0) -> tuple[dict[str, Any], int]:
    """The field table starting at ``at`` (its 32-bit length): (dict, offset after it)."""
    end = at + 4 + _U32.unpack_from(data, at)[0]
    if end > len(data):
        raise FrameError("AMQP field table runs past its frame")
    at += 4
    table: dict[str, Any] = {}
    while at < end:
        key_end = at + 1 + data[at]
        key = data[at + 1:key_end].decode("utf-8", "surrogateescape")
        table[key], at = _value(data, key_end)
    return table, end


def _array(data: bytes, at: int) -> tuple[list[Any], int]:
    end = at + 4 + _U32.unpack_from(data, at)[0]
    at += 4
    items: list[Any] = []
    while at < end:
        item, at = _value(data, at)
        items.append(item)
    return items, end


# -- content header -----------------------------------------------------------------


def decode_properties(data: bytes, at: int) -> dict[str, Any]:
    """The basic properties present in a content header, from its property flags at ``at``."""
    flags = _U16.unpack_from(data, at)[0]
    if flags & 1:
        raise FrameError("AMQP content header with continued property flags")
    at += 2
    props: dict[str, Any] = {}
    for name, bit, kind in BASIC_PROPERTIES:
        if not flags & bit:
            continue
        if kind == "s":
            end = at + 1 + data[at]
            props[name] = data[at + 1:end].decode("utf-8", "surrogateescape")
            at = end
        elif kind == "F":
            props[name], at = decode_table(data, at)
        elif kind == "o":
            props[name] = data[at]
            at += 1
        else:
            props[name] = datetime.fromtimestamp(_U64.unpack_from(data, at)[0], tz=UTC)
            at += 8
    return props


# -- frames -------------------------------------------------------------------------


class FrameReader:
    """Bytes in, events out (see the module docstring); remembers partial frames/messages."""

    __slots__ = ("_buffer", "_content")

    def __init__(self) -> None:
        self._buffer = b""
        # per channel: [deliver fields..., properties, body size, body parts]
        self._content: dict[int, list[Any]] = {}

    def feed(self, data: bytes) -> list[Delivered | Method | str]:
        """Every event completed by ``data`` (may be none; the rest is kept)."""
        buffer = self._buffer + data if self._buffer else data
        size = len(buffer)
        at = 0
        out: list[Delivered | Method | str] = []
        head = _FRAME_HEAD.unpack_from
        while size - at >= 8:
            kind, channel, length = head(buffer, at)
            end = at + 7 + length
            if end >= size:
                break
            if buffer[end] != 0xCE:
                raise FrameError(f"AMQP frame without its end marker (type {kind})")
            start = at + 7
            at = end + 1
            if kind == 3:
                self._body(channel, buffer[start:end], out)
            elif kind == 1:
                self._method(channel, buffer, start, end, out)
            elif kind == 2:
                self._header(channel, buffer, start, out)
            elif kind == 8:
                out.append(HEARTBEAT)
            else:
                raise FrameError(f"unknown AMQP frame type {kind}")
        self._buffer = buffer[at:]
        return out

    def _method(self, channel: int, data: bytes, start: int, end: int,
                out: list[Delivered | Method | str]) -> None:
        key = _METHOD_KEY.unpack_from(data, start)[0]
        if key != _BASIC_DELIVER:
            if channel in self._content:
                raise FrameError("AMQP method frame inside a message's content")
            out.append(Method(channel, key, data[start + 4:end]))
            return
        consumer_tag, at = decode_short_str(data, start + 4)
        delivery_tag, redelivered = _DELIVER_TAIL.unpack_from(data, at)
        exchange, at = decode_short_str(data, at + 9)
        routing_key, _ = decode_short_str(data, at)
        self._content[channel] = [consumer_tag, delivery_tag, bool(redelivered & 1),
                                  exchange, routing_key, None, -1, []]

    def _header(self, channel: int, data: bytes, start: int,
                out: list[Delivered | Method | str]) -> None:
        pending = self._content.get(channel)
        if pending is None or pending[6] >= 0:
            raise FrameError("AMQP content header without a basic.deliver before it")
        _class, _weight, body_size, _flags = _CONTENT_HEAD.unpack_from(data, start)
        pending[5] = decode_properties(data, start + 12)
        pending[6] = body_size
        if body_size == 0:
            self._done(channel, b"", out)

    def _body(self, channel: int, part: bytes, out: list[Delivered | Method | str]) -> None:
        pending = self._content.get(channel)
        if pending is None or pending[6] < 0:
            raise FrameError("AMQP body frame without a content header before it")
        parts: list[bytes] = pending[7]
        parts.append(part)
        if pending[6] == len(part) and len(parts) == 1:
            self._done(channel, part, out)
        elif sum(map(len, parts)) >= pending[6]:
            self._done(channel, b"".join(parts), out)

    def _done(self, channel: int, body: bytes, out: list[Delivered | Method | str]) -> None:
        tag, number, redelivered, exchange, key, props, _size, _parts = \
            self._content.pop(channel)
        out.append(Delivered(channel, tag, number, redelivered, exchange, key, props, body))


# -- what the consumer sends ----------------------------------------------------------


def _short(text: str) -> bytes:
    raw = text.encode("utf-8")
    if len(raw) > 255:
        raise ValueError(f"AMQP short string longer than 255 bytes: {raw[:40]!r}...")
    return _U8.pack(len(raw)) + raw


def _method_frame(channel: int, class_id: int, method_id: int, args: bytes) -> bytes:
    payload = _U16.pack(class_id) + _U16.pack(method_id) + args
    return _FRAME_HEAD.pack(1, channel, len(payload)) + payload + b"\xce"


def start_ok_frame(client_properties: dict[str, Any], user: str, password: str) -> bytes:
    """``connection.start-ok`` with PLAIN authentication."""
    response = b"\x00" + user.encode("utf-8") + b"\x00" + password.encode("utf-8")
    args = (encode_table(client_properties) + _short("PLAIN") + _U32.pack(len(response))
            + response + _short("en_US"))
    return _method_frame(0, 10, 11, args)


def decode_tune(args: bytes) -> tuple[int, int, int]:
    """``connection.tune``: (channel_max, frame_max, heartbeat seconds)."""
    channel_max, frame_max, heartbeat = _TUNE.unpack_from(args, 0)
    return int(channel_max), int(frame_max), int(heartbeat)


def tune_ok_frame(channel_max: int, frame_max: int, heartbeat: int) -> bytes:
    """``connection.tune-ok``."""
    return _method_frame(0, 10, 31, _TUNE.pack(channel_max, frame_max, heartbeat))


def open_frame(vhost: str) -> bytes:
    """``connection.open`` of ``vhost``."""
    return _method_frame(0, 10, 40, _short(vhost) + b"\x00\x00")


def close_frame(channel: int = 0, code: int = 200, text: str = "bye") -> bytes:
    """``connection.close`` (channel 0) or ``channel.close``."""
    class_id = 10 if channel == 0 else 20
    return _method_frame(channel, class_id, 50 if channel == 0 else 40,
                         _U16.pack(code) + _short(text) + b"\x00\x00\x00\x00")


def decode_close(args: bytes) -> tuple[int, str]:
    """``connection.close`` / ``channel.close``: (reply code, reply text)."""
    code = _U16.unpack_from(args, 0)[0]
    text, _ = decode_short_str(args, 2)
    return int(code), text


def close_ok_frame() -> bytes:
    """``connection.close-ok``."""
    return _method_frame(0, 10, 51, b"")


def channel_close_ok_frame(channel: int) -> bytes:
    """``channel.close-ok``."""
    return _method_frame(channel, 20, 41, b"")


def channel_open_frame(channel: int) -> bytes:
    """``channel.open``."""
    return _method_frame(channel, 20, 10, b"\x010")  # reserved short string, as pamqp sends


def qos_frame(channel: int, prefetch_count: int, global_: bool) -> bytes:
    """``basic.qos`` (no size limit)."""
    return _method_frame(channel, 60, 10, _U32.pack(0) + _U16.pack(prefetch_count)
                         + (b"\x01" if global_ else b"\x00"))


def consume_frame(channel: int, queue: str, consumer_tag: str, *, no_ack: bool = False,
                  arguments: dict[str, Any] | None = None) -> bytes:
    """``basic.consume`` (waits for consume-ok)."""
    bits = 0x02 if no_ack else 0
    return _method_frame(channel, 60, 20, b"\x00\x00" + _short(queue) + _short(consumer_tag)
                         + _U8.pack(bits) + encode_table(arguments or {}))


def cancel_frame(channel: int, consumer_tag: str) -> bytes:
    """``basic.cancel`` (waits for cancel-ok)."""
    return _method_frame(channel, 60, 30, _short(consumer_tag) + b"\x00")


def ack_frame(channel: int, delivery_tag: int, multiple: bool = False) -> bytes:
    """``basic.ack``."""
    return _method_frame(channel, 60, 80, _U64.pack(delivery_tag)
                         + (b"\x01" if multiple else b"\x00"))


def reject_frame(channel: int, delivery_tag: int, requeue: bool) -> bytes:
    """``basic.reject``."""
    return _method_frame(channel, 60, 90, _U64.pack(delivery_tag)
                         + (b"\x01" if requeue else b"\x00"))
