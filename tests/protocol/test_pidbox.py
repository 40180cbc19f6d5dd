"""Remote control requests and replies, against Redis and AMQP captures."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from celeriac.errors import DecodeError
from celeriac.protocol.amqp import from_amqp
from celeriac.protocol.envelope import Envelope
from celeriac.protocol.kombu_json import decode_element, encode_element
from celeriac.protocol.pidbox import (
    ControlRequest,
    control_reply_envelope,
    control_request_envelope,
    merge_replies,
    parse_control_reply,
    parse_control_request,
)


def _published(case: str, vector: Any) -> list[str]:
    return [
        c["command"][2]
        for c in vector(case)["commands"]
        if c["command"][0] in ("PUBLISH", "LPUSH") and "pidbox" in c["command"][1]
    ]


@pytest.mark.parametrize("case", ["redis_worker_ping", "redis_worker_revoke_reply"])
def test_redis_requests_and_replies_rebuild_byte_for_byte(case: str, vector: Any) -> None:
    for raw in _published(case, vector):
        env = decode_element(raw)
        if env.exchange == "celery.pidbox":
            req = parse_control_request(env, {"json"})
            assert req.method in ("ping", "revoke")
            assert req.reply_exchange == "reply.celery.pidbox"
            built = control_request_envelope(req, exact=True)
        else:
            reply = parse_control_reply(env, {"json"})
            ((node, value),) = reply.replies.items()
            assert "ok" in value
            built = control_reply_envelope(
                node,
                value,
                ticket=reply.ticket,
                reply_to=env.routing_key,
                clock=reply.clock,
                exact=True,
            )
        assert (
            encode_element(replace(built, delivery_tag=env.delivery_tag), exact=True)
            == raw.encode()
        )


def test_revoke_arguments(vector: Any) -> None:
    raw = _published("redis_worker_revoke_reply", vector)[0]
    req = parse_control_request(decode_element(raw), {"json"})
    assert req.arguments == {
        "task_id": "00000000-0000-0000-0000-000000000000",
        "terminate": False,
        "signal": "SIGTERM",
    }
    assert req.destination is None and req.is_for("anyone@host")
    assert req.clock == 7 and isinstance(req.expires, float)


def test_amqp_pidbox(vector: Any) -> None:
    tickets = {}
    for message in vector("amqp_pidbox")["messages"]:
        env = from_amqp(
            message["body"]["utf8"].encode(),
            message["properties"],
            exchange=message["exchange"],
            routing_key=message["routing_keys"][0],
        )
        if env.exchange == "celery.pidbox":
            req = parse_control_request(env, {"json"})
            tickets[req.ticket] = req.reply_to
        else:
            reply = parse_control_reply(env, {"json"})
            assert tickets[reply.ticket] == env.routing_key
            assert merge_replies([reply]) == {"wa@proto": reply.replies["wa@proto"]}


def test_destination_and_patterns() -> None:
    assert ControlRequest("ping", destination=["a@x"]).is_for("a@x")
    assert not ControlRequest("ping", destination=["a@x"]).is_for("b@x")
    assert ControlRequest("ping", pattern="w*@x").is_for("w1@x")
    assert not ControlRequest("ping", pattern="w*@x").is_for("v1@x")
    assert ControlRequest("ping", pattern=r"^w\d@", matcher="pcre").is_for("w1@x")


def test_request_without_reply_has_no_ticket() -> None:
    env = control_request_envelope(ControlRequest("shutdown", clock=3))
    assert b"ticket" not in env.body and env.headers == {"clock": 3}
    assert parse_control_request(env, {"json"}).reply_to is None


@pytest.mark.parametrize(
    "body",
    [
        b"[]",
        b'{"arguments": {}}',
        b'{"method": "x", "arguments": 1}',
        b'{"method": "x", "destination": "a"}',
    ],
)
def test_bad_requests(body: bytes) -> None:
    with pytest.raises(DecodeError):
        parse_control_request(Envelope(body=body), {"json"})
    if body == b"[]":
        with pytest.raises(DecodeError):
            parse_control_reply(Envelope(body=body), {"json"})
