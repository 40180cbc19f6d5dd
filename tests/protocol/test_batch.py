"""Bulk-send batches: one prototype envelope, per-message ids, args and bodies.

Every envelope and every kombu element of a batch must be exactly what the
one-message path builds for the same call, id and delivery tag.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from celeriac.protocol.batch import EnvelopeBatch, encode_elements
from celeriac.protocol.kombu_json import decode_element, encode_element
from celeriac.protocol.message import (
    build_task_batch,
    build_task_envelope,
    message_with,
    task_message,
)

NOW = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)

MESSAGES: dict[str, dict[str, Any]] = {
    "plain": {},
    "eta-expires-priority": {"eta": NOW + timedelta(seconds=10),
                             "expires": NOW + timedelta(minutes=5), "priority": 3},
    "child-of-a-task": {"parent_id": "parent-1", "root_id": "root-1", "group": "g-1",
                        "group_index": 2},
    "custom-headers-links": {"extra_headers": {"x-trace": "abc", "n": [1, 2]},
                             "callbacks": [{"task": "cb", "args": [], "kwargs": {}}],
                             "shadow": "shown", "timelimit": (10.0, 5.0)},
    "non-ascii-header": {"extra_headers": {"who": "zoë"}},
}

CALLS: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
    ((1,), {}),
    ((1, "two", 3.5, None, [True]), {"k": "v", "n": {"deep": [1]}}),
    ((), {"only": "kwargs"}),
    (("ünïcode", "\u2603"), {}),
    ((2**70,), {}),  # beyond orjson: this message's body goes through the stdlib
    ((float("nan"),), {"x": 1}),
    (("x" * 3000,), {}),  # argsrepr cut to 1024 characters
]


def _prototype(**fields: Any) -> Any:
    return task_message(task="tasks.add", id="proto-id", args=(0,), origin="gen1@host",
                        reply_to="reply-1", **fields)


def _one_by_one(batch: EnvelopeBatch, msg: Any, queue: str, exchange: str, serializer: str,
                compression: str | None) -> list[Any]:
    out = []
    own_root = msg.root_id in (None, msg.id)
    for task_id, (args, kwargs) in zip(batch.ids, CALLS, strict=True):
        single = message_with(msg, id=task_id, args=tuple(args), kwargs=dict(kwargs),
                              root_id=task_id if own_root else msg.root_id)
        out.append(build_task_envelope(single, queue=queue, exchange=exchange,
                                       serializer=serializer, compression=compression, now=NOW))
    return out


@pytest.mark.parametrize("fields", MESSAGES.values(), ids=MESSAGES.keys())
@pytest.mark.parametrize(("serializer", "compression"),
                         [("json", None), ("json", "zlib"), ("pickle", None)])
def test_batch_elements_equal_the_single_message_path(
    fields: dict[str, Any], serializer: str, compression: str | None
) -> None:
    msg = _prototype(**fields)
    batch = build_task_batch(msg, CALLS, queue="other", exchange="", serializer=serializer,
                             compression=compression, now=NOW)
    singles = _one_by_one(batch, msg, "other", "", serializer, compression)
    assert len(set(batch.ids)) == len(CALLS)
    assert batch.envelopes() == singles
    elements = encode_elements(batch)
    for element, single in zip(elements, singles, strict=True):
        tag = decode_element(element).delivery_tag
        assert element == encode_element(replace(single, delivery_tag=tag))
    assert len({decode_element(e).delivery_tag for e in elements}) == len(CALLS)


def test_a_prototype_orjson_cannot_write_falls_back_to_the_exact_encoder() -> None:
    msg = _prototype(extra_headers={"big": 2**70})
    batch = build_task_batch(msg, CALLS[:2], queue="q", now=NOW)
    for element, envelope in zip(encode_elements(batch), batch.envelopes(), strict=True):
        tag = decode_element(element).delivery_tag
        assert element == encode_element(replace(envelope, delivery_tag=tag))
        assert b'", "' in element  # kombu's own separators: the stdlib wrote it


def test_user_values_that_look_like_markers_do_not_confuse_the_template() -> None:
    msg = _prototype(extra_headers={"a": "proto-id", "b": '"quoted" \\ back'})
    batch = build_task_batch(msg, [((1,), {}), (('"quoted"',), {})], queue="q", now=NOW)
    for element, envelope in zip(encode_elements(batch), batch.envelopes(), strict=True):
        decoded = json.loads(element)
        assert decoded["headers"]["a"] == "proto-id"
        assert decoded["headers"]["id"] == envelope.correlation_id
        tag = decode_element(element).delivery_tag
        assert element == encode_element(replace(envelope, delivery_tag=tag))


def test_protocol_1_is_refused() -> None:
    with pytest.raises(ValueError):
        build_task_batch(message_with(_prototype(), protocol=1), CALLS, queue="q")
