"""kombu's Redis element: every captured element decodes and re-encodes byte for byte."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from celeriac.errors import DecodeError
from celeriac.protocol.envelope import Envelope
from celeriac.protocol.kombu_json import (
    decode_element,
    decode_unacked,
    encode_element,
    encode_unacked,
)


def test_element_reencodes_byte_for_byte(raw_element: tuple[str, str]) -> None:
    _, raw = raw_element
    env = decode_element(raw)
    assert encode_element(env, exact=True) == raw.encode()


def test_element_decodes_from_bytes_too(raw_element: tuple[str, str]) -> None:
    _, raw = raw_element
    assert decode_element(raw.encode()) == decode_element(raw)


def test_unacked_value_reencodes_byte_for_byte(unacked_value: tuple[str, str]) -> None:
    _, raw = unacked_value
    env, exchange, routing_key = decode_unacked(raw)
    assert exchange == env.exchange == ""
    assert routing_key == env.routing_key
    assert encode_unacked(env, exchange, routing_key, exact=True) == raw.encode()


def test_decoded_fields(vector: Any) -> None:
    raw = vector("redis_delay_add")["messages"][0]["raw_list_element"]
    env = decode_element(raw)
    assert (
        env.body
        == b'[[2, 3], {}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]'
    )
    assert env.content_type == "application/json"
    assert env.content_encoding == "utf-8"
    assert env.headers["task"] == "tasks.add"
    assert env.correlation_id == "654b6c56-872c-4288-b454-bb65f557030c"
    assert env.reply_to == "73afbd7d-d018-3c58-b5c8-06675568dae4"
    assert (env.exchange, env.routing_key) == ("", "celery")
    assert env.priority == 0
    assert env.delivery_mode == 2
    assert env.delivery_tag == "38d30d73-5a2c-4490-8502-8c4225bfdecb"
    assert env.extra_properties == {}


def test_unmodelled_properties_are_kept(vector: Any) -> None:
    commands = vector("redis_worker_retry")["commands"]
    raw = next(
        c["command"][2]
        for c in commands
        if c["command"][0] == "LPUSH" and '"retries": 1' in c["command"][2]
    )
    env = decode_element(raw)
    assert env.extra_properties == {"origin": "gen9712@vm"}
    assert encode_element(env, exact=True) == raw.encode()


def test_expiration_property(vector: Any) -> None:
    env = decode_element(vector("redis_expires_seconds")["messages"][0]["raw_list_element"])
    assert env.expiration == "120000"


def test_fresh_delivery_tag_when_missing() -> None:
    env = Envelope(body=b"[]", routing_key="celery")
    first = decode_element(encode_element(env))
    second = decode_element(encode_element(env))
    assert uuid.UUID(first.delivery_tag).version == 4
    assert first.delivery_tag != second.delivery_tag


def test_non_ascii_and_binary_bodies_round_trip() -> None:
    env = Envelope(
        body=bytes(range(256)),
        headers={"argsrepr": "('é', '\u2028')"},
        delivery_tag="t",
        priority=None,
    )
    assert encode_element(env, exact=True).isascii()
    for raw in (encode_element(env), encode_element(env, exact=True)):
        back = decode_element(raw)
        assert back.body == bytes(range(256))
        assert back.headers == {"argsrepr": "('é', '\u2028')"}
        assert back.priority == 0  # kombu always writes a priority


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "not a kombu envelope"),
        (b'{"headers": {}}', "not a kombu envelope"),
        (b'{"body": "!!!", "properties": {"body_encoding": "base64"}}', "not valid base64"),
        (b'{"body": 5, "properties": {}}', "not a string"),
        (b'{"body": "", "properties": [1]}', "not JSON objects"),
        (b'{"body": "", "properties": {"body_encoding": "rot13"}}', "body_encoding"),
    ],
)
def test_decode_errors_name_the_problem(raw: bytes, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        decode_element(raw)


def test_plain_body_without_body_encoding() -> None:
    env = decode_element(b'{"body": "[1]", "content-type": "application/json", "properties": {}}')
    assert env.body == b"[1]"


@pytest.mark.parametrize(
    "raw",
    [b"{}", b'["x", "", "celery"]', b'[{"body": ""}, 1, "celery"]', b"[1, 2]", b"nope"],
)
def test_unacked_decode_errors(raw: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_unacked(raw)


def test_unacked_with_string_element() -> None:
    element = encode_element(Envelope(body=b"x", delivery_tag="t")).decode()
    import json

    env, exchange, key = decode_unacked(json.dumps([element, "ex", "rk"]))
    assert (env.body, exchange, key) == (b"x", "ex", "rk")


def test_both_ways_of_building_the_envelope_agree(
    raw_element: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Decoding builds the Envelope through its slots' setters; should its
    # fields ever change, it falls back to the dataclass. Same value either way.
    from celeriac.protocol import kombu_json

    _, raw = raw_element
    fast = decode_element(raw)
    assert type(fast) is Envelope
    monkeypatch.setattr(kombu_json, "_FAST_ENVELOPE", False)
    assert decode_element(raw) == fast
    assert repr(decode_element(raw)) == repr(fast)
