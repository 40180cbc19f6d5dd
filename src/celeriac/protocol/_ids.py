"""Random uuid4 strings, cheaper than ``str(uuid.uuid4())``.

Every sent task needs two (its id and kombu's ``delivery_tag``); building a
:class:`uuid.UUID` object only to format it costs ~3 us, formatting 16 random
bytes directly ~1.4 us. Same distribution and format: version 4, RFC 4122
variant, lower-case hex with dashes.
"""

from __future__ import annotations

import os

__all__ = ["uuid4_str", "uuid4_strs"]

_VARIANT = "89ab89ab89ab89ab"  # RFC 4122 variant: the top two bits are 10


def uuid4_str() -> str:
    """A random version-4 UUID in its canonical string form."""
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[int(h[16], 16)]}{h[17:20]}-{h[20:]}"


def uuid4_strs(count: int) -> list[str]:
    """``count`` random version-4 UUID strings (one ``urandom`` call for all)."""
    raw = os.urandom(16 * count).hex()
    variant = _VARIANT
    out = []
    for start in range(0, 32 * count, 32):
        h = raw[start:start + 32]
        out.append(f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{variant[int(h[16], 16)]}{h[17:20]}-{h[20:]}")
    return out
