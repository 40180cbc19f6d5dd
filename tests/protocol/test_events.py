"""Events: every captured event parses and is rebuilt to the same bytes."""

from __future__ import annotations

from typing import Any

import pytest

from celeriac.errors import DecodeError
from celeriac.protocol.envelope import Envelope
from celeriac.protocol.events import (
    event_envelope,
    event_routing_key,
    local_utcoffset,
    parse_events,
    task_event,
    worker_event,
)
from celeriac.protocol.keys import EVENT_EXCHANGE, topic_channel
from celeriac.protocol.kombu_json import decode_element, encode_element

COMMON = ("hostname", "utcoffset", "pid", "clock", "timestamp", "type")


def _rebuild(event: dict[str, Any]) -> dict[str, Any]:
    fields = {k: v for k, v in event.items() if k not in COMMON}
    build = task_event if event["type"].startswith("task-") else worker_event
    return build(
        event["type"],
        hostname=event["hostname"],
        pid=event["pid"],
        clock=event["clock"],
        timestamp=event["timestamp"],
        utcoffset=event["utcoffset"],
        **fields,
    )


def test_event_vector_round_trip(event_vector: tuple[str, dict[str, Any]]) -> None:
    _, data = event_vector
    raw = data["raw_published_string"]
    env = decode_element(raw)
    events = parse_events(env, {"json"})
    assert events[0] == data["this_event"]
    assert data["redis_channel"] == topic_channel(0, EVENT_EXCHANGE, env.routing_key)
    rebuilt_events = [_rebuild(e) for e in events]
    assert [list(e) for e in rebuilt_events] == [list(e) for e in events]  # key order
    batch: Any = rebuilt_events if data["batched_in_task_multi"] else rebuilt_events[0]
    built = event_envelope(batch, hostname=env.headers["hostname"], exact=True)
    assert built.routing_key == env.routing_key
    same_tag = Envelope(
        body=built.body,
        content_type=built.content_type,
        content_encoding=built.content_encoding,
        headers=built.headers,
        priority=built.priority,
        delivery_mode=built.delivery_mode,
        exchange=built.exchange,
        routing_key=built.routing_key,
        delivery_tag=env.delivery_tag,
    )
    assert encode_element(same_tag, exact=True) == raw.encode()


def test_amqp_events_parse(vector: Any) -> None:
    for routing_key, messages in vector("amqp_events")["by_routing_key"].items():
        for message in messages:
            env = Envelope(body=message["body"]["utf8"].encode(), headers={})
            events = parse_events(env, {"json"})
            expected = (
                routing_key
                if routing_key.endswith("multi")
                else event_routing_key(events[0]["type"])
            )
            assert expected == routing_key


def test_type_prefix_and_defaults() -> None:
    sent = task_event("sent", hostname="h", pid=1, clock=2, uuid="u")
    assert sent["type"] == "task-sent"
    assert list(sent) == ["hostname", "utcoffset", "pid", "clock", "uuid", "timestamp", "type"]
    assert sent["utcoffset"] == local_utcoffset()
    assert isinstance(sent["timestamp"], float)
    assert worker_event("heartbeat", hostname="h", pid=1, clock=1)["type"] == "worker-heartbeat"
    assert event_routing_key("worker-heartbeat") == "worker.heartbeat"


def test_envelope_shape() -> None:
    env = event_envelope(task_event("task-sent", hostname="h", pid=1, clock=1), hostname="h")
    assert (env.exchange, env.routing_key, env.delivery_mode) == ("celeryev", "task.sent", 1)
    assert env.headers == {"hostname": "h"}
    with pytest.raises(ValueError):
        event_envelope([], hostname="h")


@pytest.mark.parametrize("body", [b"5", b"[1]", b'{"no": "type"}'])
def test_bad_event_bodies(body: bytes) -> None:
    with pytest.raises(DecodeError):
        parse_events(Envelope(body=body), {"json"})
