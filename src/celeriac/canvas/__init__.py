"""celeriac.canvas: workflows as values (signatures, chain, group, chord, map, chunks).

Pure values with Celery's dict shapes; the only I/O is running a send plan
through the app's ``send_task``/``asend_task`` and recording chord sizes in its
result backend. May import: backends, transports, protocol, config, errors. It
must not import :mod:`celeriac.app`: the app layer installs the current-app
resolver with :func:`set_app_resolver` (see docs/decisions-canvas.md).
"""

from celeriac.canvas._app import resolve_app, set_app_resolver
from celeriac.canvas._plan import Plan, Send
from celeriac.canvas.chain import Chain, chain
from celeriac.canvas.chord import Chord, attach_chord, chord
from celeriac.canvas.group import Group, group
from celeriac.canvas.maps import Chunks, XMap, XStarmap, chunked, chunks, xmap, xstarmap
from celeriac.canvas.signature import (
    SIGNATURE_TYPES,
    Signature,
    maybe_signature,
    plain,
    signature,
    signature_from_dict,
    subtask,
)

__all__ = [
    "SIGNATURE_TYPES",
    "Chain",
    "Chord",
    "Chunks",
    "Group",
    "Plan",
    "Send",
    "Signature",
    "XMap",
    "XStarmap",
    "attach_chord",
    "chain",
    "chord",
    "chunked",
    "chunks",
    "group",
    "maybe_signature",
    "plain",
    "resolve_app",
    "set_app_resolver",
    "signature",
    "signature_from_dict",
    "subtask",
    "xmap",
    "xstarmap",
]
