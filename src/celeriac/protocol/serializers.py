"""Body serializers and compression, as kombu names and frames them.

A serializer turns a Python value into ``(data, content_type, content_encoding)``
and back. The registry is a plain dict from name to :class:`Serializer`
(``json``, ``pickle``, ``msgpack``, ``yaml``); :func:`register_serializer` adds
more (the ``auth`` signing serializer registers itself that way).

**JSON bytes.** Decoding always goes through orjson (the worker's hot path).
:func:`json_dumps` (the ``json`` serializer) encodes with orjson: compact,
UTF-8 JSON that kombu's ``json.loads`` reads to the same values as kombu's own
output (separators and escapes do not change what is decoded). kombu's markers
for the types JSON lacks are still written
(``{"__type__": "datetime", "__value__": "..."}`` for datetime, date, time,
decimal, uuid, bytes and base64). Values orjson would write differently from
kombu -- UUIDs (orjson writes a bare string), NaN and infinities (orjson writes
``null``), integers beyond 64 bits, non-string dict keys, lone surrogates --
send the whole document to :func:`json_dumps_exact` instead. That function
writes exactly the bytes kombu 5.x writes (``", "``/``": "`` separators, ASCII
escapes) with the stdlib C encoder; the golden tests re-encode captured Celery
messages through it byte for byte. Measured here: ~1 us (orjson) against ~3 us
(stdlib) for a small task body and ~3 against ~14 us for a whole Redis element
(see docs/decisions.md).

Decoding quirks handled: orjson turns integers beyond 64 bits into floats and
rejects ``NaN``; such documents are decoded by the stdlib instead, so values
round-trip exactly as with kombu.

**Safety.** :func:`loads` refuses every content type not in ``accept`` with
:class:`~celeriac.errors.ContentDisallowed`; pickle is decoded only when the
caller put ``pickle`` (or its content type) in ``accept``.
"""

from __future__ import annotations

import base64
import bz2
import json
import lzma
import pickle
import uuid
import zlib
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

import orjson

from celeriac.errors import ConfigurationError, ContentDisallowed, DecodeError, EncodeError

__all__ = [
    "COMPRESSIONS",
    "SERIALIZERS",
    "Serializer",
    "compress",
    "compression_header_for",
    "content_type_for",
    "decompress",
    "dumps",
    "json_dumps",
    "json_dumps_exact",
    "json_dumps_fast",
    "json_loads",
    "loads",
    "register_serializer",
    "serializer_name_for",
]

JSON_CONTENT_TYPE = "application/json"
PICKLE_CONTENT_TYPE = "application/x-python-serialize"
MSGPACK_CONTENT_TYPE = "application/x-msgpack"
YAML_CONTENT_TYPE = "application/x-yaml"
AUTH_CONTENT_TYPE = "application/data"

# kombu pins pickle protocol 4 (readable by every supported Python).
PICKLE_PROTOCOL = 4


# -- JSON --------------------------------------------------------------------


def _kombu_default(obj: Any) -> Any:
    """Encode the non-JSON types the way kombu's JSON encoder marks them."""
    if isinstance(obj, datetime):
        return {"__type__": "datetime", "__value__": obj.isoformat()}
    if isinstance(obj, date):
        return {"__type__": "date", "__value__": obj.isoformat()}
    if isinstance(obj, time):
        return {"__type__": "time", "__value__": obj.isoformat()}
    if isinstance(obj, Decimal):
        return {"__type__": "decimal", "__value__": str(obj)}
    if isinstance(obj, uuid.UUID):
        return {"__type__": "uuid", "__value__": {"hex": obj.hex}}
    if isinstance(obj, (bytes, bytearray, memoryview)):
        raw = bytes(obj)
        try:
            return {"__type__": "bytes", "__value__": raw.decode("utf-8")}
        except UnicodeDecodeError:
            return {"__type__": "base64", "__value__": base64.b64encode(raw).decode("ascii")}
    to_json = getattr(obj, "__json__", None)
    if callable(to_json):
        return to_json()
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


_ENCODER = json.JSONEncoder(ensure_ascii=True, separators=(", ", ": "), default=_kombu_default)

# orjson is exact for integers up to 64 bits; a run of 19+ digits might be
# beyond that (or just a long digit string): let the stdlib decide then. The
# run is found by mapping digits to "1" and everything else to "0" (C speed;
# a regular expression costs ~10x more on a 1 KB message).
_DIGIT_MAP = bytes(0x31 if 0x30 <= i <= 0x39 else 0x30 for i in range(256))
_LONG_RUN = b"1" * 19
_TYPE_MARK_B = b'"__type__"'
_TYPE_MARK_S = '"__type__"'


