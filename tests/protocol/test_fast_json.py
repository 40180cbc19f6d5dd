"""The compact (orjson) encoding decodes to the same values as kombu's own bytes.

Both celeriac's decoder and kombu's ``kombu.utils.json.loads`` (what a Celery
worker uses) must read what :func:`json_dumps` and :func:`encode_element` write
exactly as they read the byte-exact form.
"""

from __future__ import annotations

import json
import math
import uuid
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

import pytest
from kombu.utils.json import loads as kombu_loads

from celeriac.protocol.kombu_json import decode_element, encode_element, encode_unacked
from celeriac.protocol.message import build_task_envelope, parse_task_envelope
from celeriac.protocol.results import ResultMeta, decode_meta, encode_meta
from celeriac.protocol.serializers import (
    json_dumps,
    json_dumps_exact,
    json_loads,
    serializer_name_for,
)

VALUES: list[Any] = [
    [1, "two", 3.5, None, True, False],
    {"a": [1, {"b": None}], "é": "\u2028 ü 日本"},
    datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
    datetime(2024, 1, 2, 3, 4, 5),
    date(2024, 1, 2),
    time(1, 2, 3, 4),
    Decimal("1.10"),
    uuid.UUID(int=5),
    {"nested": [uuid.uuid4(), {"when": date(2020, 1, 1)}]},
    b"abc",
    b"\x00\xffab",
    1e16,
    -(2**63),
    2**64 - 1,
    2**70,  # beyond 64 bits: falls back to the stdlib
    {1: "non-str key"},  # ditto (written as "1" by both)
    "lone \ud800 surrogate",
    (1, 2),
]


@pytest.mark.parametrize("value", VALUES, ids=[repr(v)[:40] for v in VALUES])
def test_fast_json_decodes_like_exact(value: Any) -> None:
    fast, exact = json_dumps(value), json_dumps_exact(value)
    assert json_loads(fast) == json_loads(exact)
    assert kombu_loads(fast) == kombu_loads(exact)


def test_fast_json_is_compact_orjson_for_plain_bodies() -> None:
    body = [[1, 2], {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]
    assert (
        json_dumps(body)
        == b'[[1,2],{},{"callbacks":null,"errbacks":null,"chain":null,"chord":null}]'
    )


@pytest.mark.parametrize("special", [math.nan, math.inf, -math.inf])
def test_non_finite_floats_keep_their_value(special: float) -> None:
    # orjson would write null; kombu writes NaN/Infinity, and so do we.
    raw = json_dumps({"x": [special]})
    assert raw == json_dumps_exact({"x": [special]})
    assert repr(kombu_loads(raw)) == repr({"x": [special]})


def test_uuid_keeps_kombu_marker() -> None:
    # orjson writes a UUID as a bare string; kombu's marker must survive.
    value = {"id": uuid.UUID(int=7)}
    assert kombu_loads(json_dumps(value)) == value
    assert b'"__type__"' in json_dumps(value)


def test_task_vectors_rebuilt_fast_read_the_same_in_kombu(task_element: tuple[str, str]) -> None:
    _, raw = task_element
    env = decode_element(raw)
    msg = parse_task_envelope(env, {"json", "pickle", "msgpack", "yaml"})
    serializer = serializer_name_for(env.content_type)
    assert serializer is not None
    # One clock for both builds: the AMQP ``expiration`` is "expires - now" in ms.
    now = datetime.now(UTC)
    rebuilt = build_task_envelope(msg, queue=env.routing_key, serializer=serializer, now=now)
    exact = build_task_envelope(msg, queue=env.routing_key, serializer=serializer, exact=True,
                                now=now)
    if serializer == "json" and not env.headers.get("compression"):
        assert kombu_loads(rebuilt.body) == kombu_loads(env.body)
    decoded_fast = kombu_loads(encode_element(rebuilt))
    decoded_exact = kombu_loads(encode_element(exact))
    for decoded in (decoded_fast, decoded_exact):
        decoded["properties"].pop("delivery_tag")  # fresh per encode
        decoded.pop("body")  # compared above, as values
    assert decoded_fast == decoded_exact
    accept = {"json", "pickle", "msgpack", "yaml"}
    assert parse_task_envelope(decode_element(encode_element(rebuilt)), accept) == msg


def test_element_and_unacked_fast_forms_decode_like_exact(raw_element: tuple[str, str]) -> None:
    _, raw = raw_element
    env = decode_element(raw)
    assert decode_element(encode_element(env)) == env
    assert kombu_loads(encode_element(env)) == kombu_loads(raw)
    fast_unacked = encode_unacked(env, "", env.routing_key)
    assert json.loads(fast_unacked) == json.loads(
        encode_unacked(env, "", env.routing_key, exact=True)
    )


def test_result_meta_fast_form_reads_the_same() -> None:
    meta = ResultMeta(
        task_id="t",
        status="SUCCESS",
        result={
            "when": datetime(2024, 1, 2, tzinfo=UTC),
            "n": Decimal("2"),
            "id": uuid.UUID(int=3),
        },
    )
    assert decode_meta(encode_meta(meta)) == decode_meta(encode_meta(meta, exact=True))
    assert kombu_loads(encode_meta(meta)) == kombu_loads(encode_meta(meta, exact=True))
