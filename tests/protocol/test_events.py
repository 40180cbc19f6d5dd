"""Events: every captured event parses and is rebuilt to the same bytes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from celeriac.errors import DecodeError
from celeriac.protocol.envelope import Envelope
from celeriac.protocol.events import (
    PROBE_TYPE,
    TASK_EVENT_TYPES,
    WORKER_EVENT_TYPES,
    event_envelope,
    event_routing_key,
    exception_repr,
    local_utcoffset,
    one_line,
    parse_events,
    probe_event,
    task_event,
    task_failed_fields,
    task_received_fields,
    task_revoked_fields,
    task_sent_fields,
    task_started_fields,
    task_succeeded_fields,
    view_event,
    worker_event,
    worker_fields,
)
from celeriac.protocol.keys import EVENT_EXCHANGE, topic_channel
from celeriac.protocol.kombu_json import decode_element, encode_element
from celeriac.protocol.message import TaskMessage

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


# -- the per-type field builders rebuild every captured event, key order included --------

def _captured_events() -> list[dict[str, Any]]:
    import json
    from pathlib import Path

    from tests.protocol.conftest import _vectors_dir

    found: list[dict[str, Any]] = []
    for path in sorted(Path(_vectors_dir()).glob("event_*.json")):
        found.append(json.loads(path.read_text())["this_event"])
    amqp = json.loads((Path(_vectors_dir()) / "amqp_events.json").read_text())
    for messages in amqp["by_routing_key"].values():
        for message in messages:
            body = message["body_json"]
            found.extend(body if isinstance(body, list) else [body])
    return found


def _message_of(event: dict[str, Any]) -> TaskMessage:
    def when(value: str | None) -> datetime | None:
        return datetime.fromisoformat(value) if value is not None else None

    return TaskMessage(task=event["name"], id=event["uuid"], root_id=event["root_id"],
                       parent_id=event["parent_id"], retries=event["retries"],
                       eta=when(event["eta"]), expires=when(event["expires"]),
                       argsrepr=event["args"], kwargsrepr=event["kwargs"])


def _fields_for(event: dict[str, Any]) -> dict[str, Any]:
    kind, uuid = event["type"], event.get("uuid", "")
    if kind == "task-sent":
        return task_sent_fields(_message_of(event), queue=event["queue"],
                                exchange=event["exchange"], routing_key=event["routing_key"])
    if kind == "task-received":
        return task_received_fields(_message_of(event))
    if kind == "task-started":
        return task_started_fields(uuid)
    if kind == "task-succeeded":
        fields = task_succeeded_fields(uuid, 0, event["runtime"])
        fields["result"] = event["result"]  # a repr of a value we do not have
        return fields
    if kind in ("task-failed", "task-retried"):
        return task_failed_fields(uuid, event["exception"], event["traceback"])
    if kind == "task-revoked":
        return task_revoked_fields(uuid, terminated=event["terminated"],
                                   signum=event["signum"], expired=event["expired"])
    return worker_fields(active=event["active"], processed=event["processed"],
                         loadavg=event["loadavg"], sw_ident=event["sw_ident"],
                         sw_ver=event["sw_ver"], sw_sys=event["sw_sys"], freq=event["freq"])


@pytest.mark.parametrize("captured", _captured_events(),
                         ids=lambda e: f"{e['type']}-{e['clock']}")
def test_field_builders_rebuild_captured_events(captured: dict[str, Any]) -> None:
    build = task_event if captured["type"].startswith("task-") else worker_event
    rebuilt = build(captured["type"], hostname=captured["hostname"], pid=captured["pid"],
                    clock=captured["clock"], timestamp=captured["timestamp"],
                    utcoffset=captured["utcoffset"], **_fields_for(captured))
    assert list(rebuilt.items()) == list(captured.items())


def test_succeeded_result_is_a_repr_and_exceptions_rebuild_from_wire() -> None:
    assert task_succeeded_fields("u", 5, 0.5)["result"] == "5"
    assert task_succeeded_fields("u", "x" * 5000, 0.5)["result"].startswith("'xxx")
    assert len(task_succeeded_fields("u", "x" * 5000, 0.5)["result"]) <= 1100
    wire = {"exc_type": "ValueError", "exc_message": ["boom"], "exc_module": "builtins"}
    assert exception_repr(wire) == "ValueError('boom')"
    assert exception_repr({"exc_type": "KeyError", "exc_message": "k"}) == "KeyError('k')"
    assert exception_repr(None) == "Exception()"


def test_received_args_fall_back_to_repr_without_argsrepr() -> None:
    message = TaskMessage(task="t", id="i", args=(2, 3), kwargs={"a": 1})
    fields = task_received_fields(message)
    assert (fields["args"], fields["kwargs"], fields["root_id"]) == ("(2, 3)", "{'a': 1}", "i")


def test_view_and_one_line() -> None:
    raw = task_event("task-succeeded", hostname="w@h", pid=1, clock=3, timestamp=0.0,
                     utcoffset=0.0, **task_succeeded_fields("abc", 5, 0.25))
    view = view_event(raw)
    assert (view.group, view.kind, view.uuid, view.hostname, view.clock) == (
        "task", "succeeded", "abc", "w@h", 3)
    assert view.get("result") == "5"
    assert one_line(raw) == ("w@h [1970-01-01 00:00:00.000000] task-succeeded uuid=abc "
                             "result='5' runtime=0.25")


def test_probe_is_not_a_task_or_worker_event() -> None:
    probe = probe_event("r1", hostname="h", pid=1)
    assert probe["type"] == PROBE_TYPE and probe["uuid"] == "r1"
    assert probe["type"] not in TASK_EVENT_TYPES | WORKER_EVENT_TYPES
    assert event_envelope(probe, hostname="h").exchange == EVENT_EXCHANGE
