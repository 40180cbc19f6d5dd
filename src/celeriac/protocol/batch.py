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

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from celeriac.protocol._ids import uuid4_strs
from celeriac.protocol.envelope import Envelope
from celeriac.protocol.kombu_json import element_template, encode_element

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


def encode_elements(batch: EnvelopeBatch) -> list[bytes]:
    """kombu's Redis element of every envelope of ``batch`` (fresh delivery tags).

    Rendered from the prototype's element template; a row whose values the
    template cannot take (or a prototype it cannot cut) is encoded in full.
    """
    template = element_template(batch.prototype, batch.varying)
    if template is None:
        return [encode_element(env) for env in batch.envelopes()]
    tags = uuid4_strs(len(batch.rows))
    out: list[bytes] = []
    for index, (correlation_id, body, values) in enumerate(batch.rows):
        element = template.render(correlation_id, body, values, tags[index])
        out.append(element if element is not None else encode_element(batch.envelope(index)))
    return out
