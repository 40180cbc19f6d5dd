"""Stored results: every captured value decodes and re-encodes byte for byte."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest

from celeriac.errors import ContentDisallowed, DecodeError
from celeriac.protocol import states
from celeriac.protocol.results import (
    ResultMeta,
    chord_part_member,
    decode_chord_part_member,
    decode_group_meta,
    decode_meta,
    encode_group_meta,
    encode_meta,
    now_iso,
)


def test_stored_result_round_trips(stored_result: tuple[str, str]) -> None:
    _, raw = stored_result
    meta = decode_meta(raw)
    assert meta.status in states.ALL_STATES
    assert encode_meta(meta, exact=True) == raw.encode()


def test_success_fields(vector: Any) -> None:
    raw = vector("result_success")["commands"][0]["command"][3]
    meta = decode_meta(raw)
    assert meta == ResultMeta(
        task_id="4fa4a637-b7c6-4f02-af4e-fe4de3106803",
        status="SUCCESS",
        result=5,
        traceback=None,
        children=[],
        date_done="2026-11-21T07:46:39.653748+00:00",
    )


def test_extended_fields(vector: Any) -> None:
    meta = decode_meta(vector("result_extended_success")["commands"][0]["command"][3])
    assert meta.extended
    assert (meta.name, meta.args, meta.kwargs, meta.worker, meta.retries, meta.queue) == (
        "tasks.add",
        [4, 5],
        {},
        "w2@proto",
        0,
        "ext",
    )


def test_revoked_has_null_children(vector: Any) -> None:
    meta = decode_meta(vector("result_revoked")["commands"][0]["command"][3])
    assert meta.children is None
    assert meta.result["exc_module"] == "celery.exceptions"


def test_group_and_parent_ids_come_before_task_id() -> None:
    meta = ResultMeta(task_id="t", status="SUCCESS", result=1, group_id="g", parent_id="p")
    keys = list(json.loads(encode_meta(meta)))
    assert keys == [
        "status",
        "result",
        "traceback",
        "children",
        "date_done",
        "group_id",
        "parent_id",
        "task_id",
    ]


def test_task_id_from_argument_when_missing() -> None:
    meta = decode_meta(b'{"status": "SUCCESS", "result": 1}', task_id="abc")
    assert meta.task_id == "abc"
    with pytest.raises(DecodeError, match="no task id"):
        decode_meta(b'{"status": "SUCCESS", "result": 1}')


@pytest.mark.parametrize("raw", [b"[1]", b'{"result": 1}', b"nope", b'{"status": 5}'])
def test_bad_results(raw: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_meta(raw, task_id="t")


@pytest.mark.parametrize("serializer", ["json", "pickle", "msgpack", "yaml"])
def test_other_serializers_round_trip(serializer: str) -> None:
    meta = ResultMeta(task_id="t", status="SUCCESS", result=[1, "a"], date_done=now_iso())
    assert decode_meta(encode_meta(meta, serializer), serializer) == meta


def test_pickle_results_need_accept() -> None:
    data = encode_meta(ResultMeta(task_id="t", status="SUCCESS"), "pickle")
    with pytest.raises(ContentDisallowed):
        decode_meta(data, "pickle", accept={"json"})


def test_kombu_types_in_results() -> None:
    when = datetime.fromisoformat("2024-01-02T03:04:05+00:00")
    meta = ResultMeta(task_id="t", status="SUCCESS", result={"when": when})
    data = encode_meta(meta, exact=True)
    assert b'{"__type__": "datetime", "__value__": "2024-01-02T03:04:05+00:00"}' in data
    assert decode_meta(data).result == {"when": when}
    fast = encode_meta(meta)
    assert b'{"__type__":"datetime","__value__":"2024-01-02T03:04:05+00:00"}' in fast
    assert decode_meta(fast) == decode_meta(data)


def test_now_iso_format() -> None:
    value = datetime.fromisoformat(now_iso())
    assert value.utcoffset() is not None and value.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


def test_group_meta_vector(vector: Any) -> None:
    db1 = vector("result_backend_keys_dump")["db1"]
    key = next(k for k in db1 if k.startswith("celery-taskset-meta-") and "." not in k)
    raw = db1[key]["value"]
    ids = decode_group_meta(raw)
    assert ids == ["c917de68-cb0d-456b-a688-89d3298db211", "20b50bee-0ecb-4953-80bc-71a9c12a67cf"]
    assert (
        encode_group_meta(key.removeprefix("celery-taskset-meta-"), ids, exact=True) == raw.encode()
    )


def test_bad_group_meta() -> None:
    with pytest.raises(DecodeError):
        decode_group_meta(b'{"result": 5}')
    with pytest.raises(DecodeError):
        decode_group_meta(b'{"nope": 1}')


def test_chord_members_from_vector(vector: Any) -> None:
    members = [
        c["command"][3]
        for c in vector("redis_worker_chord")["commands"]
        if c["command"][0] == "ZADD" and c["command"][1].endswith(".j")
    ]
    assert members
    for raw in members:
        task_id, state, result = decode_chord_part_member(raw)
        assert state == "SUCCESS"
        assert chord_part_member(task_id, state, result) == raw.encode()


def test_bad_chord_member() -> None:
    with pytest.raises(DecodeError):
        decode_chord_part_member(b'[1, 2, "SUCCESS", 3]')
