"""Many envelopes that differ in a few places, and their kombu elements.

A bulk send (``Task.delay_many``) publishes one call of the same task with the
same options per item: the envelopes differ only in their body, correlation
id and a few headers (for task messages: ``id``, ``root_id``, ``argsrepr``,
``kwargsrepr``). :class:`EnvelopeBatch` holds one full prototype envelope and,
per message, just those values. :func:`encode_elements` turns a batch into
kombu's Redis elements by encoding the prototype once with marker strings in
the varying places and concatenating the pieces with each message's values:
each element is byte for byte what :func:`~celeriac.protocol.kombu_json.encode_element`
writes for the same envelope and delivery tag (messages whose values would
make that function fall back to the stdlib encoder are encoded by it).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import orjson

from celeriac.protocol._ids import uuid4_str, uuid4_strs
from celeriac.protocol.envelope import Envelope
from celeriac.protocol.kombu_json import _element_dict, encode_element
from celeriac.protocol.serializers import json_dumps_fast

__all__ = ["EnvelopeBatch", "encode_elements"]

# One message of a batch: (correlation id, body, values of the varying headers).
Row = tuple[str, bytes, tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class EnvelopeBatch:
    """``len(rows)`` envelopes: ``prototype`` with each row's body, correlation
    id and values for the headers named in ``varying`` (in that order)."""

    prototype: Envelope
    varying: tuple[str, ...]
    rows: Sequence[Row]

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def ids(self) -> list[str]:
        """The correlation ids (task ids), in order."""
        return [row[0] for row in self.rows]

    def envelope(self, index: int) -> Envelope:
        """The full envelope of row ``index``."""
        correlation_id, body, values = self.rows[index]
        headers = dict(self.prototype.headers)
        headers.update(zip(self.varying, values, strict=True))
        return replace(self.prototype, body=body, correlation_id=correlation_id, headers=headers)

    def envelopes(self) -> list[Envelope]:
        """Every envelope of the batch, in order."""
        return [self.envelope(i) for i in range(len(self.rows))]


# Slot kinds in a template; headers are _HEADER + their index in ``varying``.
_BODY, _CORRELATION, _TAG, _HEADER = 0, 1, 2, 3


def _template(batch: EnvelopeBatch) -> tuple[list[bytes], list[int]] | None:
    """The prototype's element cut around its varying values, or None if it cannot be.

    Returns the constant pieces and, between each two, which value goes there.
    """
    proto = batch.prototype
    if proto.delivery_tag or proto.correlation_id is None:
        return None
    token = uuid4_str().replace("-", "")
    marks = [f"{token}{kind}" for kind in range(_HEADER + len(batch.varying))]
    headers = dict(proto.headers)
    for index, name in enumerate(batch.varying):
        if name not in headers:
            return None
        headers[name] = marks[_HEADER + index]
    doc = _element_dict(replace(proto, headers=headers, correlation_id=marks[_CORRELATION],
                                delivery_tag=marks[_TAG]))
    doc["body"] = marks[_BODY]
    raw = json_dumps_fast(doc)
    if raw is None:
        return None  # encode_element would use the stdlib encoder: no template
    found: list[tuple[int, int, int]] = []
    for kind, mark in enumerate(marks):
        quoted = b'"%s"' % mark.encode("ascii")
        if raw.count(quoted) != 1:
            return None
        found.append((raw.index(quoted), len(quoted), kind))
    found.sort()
    pieces: list[bytes] = []
    order: list[int] = []
    pos = 0
    for start, length, kind in found:
        pieces.append(raw[pos:start])
        order.append(kind)
        pos = start + length
    pieces.append(raw[pos:])
    return pieces, order


def encode_elements(batch: EnvelopeBatch) -> list[bytes]:
    """kombu's Redis element of every envelope of ``batch`` (fresh delivery tags)."""
    template = _template(batch)
    if template is None:
        return [encode_element(env) for env in batch.envelopes()]
    pieces, order = template
    buf: list[bytes] = [b""] * (2 * len(order) + 1)
    buf[0::2] = pieces
    slots = [(2 * i + 1, kind) for i, kind in enumerate(order)]
    b64 = base64.b64encode
    dumps = orjson.dumps
    tags = uuid4_strs(len(batch.rows))
    out: list[bytes] = []
    for index, (correlation_id, body, values) in enumerate(batch.rows):
        ok = True
        try:
            id_piece: bytes | None = dumps(correlation_id)  # also the id and root_id headers
        except TypeError:
            id_piece = None
        for at, kind in slots:
            if kind == _BODY:
                buf[at] = b'"%s"' % b64(body)
            elif kind == _TAG:
                buf[at] = b'"%s"' % tags[index].encode()
            else:
                value = correlation_id if kind == _CORRELATION else values[kind - _HEADER]
                if value is correlation_id and id_piece is not None:
                    buf[at] = id_piece
                    continue
                # plain ASCII strings need no check (orjson writes them as is)
                piece = dumps(value) if type(value) is str and value.isascii() else (
                    json_dumps_fast(value))
                if piece is None:
                    ok = False
                    break
                buf[at] = piece
        out.append(b"".join(buf) if ok else encode_element(batch.envelope(index)))
    return out
