"""Names on Redis, checked against the names Celery used in the captures."""

from __future__ import annotations

from typing import Any

import pytest

from celeriac.errors import DecodeError
from celeriac.protocol import keys


@pytest.mark.parametrize(
    ("priority", "name"),
    [
        (None, "celery"),
        (0, "celery"),
        (1, "celery"),
        (3, "celery\x06\x163"),
        (5, "celery\x06\x163"),
        (6, "celery\x06\x166"),
        (9, "celery\x06\x169"),
        (255, "celery\x06\x169"),
        (-4, "celery"),
    ],
)
def test_priority_queue(priority: int | None, name: str) -> None:
    assert keys.priority_queue("celery", priority) == name


def test_priority_vector_lists(vector: Any) -> None:
    for message in vector("redis_priority")["messages"]:
        priority = int(message["envelope_parsed"]["properties"]["priority"])
        assert keys.priority_queue("celery", priority) == message["redis_list_key"]


def test_priority_queues_match_worker_poll(vector: Any) -> None:
    brpop = next(
        c["command"]
        for c in vector("redis_worker_countdown")["commands"]
        if c["command"][:2] == ["BRPOP", "ext"]
    )
    assert brpop[1:-1] == keys.priority_queues("ext")
    assert keys.PRIORITY_STEPS == (0, 3, 6, 9)


def test_bindings(vector: Any) -> None:
    db0 = vector("redis_unacked_during_countdown")["db0"]
    assert db0[keys.binding_set_key("celery")]["value"] == [
        keys.binding_member("celery", "", "celery")
    ]
    assert keys.binding_permanent_key("celery") in db0
    assert keys.BINDING_DEADLINES in db0
    for member in db0[keys.binding_set_key("celeryev")]["value"]:
        routing_key, pattern, queue = keys.parse_binding_member(member)
        assert routing_key in ("#", "worker.#") and pattern == ""
        assert queue.startswith("celeryev.")
    for member in db0[keys.binding_set_key(keys.PIDBOX_EXCHANGE)]["value"]:
        assert keys.parse_binding_member(member.encode())[2] in (
            keys.pidbox_queue("w1@proto"),
            keys.pidbox_queue("w2@proto"),
        )
    assert keys.UNACKED_HASH in db0 and keys.UNACKED_INDEX in db0
    with pytest.raises(DecodeError):
        keys.parse_binding_member("no-separators")


def test_result_keys_and_chord(vector: Any) -> None:
    commands = [c["command"] for c in vector("redis_worker_chord")["commands"]]
    lua = next(c for c in commands if c[0] == "EVALSHA" and c[2] == "6")
    gid = lua[7].removeprefix(keys.GROUP_META_PREFIX)
    ck = keys.chord_keys(gid)
    assert lua[3:9] == [ck.results, ck.total, ck.size, ck.dedupe, ck.group, ck.lock]
    assert keys.group_meta_key(gid) == ck.group
    setex = next(c for c in commands if c[0] == "SETEX")
    assert setex[1] == keys.task_meta_key(setex[1].removeprefix("celery-task-meta-"))


def test_channels_and_pidbox_names(vector: Any) -> None:
    assert keys.fanout_channel(0, keys.PIDBOX_EXCHANGE) == "/0.celery.pidbox"
    assert keys.topic_channel(0, keys.EVENT_EXCHANGE, "task.sent") == "/0.celeryev/task.sent"
    assert keys.topic_pattern(0, "celeryev", "worker.#") == "/0.celeryev/worker.*"
    assert keys.topic_pattern(0, "celeryev", "#") == "/0.celeryev/*"
    assert keys.topic_pattern(0, "x", "a?b") == "/0.x/a[?]b"
    assert keys.pidbox_reply_list("626f") == "626f.reply.celery.pidbox"
    assert keys.PIDBOX_REPLY_EXCHANGE == "reply.celery.pidbox"
    assert keys.event_queue("abc") == "celeryev.abc"
    commands = [c["command"] for c in vector("redis_worker_startup")["commands"]]
    assert ["PSUBSCRIBE", "/0.celeryev/worker.*"] in commands
    assert ["PSUBSCRIBE", keys.fanout_channel(0, keys.PIDBOX_EXCHANGE)] in commands


def test_celeriac_keys_are_prefixed() -> None:
    names = [
        keys.DELAYED_ZSET,
        keys.LEASES_ZSET,
        keys.WORKERS_ZSET,
        keys.REVOKED_SET,
        keys.BEAT_LEADER_KEY,
        keys.REDELIVERED_HASH,
        keys.wake_channel_prefix(3),
        keys.IDLE_CONSUMERS_HASH,
        keys.idle_consumers_prefix() + "celery",
        keys.push_channel_prefix(3),
        keys.inflight_key("w1"),
        keys.lease_key("w1"),
        keys.delayed_key("celery"),
        keys.dead_letter_key("celery"),
    ]
    assert all(name.startswith(keys.CELERIAC_PREFIX) for name in names)
    assert len(set(names)) == len(names)
    assert keys.dead_letter_key("celery") == "celeriac.dead.celery"
