"""Envelope <-> AMQP basic properties, against RabbitMQ captures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from celeriac.protocol.amqp import from_amqp, to_amqp_properties
from celeriac.protocol.message import (
    TaskMessage,
    build_task_envelope,
    parse_task_envelope,
)
from celeriac.protocol.results import decode_meta


def test_amqp_task_messages_parse(amqp_task: tuple[str, dict[str, Any]]) -> None:
    _, message = amqp_task
    props = message["properties"]
    env = from_amqp(
        message["body"]["utf8"].encode(),
        props,
        exchange=message.get("method", message).get("exchange", ""),
        routing_key="celery",
    )
    msg = parse_task_envelope(env, {"json"})
    assert msg.id == props["correlation_id"] == props["headers"]["id"]
    assert msg.reply_to == props["reply_to"]
    assert msg.priority == props["priority"]
    rebuilt = build_task_envelope(msg, queue="celery", exact=True)
    out = to_amqp_properties(rebuilt)
    expected_keys = set(props) - ({"expiration"} if "expiration" not in props else set())
    assert set(out) == expected_keys
    for key in ("content_type", "content_encoding", "delivery_mode", "priority", "correlation_id"):
        assert out[key] == props[key]
    assert out["headers"] == props["headers"]
    assert rebuilt.body == message["body"]["utf8"].encode()


def test_expiration_property(vector: Any) -> None:
    data = vector("amqp_priority_countdown_expires")
    props = data["properties"]
    sent = datetime.fromisoformat(props["headers"]["expires"]) - timedelta(seconds=300)
    env = from_amqp(data["body"]["utf8"].encode(), props)
    msg = parse_task_envelope(env, {"json"})
    assert msg.priority == 7 and msg.extra_headers == {"x-custom": "v"}
    out = to_amqp_properties(build_task_envelope(msg, queue="celery", now=sent))
    assert out["expiration"] == props["expiration"] == "300000"


def test_rpc_results(vector: Any) -> None:
    for case in ("amqp_rpc_result_success", "amqp_rpc_result_failure"):
        message = vector(case)["message"]
        env = from_amqp(message["body"]["utf8"].encode(), message["properties"])
        assert env.delivery_mode == 1
        meta = decode_meta(env.body)
        assert meta.task_id == env.correlation_id


def test_bytes_from_amqp_libraries_become_str() -> None:
    env = from_amqp(
        b"[[], {}, {}]",
        {
            "content_type": b"application/json",
            "headers": {b"task": b"t", "id": "i", "timelimit": [None, b"x"], "blob": b"\xff"},
            "delivery_mode": 2,
        },
    )
    assert env.content_type == "application/json"
    assert env.headers == {"task": "t", "id": "i", "timelimit": [None, "x"], "blob": b"\xff"}
    assert env.priority is None and env.correlation_id is None


def test_none_properties_are_left_out() -> None:
    env = build_task_envelope(
        TaskMessage(task="t", id="i", expires=datetime(2030, 1, 1, tzinfo=UTC)), queue="q"
    )
    out = to_amqp_properties(env)
    assert "reply_to" not in out and "expiration" in out


def test_received_header_values_come_back_as_plain_python() -> None:
    """Libraries hand some strings back as bytes; nested ones too, and keys."""
    headers = {"task": b"tasks.add", "id": "abc", "retries": 0, "ignore_result": False,
               "timelimit": (None, 5), "stamps": {b"k": [b"v", 1.5]}, "eta": None}
    env = from_amqp(b"{}", {"headers": headers, "content_type": b"application/json",
                            "correlation_id": "abc", "reply_to": None})
    assert env.headers == {"task": "tasks.add", "id": "abc", "retries": 0,
                           "ignore_result": False, "timelimit": [None, 5],
                           "stamps": {"k": ["v", 1.5]}, "eta": None}
    assert env.content_type == "application/json"
    assert env.correlation_id == "abc" and env.reply_to is None
