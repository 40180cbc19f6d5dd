"""celeriac.protocol: all knowledge of Celery's wire formats, in one package.

Pure code, no I/O: it turns values into bytes and names and back. It imports
only :mod:`celeriac.errors`, the standard library and orjson (msgpack and
PyYAML lazily, when those serializers are used). Nothing outside this package
may spell a header name, a key prefix such as ``celery-task-meta-``, kombu's
envelope fields, result field names, event fields or pidbox shapes.

Modules:

* :mod:`.envelope` -- :class:`Envelope`, what transports move.
* :mod:`.message` -- :class:`TaskMessage` and its protocol 2 (and 1) form.
* :mod:`.serializers` -- json/pickle/msgpack/yaml, accept lists, compression.
* :mod:`.kombu_json` -- kombu's Redis element and ``unacked`` entries.
* :mod:`.amqp` -- Envelope <-> AMQP basic properties.
* :mod:`.keys` -- queue, key, channel and exchange names.
* :mod:`.results` -- stored result meta, group meta, chord members.
* :mod:`.exceptions` -- exceptions to and from their wire dict, safely.
* :mod:`.states` -- task state names.
* :mod:`.signatures` -- the signature dict shape.
* :mod:`.events`, :mod:`.pidbox` -- monitoring events and remote control.
"""

from celeriac.protocol import states
from celeriac.protocol.envelope import Envelope
from celeriac.protocol.exceptions import exception_from_wire, exception_to_wire
from celeriac.protocol.kombu_json import (
    decode_element,
    decode_unacked,
    encode_element,
    encode_unacked,
)
from celeriac.protocol.message import (
    TaskMessage,
    build_task_envelope,
    message_with,
    new_task_id,
    parse_task_envelope,
    task_message_summary,
)
from celeriac.protocol.results import ResultMeta, decode_meta, encode_meta
from celeriac.protocol.serializers import compress, decompress, dumps, loads
from celeriac.protocol.signatures import is_signature_dict, signature_dict

__all__ = [
    "Envelope",
    "ResultMeta",
    "TaskMessage",
    "build_task_envelope",
    "compress",
    "decode_element",
    "decode_meta",
    "decode_unacked",
    "decompress",
    "dumps",
    "encode_element",
    "encode_meta",
    "encode_unacked",
    "exception_from_wire",
    "exception_to_wire",
    "is_signature_dict",
    "loads",
    "message_with",
    "new_task_id",
    "parse_task_envelope",
    "signature_dict",
    "states",
    "task_message_summary",
]