def json_dumps_exact(obj: Any) -> bytes:
    """Serialize ``obj`` to JSON bytes exactly as kombu's ``json`` serializer does."""
    try:
        return _ENCODER.encode(obj).encode("ascii")
    except (TypeError, ValueError) as exc:
        raise EncodeError(f"cannot encode as JSON: {exc}") from exc


# orjson hands these to ``default`` (kombu's markers) instead of writing its
# own forms; dataclasses go there too, so both encoders accept the same types.
_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
_SCALARS = frozenset({str, int, bool, type(None)})


def _orjson_safe(obj: Any) -> bool:
    """False when orjson would write ``obj`` differently from kombu.

    orjson writes UUIDs natively (a bare string, no marker) and NaN/infinity as
    ``null``; neither reaches ``default``, so they are looked for here. Big
    ints, non-string keys and lone surrogates make orjson raise instead.
    Scalars are checked inline: a call per item would double the cost.
    """
    kind = type(obj)
    items: Any
    if kind is dict:
        items = obj.values()
    elif kind is list or kind is tuple:
        items = obj
    elif kind is float:
        return bool(obj - obj == 0.0)  # NaN and +-inf give NaN
    elif kind in _SCALARS:
        return True
    else:
        return _other_safe(obj)
    for item in items:
        if type(item) in _SCALARS:
            continue
        if not _orjson_safe(item):
            return False
    return True


def _other_safe(obj: Any) -> bool:
    if isinstance(obj, uuid.UUID):
        return False
    if isinstance(obj, float):
        return bool(obj - obj == 0.0)
    if isinstance(obj, dict):
        return all(map(_orjson_safe, obj.values()))
    if isinstance(obj, (list, tuple)):
        return all(map(_orjson_safe, obj))
    return True  # str/int subclasses, or types ``default`` marks or refuses


def json_dumps(obj: Any) -> bytes:
    """Serialize ``obj`` to compact JSON that kombu decodes like its own output.

    orjson for speed; documents orjson would render differently from kombu
    fall back to :func:`json_dumps_exact`. Raises
    :class:`~celeriac.errors.EncodeError` for values neither can encode.
    """
    try:
        if _orjson_safe(obj):
            return orjson.dumps(obj, default=_kombu_default, option=_ORJSON_OPTIONS)
    except RecursionError as exc:
        raise EncodeError(f"cannot encode as JSON: {exc}") from exc
    except TypeError:
        pass  # big int, non-str key, surrogate, or an unknown type: the stdlib says which
    return json_dumps_exact(obj)


def json_dumps_fast(obj: Any) -> bytes | None:
    """The orjson bytes :func:`json_dumps` would write for ``obj``, or ``None``
    when it would fall back to the stdlib (templates built from these bytes
    then equal :func:`json_dumps` output exactly)."""
    try:
        if _orjson_safe(obj):
            return orjson.dumps(obj, default=_kombu_default, option=_ORJSON_OPTIONS)
    except (TypeError, RecursionError):
        pass
    return None


def json_loads(data: bytes | bytearray | memoryview | str) -> Any:
    """Parse JSON (orjson fast path) and revive kombu's ``__type__`` markers.

    Raises :class:`~celeriac.errors.DecodeError` naming what is wrong.
    """
    if isinstance(data, (bytearray, memoryview)):
        data = bytes(data)
    if isinstance(data, bytes):
        long_digits = _LONG_RUN in data.translate(_DIGIT_MAP)
        marked = _TYPE_MARK_B in data
    else:
        long_digits = _LONG_RUN in data.encode("utf-8", "surrogatepass").translate(_DIGIT_MAP)
        marked = _TYPE_MARK_S in data
    try:
        value = json.loads(data) if long_digits else orjson.loads(data)
    except ValueError:
        # NaN/Infinity and lone surrogates are legal for Python's json (and so
        # for kombu) but not for orjson.
        try:
            value = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise DecodeError(f"body is not valid JSON: {exc}") from exc
    if marked:
        value = _revive(value)
    return value


def _revive(value: Any) -> Any:
    if isinstance(value, dict):
        if "__type__" in value and "__value__" in value:
            return _revive_marker(value)
        for key, item in value.items():
            if isinstance(item, (dict, list)):
                value[key] = _revive(item)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, (dict, list)):
                value[index] = _revive(item)
    return value


