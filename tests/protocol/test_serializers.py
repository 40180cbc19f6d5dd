"""Serializers and compression, against kombu's observable behaviour and the vectors."""

from __future__ import annotations

import base64
import gzip
import json
import sys
import uuid
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

import pytest

from celeriac.errors import ConfigurationError, ContentDisallowed, DecodeError, EncodeError
from celeriac.protocol.kombu_json import decode_element
from celeriac.protocol.serializers import (
    compress,
    content_type_for,
    decompress,
    dumps,
    json_dumps,
    json_dumps_exact,
    json_loads,
    loads,
)

BODY = [[2, 3], {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]


# Facts: what kombu 5.7's json serializer writes for these values.
KOMBU_JSON = [
    (
        datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
        '{"__type__": "datetime", "__value__": "2024-01-02T03:04:05.000006+00:00"}',
    ),
    (datetime(2024, 1, 2, 3, 4, 5), '{"__type__": "datetime", "__value__": "2024-01-02T03:04:05"}'),
    (date(2024, 1, 2), '{"__type__": "date", "__value__": "2024-01-02"}'),
    (time(1, 2, 3, 4), '{"__type__": "time", "__value__": "01:02:03.000004"}'),
    (Decimal("1.10"), '{"__type__": "decimal", "__value__": "1.10"}'),
    (
        uuid.UUID(int=5),
        '{"__type__": "uuid", "__value__": {"hex": "00000000000000000000000000000005"}}',
    ),
    (b"abc", '{"__type__": "bytes", "__value__": "abc"}'),
    (b"\x00\xffab", '{"__type__": "base64", "__value__": "AP9hYg=="}'),
    ("é\u2028", '"\\u00e9\\u2028"'),
    ((1, 2), "[1, 2]"),
    ({"a": [1, {"b": None}]}, '{"a": [1, {"b": null}]}'),
    (1e16, "1e+16"),
    (2**70, "1180591620717411303424"),
]


@pytest.mark.parametrize(("value", "expected"), KOMBU_JSON, ids=[e for _, e in KOMBU_JSON])
def test_json_bytes_match_kombu(value: Any, expected: str) -> None:
    assert json_dumps_exact(value) == expected.encode()
    back = json_loads(expected.encode())
    assert back == (list(value) if isinstance(value, tuple) else value)


def test_markers_nested_and_from_str() -> None:
    value = {"when": [date(2020, 1, 1), {"id": uuid.UUID(int=1)}], "n": Decimal("2")}
    assert json_loads(json_dumps(value).decode()) == value


def test_uuid_marker_also_accepts_a_string() -> None:
    raw = '{"__type__": "uuid", "__value__": "00000000-0000-0000-0000-000000000005"}'
    assert json_loads(raw) == uuid.UUID(int=5)


def test_unknown_marker_is_left_alone() -> None:
    assert json_loads(b'{"__type__": "nope", "__value__": 1}') == {
        "__type__": "nope",
        "__value__": 1,
    }


def test_bad_marker_value() -> None:
    with pytest.raises(DecodeError, match="datetime"):
        json_loads(b'{"__type__": "datetime", "__value__": "yesterday"}')


@pytest.mark.parametrize(
    "raw",
    [
        b"[NaN]",
        b"[Infinity, -Infinity]",
        b'"\\ud800"',
        b"[18446744073709551616]",
        b"[-9223372036854775809]",
    ],
)
def test_values_orjson_rejects_or_rounds_decode_like_python(raw: bytes) -> None:
    assert repr(json_loads(raw)) == repr(json.loads(raw))


def test_long_digit_strings_are_fine() -> None:
    assert json_loads(b'["12345678901234567890123"]') == ["12345678901234567890123"]


def test_json_errors() -> None:
    with pytest.raises(DecodeError, match="not valid JSON"):
        json_loads(b"{")
    with pytest.raises(EncodeError, match="set"):
        json_dumps({1, 2})
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(EncodeError):
        json_dumps(loop)


def test_json_dunder_json_hook() -> None:
    class Point:
        def __json__(self) -> list[int]:
            return [1, 2]

    assert json_dumps_exact({"p": Point()}) == b'{"p": [1, 2]}'
    assert json_dumps({"p": Point()}) == b'{"p":[1,2]}'


@pytest.mark.parametrize(
    ("name", "content_type", "encoding"),
    [
        ("json", "application/json", "utf-8"),
        ("pickle", "application/x-python-serialize", "binary"),
        ("msgpack", "application/x-msgpack", "binary"),
        ("yaml", "application/x-yaml", "utf-8"),
    ],
)
def test_dumps_loads_every_serializer(name: str, content_type: str, encoding: str) -> None:
    data, ct, ce = dumps(BODY, name)
    assert (ct, ce) == (content_type, encoding)
    assert content_type_for(name) == content_type
    assert loads(data, ct, ce, {name}) in (BODY, tuple(BODY))
    assert loads(data, ct, ce, {content_type}) in (BODY, tuple(BODY))


@pytest.mark.parametrize(
    "case",
    ["redis_serializer_msgpack", "redis_serializer_yaml", "redis_serializer_pickle"],
)
def test_serializer_vectors_decode(case: str, vector: Any) -> None:
    env = decode_element(vector(case)["messages"][0]["raw_list_element"])
    name = case.removeprefix("redis_serializer_")
    body = loads(env.body, env.content_type, env.content_encoding, {name})
    assert [list(body[0]), body[1], body[2]] == BODY
    assert dumps(body, name)[0] == env.body  # and we write the same bytes


def test_pickle_refused_unless_accepted(vector: Any) -> None:
    env = decode_element(vector("redis_serializer_pickle")["messages"][0]["raw_list_element"])
    for accept in ({"json"}, {"json", "yaml", "msgpack"}, set()):
        with pytest.raises(ContentDisallowed, match="x-python-serialize"):
            loads(env.body, env.content_type, env.content_encoding, accept)


def test_yaml_uses_the_safe_loader() -> None:
    evil = b"!!python/object/apply:os.system ['echo pwned']"
    with pytest.raises(DecodeError, match="yaml"):
        loads(evil, "application/x-yaml", "utf-8", {"yaml"})


def test_unknown_types_and_names() -> None:
    with pytest.raises(ContentDisallowed):
        loads(b"x", "text/plain", "utf-8", {"json"})
    with pytest.raises(DecodeError, match="no serializer"):
        loads(b"x", "text/plain", "utf-8", {"text/plain"})
    with pytest.raises(DecodeError, match="no serializer"):
        loads(b"x", "application/data", "binary", {"auth"})
    with pytest.raises(ConfigurationError, match="unknown serializer"):
        dumps(1, "bson")
    assert content_type_for("auth") == "application/data"


def test_content_type_parameters_and_other_encodings() -> None:
    assert loads(b"[1]", "application/json; charset=utf-8", "utf-8", {"json"}) == [1]
    latin = '["é"]'.encode("latin-1")
    assert loads(latin, "application/json", "latin-1", {"json"}) == ["é"]
    with pytest.raises(DecodeError, match="encoding"):
        loads(b"[1]", "application/json", "no-such-codec", {"json"})


def test_decode_error_for_bad_binary_data() -> None:
    with pytest.raises(DecodeError, match="msgpack"):
        loads(b"\xc1", "application/x-msgpack", "binary", {"msgpack"})
    with pytest.raises(DecodeError, match="pickle"):
        loads(b"not a pickle", "application/x-python-serialize", "binary", {"pickle"})


def test_missing_optional_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "msgpack", None)  # makes `import msgpack` fail
    with pytest.raises(ConfigurationError, match=r"celeriac\[msgpack\]"):
        dumps([1], "msgpack")
    with pytest.raises(ConfigurationError, match=r"celeriac\[msgpack\]"):
        loads(b"\x91\x01", "application/x-msgpack", "binary", {"msgpack"})
    monkeypatch.setitem(sys.modules, "yaml", None)
    with pytest.raises(ConfigurationError, match=r"celeriac\[yaml\]"):
        dumps([1], "yaml")


def test_encode_errors_for_every_serializer() -> None:
    with pytest.raises(EncodeError):
        dumps(object(), "msgpack")
    with pytest.raises(EncodeError):
        dumps(object(), "yaml")
    with pytest.raises(EncodeError):
        dumps(lambda: 1, "pickle")


# -- compression ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "method", "header"),
    [
        ("redis_compression_zlib", "zlib", "application/x-gzip"),
        ("redis_compression_gzip", "gzip", "application/x-gzip"),
        ("redis_compression_bzip2", "bzip2", "application/x-bz2"),
    ],
)
def test_compression_vectors(case: str, method: str, header: str, vector: Any) -> None:
    env = decode_element(vector(case)["messages"][0]["raw_list_element"])
    assert env.headers["compression"] == header
    plain = decompress(env.body, header)
    assert json.loads(plain) == BODY
    assert compress(plain, method) == (env.body, header)


def test_real_gzip_framing_and_lzma() -> None:
    assert decompress(gzip.compress(b"hello"), "application/x-gzip") == b"hello"
    data, header = compress(b"hello", "lzma")
    assert header == "application/x-lzma"
    assert decompress(data, header) == b"hello"
    assert decompress(compress(b"x", "zlib")[0], "zlib") == b"x"


def test_compression_errors() -> None:
    with pytest.raises(DecodeError, match="decompress"):
        decompress(b"garbage", "application/x-gzip")
    with pytest.raises(DecodeError, match="decompress"):
        decompress(b"garbage", "application/x-bz2")
    with pytest.raises(DecodeError, match="unknown compression"):
        decompress(b"x", "application/x-rar")
    with pytest.raises(ConfigurationError, match="unknown compression"):
        compress(b"x", "rar")


def test_vector_body_is_base64_of_json(vector: Any) -> None:
    message = vector("redis_delay_add")["messages"][0]
    assert json_dumps_exact(BODY) == base64.b64decode(message["envelope_parsed"]["body"])