def _revive_marker(marker: dict[str, Any]) -> Any:
    kind, raw = marker["__type__"], marker["__value__"]
    try:
        if kind == "datetime":
            return datetime.fromisoformat(raw)
        if kind == "date":
            return date.fromisoformat(raw)
        if kind == "time":
            return time.fromisoformat(raw)
        if kind == "decimal":
            return Decimal(raw)
        if kind == "uuid":
            return uuid.UUID(hex=raw["hex"]) if isinstance(raw, dict) else uuid.UUID(raw)
        if kind == "bytes":
            return raw.encode("utf-8")
        if kind == "base64":
            return base64.b64decode(raw, validate=True)
    except (ValueError, TypeError, KeyError, AttributeError, ArithmeticError) as exc:
        raise DecodeError(f"bad {kind!r} value {raw!r} in JSON body: {exc}") from exc
    # An unknown marker is left as the plain dict it is: it may be user data.
    return marker


# -- optional serializers ----------------------------------------------------


def _missing(extra: str, module: str) -> ConfigurationError:
    return ConfigurationError(
        f"the {extra} serializer needs the {module!r} package: pip install 'celeriac[{extra}]'"
    )


def _msgpack_dumps(obj: Any) -> bytes:
    try:
        import msgpack
    except ImportError:
        raise _missing("msgpack", "msgpack") from None
    try:
        data: bytes = msgpack.packb(obj, use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as exc:
        raise EncodeError(f"cannot encode as msgpack: {exc}") from exc
    return data


def _msgpack_loads(data: bytes) -> Any:
    try:
        import msgpack
    except ImportError:
        raise _missing("msgpack", "msgpack") from None
    return msgpack.unpackb(data, raw=False)


def _yaml_dumps(obj: Any) -> bytes:
    try:
        import yaml
    except ImportError:
        raise _missing("yaml", "PyYAML") from None
    try:
        text: str = yaml.safe_dump(obj)
    except yaml.YAMLError as exc:
        raise EncodeError(f"cannot encode as YAML: {exc}") from exc
    return text.encode("utf-8")


def _yaml_loads(data: bytes) -> Any:
    try:
        import yaml
    except ImportError:
        raise _missing("yaml", "PyYAML") from None
    # safe_load only: the full loader can build arbitrary Python objects.
    return yaml.safe_load(data)


def _pickle_dumps(obj: Any) -> bytes:
    try:
        return pickle.dumps(obj, protocol=PICKLE_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        raise EncodeError(f"cannot pickle: {exc}") from exc


def _pickle_loads(data: bytes) -> Any:
    return pickle.loads(data)  # reached only when pickle is in accept


# -- registry ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Serializer:
    """A named body codec: its content type/encoding and its two functions."""

    name: str
    content_type: str
    content_encoding: str
    encode: Callable[[Any], bytes]
    decode: Callable[[bytes], Any]


SERIALIZERS: dict[str, Serializer] = {}
_BY_CONTENT_TYPE: dict[str, Serializer] = {}
# Names usable in ``accept_content`` even before their serializer is registered.
_KNOWN_CONTENT_TYPES: dict[str, str] = {"auth": AUTH_CONTENT_TYPE}


def register_serializer(serializer: Serializer) -> None:
    """Add (or replace) a serializer under its name and its content type."""
    SERIALIZERS[serializer.name] = serializer
    _BY_CONTENT_TYPE[serializer.content_type] = serializer
    _KNOWN_CONTENT_TYPES[serializer.name] = serializer.content_type


for _serializer in (
    Serializer("json", JSON_CONTENT_TYPE, "utf-8", json_dumps, json_loads),
    Serializer("pickle", PICKLE_CONTENT_TYPE, "binary", _pickle_dumps, _pickle_loads),
    Serializer("msgpack", MSGPACK_CONTENT_TYPE, "binary", _msgpack_dumps, _msgpack_loads),
    Serializer("yaml", YAML_CONTENT_TYPE, "utf-8", _yaml_dumps, _yaml_loads),
):
    register_serializer(_serializer)


def _lookup(serializer: str) -> Serializer:
    found = SERIALIZERS.get(serializer) or _BY_CONTENT_TYPE.get(serializer)
    if found is None:
        known = ", ".join(sorted(SERIALIZERS))
        raise ConfigurationError(f"unknown serializer {serializer!r} (known: {known})")
    return found


def content_type_for(name: str) -> str:
    """The content type of a serializer name (``"json"`` -> ``"application/json"``)."""
    if name in _KNOWN_CONTENT_TYPES:
        return _KNOWN_CONTENT_TYPES[name]
    return _lookup(name).content_type


def serializer_name_for(content_type: str) -> str | None:
    """The serializer name for a content type, or None when none is registered."""
    found = _BY_CONTENT_TYPE.get(_bare(content_type))
    return found.name if found else None


def dumps(obj: Any, serializer: str = "json", *, exact: bool = False) -> tuple[bytes, str, str]:
    """Serialize ``obj``; return ``(data, content_type, content_encoding)``.

    ``serializer`` is a name or a content type. ``exact=True`` makes the
    ``json`` serializer write kombu's own bytes (:func:`json_dumps_exact`). Raises
    :class:`~celeriac.errors.EncodeError` for values the serializer cannot
    encode and :class:`~celeriac.errors.ConfigurationError` for unknown names or
    a missing optional package.
    """
    codec = _lookup(serializer)
    if exact and codec.encode is json_dumps:
        return json_dumps_exact(obj), codec.content_type, codec.content_encoding
    return codec.encode(obj), codec.content_type, codec.content_encoding


def _bare(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _accepted(content_type: str, codec: Serializer | None, accept: Collection[str]) -> bool:
    if content_type in accept:
        return True
    if codec is not None and codec.name in accept:
        return True
    return content_type == AUTH_CONTENT_TYPE and "auth" in accept


def loads(
    data: bytes | bytearray | memoryview | str,
    content_type: str,
    content_encoding: str,
    accept: Collection[str],
) -> Any:
    """Deserialize a body, refusing content types that ``accept`` does not allow.

    ``accept`` holds serializer names (``"json"``, ``"pickle"`` ...) and/or full
    content types. Raises :class:`~celeriac.errors.ContentDisallowed` for a
    refused type and :class:`~celeriac.errors.DecodeError` for bad data.
    """
    bare = _bare(content_type or "")
    codec = _BY_CONTENT_TYPE.get(bare)
    if not _accepted(bare, codec, accept):
        allowed = ", ".join(sorted(accept)) or "nothing"
        raise ContentDisallowed(
            f"refusing to decode a message with content type {content_type!r}: "
            f"accept_content allows {allowed}"
        )
    if codec is None:
        raise DecodeError(f"no serializer is registered for content type {content_type!r}")
    if isinstance(data, str):
        data = data.encode("utf-8")
    elif not isinstance(data, bytes):
        data = bytes(data)
    encoding = (content_encoding or "").lower()
    if encoding not in ("", "utf-8", "utf8", "binary", "ascii"):
        try:
            data = data.decode(encoding).encode("utf-8")
        except (LookupError, UnicodeError) as exc:
            raise DecodeError(f"cannot read body in encoding {content_encoding!r}: {exc}") from exc
    try:
        return codec.decode(data)
    except (DecodeError, ConfigurationError):
        raise
    except Exception as exc:  # every codec has its own error types
        raise DecodeError(f"cannot decode {codec.name} body: {exc}") from exc


# -- compression -------------------------------------------------------------

GZIP_HEADER = "application/x-gzip"
BZIP2_HEADER = "application/x-bz2"
LZMA_HEADER = "application/x-lzma"

#: compression method name -> value of the ``compression`` header.
COMPRESSIONS: dict[str, str] = {
    "gzip": GZIP_HEADER,
    "zlib": GZIP_HEADER,  # kombu writes a zlib stream under the gzip name
    "bzip2": BZIP2_HEADER,
    "lzma": LZMA_HEADER,
    "xz": LZMA_HEADER,
}
_HEADER_ALIASES = {value: value for value in COMPRESSIONS.values()}
_HEADER_ALIASES.update(COMPRESSIONS)


def compression_header_for(method: str) -> str:
    """The ``compression`` header value for a method name (``"zlib"`` -> gzip's)."""
    try:
        return COMPRESSIONS[method.lower()]
    except KeyError:
        known = ", ".join(sorted(COMPRESSIONS))
        raise ConfigurationError(f"unknown compression {method!r} (known: {known})") from None


def compress(data: bytes, method: str) -> tuple[bytes, str]:
    """Compress ``data``; return ``(compressed, compression header value)``."""
    header = compression_header_for(method)
    if header == GZIP_HEADER:
        return zlib.compress(data), header
    if header == BZIP2_HEADER:
        return bz2.compress(data), header
    return lzma.compress(data), header


def decompress(data: bytes, header: str) -> bytes:
    """Undo :func:`compress` given the ``compression`` header (or a method name)."""
    kind = _HEADER_ALIASES.get(header.lower())
    try:
        if kind == GZIP_HEADER:
            # 47 = accept both zlib and gzip framing: other producers send real gzip.
            return zlib.decompress(data, 47)
        if kind == BZIP2_HEADER:
            return bz2.decompress(data)
        if kind == LZMA_HEADER:
            return lzma.decompress(data)
    except (zlib.error, OSError, ValueError, EOFError, lzma.LZMAError) as exc:
        raise DecodeError(f"cannot decompress body ({header}): {exc}") from exc
    raise DecodeError(f"unknown compression {header!r}")
