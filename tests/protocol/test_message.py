"""Task messages: every captured Celery message parses; what we build matches Celery's."""

from __future__ import annotations

import base64
import dataclasses
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from celeriac.errors import ContentDisallowed, DecodeError, ProtocolError
from celeriac.protocol.envelope import Envelope
from celeriac.protocol.kombu_json import decode_element, encode_element
from celeriac.protocol.message import (
    TaskMessage,
    build_task_envelope,
    message_with,
    new_task_id,
    parse_task_envelope,
    process_origin,
    safe_repr,
    task_message_summary,
)
from celeriac.protocol.serializers import serializer_name_for

ACCEPT_ALL = {"json", "pickle", "msgpack", "yaml"}
COMPRESSION_FOR = {"application/x-gzip": "zlib", "application/x-bz2": "bzip2"}


def _parse_raw(raw: str) -> tuple[Envelope, TaskMessage]:
    env = decode_element(raw)
    return env, parse_task_envelope(env, ACCEPT_ALL)


def _dt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def test_every_task_vector_parses(task_element: tuple[str, str]) -> None:
    _, raw = task_element
    env, msg = _parse_raw(raw)
    headers = env.headers
    if "task" not in headers:  # protocol 1
        body = json.loads(env.body)
        assert msg.protocol == 1
        assert (msg.task, msg.id, list(msg.args), msg.kwargs) == (
            body["task"],
            body["id"],
            body["args"],
            body["kwargs"],
        )
        return
    assert msg.protocol == 2
    assert msg.task == headers["task"]
    assert msg.id == headers["id"] == env.correlation_id
    assert msg.root_id == headers["root_id"]
    assert msg.parent_id == headers["parent_id"]
    assert msg.group == headers["group"]
    assert msg.group_index == headers["group_index"]
    assert msg.retries == headers["retries"]
    assert list(msg.timelimit) == headers["timelimit"]
    assert msg.shadow == headers["shadow"]
    assert msg.eta == _dt(headers["eta"])
    assert msg.expires == _dt(headers["expires"])
    assert msg.argsrepr == headers["argsrepr"]
    assert msg.origin == headers["origin"]
    assert msg.ignore_result is bool(headers["ignore_result"])
    assert msg.reply_to == env.reply_to
    assert msg.priority == env.priority
    extra = {k: v for k, v in headers.items() if k.startswith("x-")}
    assert dict(msg.extra_headers) == extra


def test_every_task_vector_rebuilds_identically(task_element: tuple[str, str]) -> None:
    """parse -> build gives Celery's exact headers (order included) and body bytes."""
    _, raw = task_element
    env, msg = _parse_raw(raw)
    serializer = serializer_name_for(env.content_type)
    assert serializer is not None
    rebuilt = build_task_envelope(
        msg,
        queue=env.routing_key,
        serializer=serializer,
        compression=COMPRESSION_FOR.get(env.headers.get("compression", "")),
        exact=True,
    )
    expected = dict(env.headers)
    if expected.get("ignore_result") is None and "task" in expected:
        # send_task() by name writes null here; we always write a bool
        expected["ignore_result"] = False
    assert list(rebuilt.headers.items()) == list(expected.items())
    assert rebuilt.body == env.body
    assert (rebuilt.content_type, rebuilt.content_encoding) == (
        env.content_type,
        env.content_encoding,
    )
    assert rebuilt.correlation_id == env.correlation_id
    assert rebuilt.routing_key == env.routing_key
    if env.expiration is None:
        assert rebuilt.expiration is None
    same_tag = Envelope(**{**_fields(rebuilt), "delivery_tag": env.delivery_tag})
    if env.expiration is None and not env.extra_properties and expected == env.headers:
        assert encode_element(same_tag, exact=True) == raw.encode()


def _fields(env: Envelope) -> dict[str, Any]:
    return {name: getattr(env, name) for name in env.__dataclass_fields__}


def _fresh(**kwargs: Any) -> TaskMessage:
    return TaskMessage(task="tasks.add", id=new_task_id(), origin=process_origin(), **kwargs)


# (vector, message built the way the vector's python_call describes, options)
NOW = datetime(2026, 11, 21, 7, 35, 59, 438060, tzinfo=UTC)
SAME_CALLS: list[tuple[str, TaskMessage, dict[str, Any]]] = [
    ("redis_delay_add", _fresh(args=(2, 3)), {}),
    ("redis_kwargs_add", _fresh(args=(2,), kwargs={"y": 3}), {}),
    ("redis_countdown", _fresh(args=(2, 3), eta=NOW + timedelta(seconds=60)), {}),
    (
        "redis_eta_expires",
        _fresh(
            args=(2, 3),
            eta=datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC),
            expires=datetime(2030, 1, 3, tzinfo=UTC),
        ),
        {},
    ),
    ("redis_expires_seconds", _fresh(args=(2, 3), expires=NOW + timedelta(seconds=120)), {}),
    ("redis_custom_queue", _fresh(args=(2, 3)), {"queue": "hipri"}),
    (
        "redis_shadow_timelimit_ignore",
        _fresh(
            args=(2, 3),
            shadow="renamed.add",
            timelimit=(30, 20),
            ignore_result=True,
            extra_headers={"x-custom": "v"},
        ),
        {},
    ),
    ("redis_compression_zlib", _fresh(args=(2, 3)), {"compression": "zlib"}),
    ("redis_compression_gzip", _fresh(args=(2, 3)), {"compression": "gzip"}),
    ("redis_compression_bzip2", _fresh(args=(2, 3)), {"compression": "bzip2"}),
    ("redis_serializer_msgpack", _fresh(args=(2, 3)), {"serializer": "msgpack"}),
    ("redis_serializer_yaml", _fresh(args=(2, 3)), {"serializer": "yaml"}),
    ("redis_serializer_pickle", _fresh(args=(2, 3)), {"serializer": "pickle"}),
    ("redis_priority", _fresh(args=(9, 0), priority=9), {}),
]


@pytest.mark.parametrize(
    ("case", "msg", "options"), SAME_CALLS, ids=[case for case, _, _ in SAME_CALLS]
)
def test_built_headers_match_celery(
    case: str, msg: TaskMessage, options: dict[str, Any], vector: Any
) -> None:
    """Same keys, same order, same types as Celery for the same call (ids/times aside)."""
    captured = vector(case)["messages"][-1]
    env = decode_element(captured["raw_list_element"])
    options = {"queue": "celery", **options}
    built = build_task_envelope(msg, **options, exact=True)
    assert list(built.headers) == list(env.headers)
    for key, value in env.headers.items():
        assert type(built.headers[key]) is type(value), key
    volatile = {"id", "root_id", "origin", "eta", "expires"}
    for key, value in env.headers.items():
        if key not in volatile:
            assert built.headers[key] == value, key
    assert built.body == env.body
    assert built.content_type == env.content_type
    assert built.priority == env.priority
    assert built.routing_key == env.routing_key
    if case == "redis_eta_expires":
        assert built.headers["eta"] == env.headers["eta"]
        assert built.headers["expires"] == env.headers["expires"]


def test_expiration_is_milliseconds_until_expiry() -> None:
    msg = _fresh(expires=NOW + timedelta(seconds=120))
    assert build_task_envelope(msg, queue="celery", now=NOW).expiration == "120000"
    past = _fresh(expires=NOW - timedelta(seconds=5))
    assert build_task_envelope(past, queue="celery", now=NOW).expiration == "0"


def test_link_and_chain_embed(vector: Any) -> None:
    _, msg = _parse_raw(vector("redis_link_linkerror")["messages"][0]["raw_list_element"])
    assert msg.callbacks is not None and msg.callbacks[0]["task"] == "tasks.add"
    assert msg.callbacks[0]["args"] == [10]
    assert msg.errbacks is not None and msg.errbacks[0]["task"] == "tasks.on_err"
    _, chained = _parse_raw(vector("redis_chain")["messages"][0]["raw_list_element"])
    assert chained.chain is not None
    assert [sig["args"] for sig in chained.chain] == [[4], [3]]  # reversed, as Celery sends
    _, part = _parse_raw(vector("redis_chord")["messages"][0]["raw_list_element"])
    assert part.chord is not None and part.chord["task"] == "tasks.tsum"
    assert part.group == part.chord["options"]["group_id"]


def test_protocol_1(vector: Any) -> None:
    env, msg = _parse_raw(vector("redis_protocol_v1_delay_add")["messages"][0]["raw_list_element"])
    assert env.headers == {}
    assert msg == TaskMessage(
        task="tasks.add",
        id="3dd5ebfb-4922-42f7-a782-9ba67b618c1f",
        args=(2, 3),
        kwargs={},
        priority=0,
        reply_to="b44d66a1-534b-3f87-9d48-8a3a9fd9cd9d",
        protocol=1,
    )
    rebuilt = build_task_envelope(msg, queue="celery", exact=True)
    assert rebuilt.body == env.body and rebuilt.headers == {}


def test_protocol_1_cannot_carry_a_chain() -> None:
    with pytest.raises(ProtocolError, match="chain"):
        build_task_envelope(_fresh(protocol=1, chain=[{"task": "x"}]), queue="q")


def test_v1_taskset_and_naive_eta() -> None:
    body = {"task": "t", "id": "i", "args": [], "taskset": "g", "eta": "2030-01-01T00:00:00"}
    msg = parse_task_envelope(Envelope(body=json.dumps(body).encode()), {"json"})
    assert msg.group == "g"
    assert msg.eta == datetime(2030, 1, 1, tzinfo=UTC)


def test_naive_eta_header_is_utc() -> None:
    env = build_task_envelope(_fresh(), queue="q")
    headers = {**env.headers, "eta": "2030-01-01T00:00:00"}
    msg = parse_task_envelope(Envelope(body=env.body, headers=headers), {"json"})
    assert msg.eta == datetime(2030, 1, 1, tzinfo=UTC)
    naive = build_task_envelope(_fresh(eta=datetime(2030, 1, 1)), queue="q")
    assert naive.headers["eta"] == "2030-01-01T00:00:00+00:00"


def test_other_offsets_are_kept() -> None:
    eta = datetime(2030, 1, 1, 9, tzinfo=timezone(timedelta(hours=2)))
    env = build_task_envelope(_fresh(eta=eta), queue="q")
    assert env.headers["eta"] == "2030-01-01T09:00:00+02:00"
    assert parse_task_envelope(env, {"json"}).eta == eta


def _task_env(body: Any, **headers: Any) -> Envelope:
    return Envelope(body=json.dumps(body).encode(), headers={"task": "t", "id": "i", **headers})


@pytest.mark.parametrize(
    ("env", "reason"),
    [
        (Envelope(body=b"[[], {}, {}]"), "no 'task' header and its body is not a protocol 1"),
        (Envelope(body=b'{"id": "x"}'), "no 'task' header"),
        (Envelope(body=b"{nope"), "not valid JSON"),
        (_task_env({"a": 1}), r"\[args, kwargs, embed\]"),
        (_task_env(["x", {}, {}]), "args must be a list"),
        (_task_env([[], [], {}]), "kwargs must be an object"),
        (_task_env([[], {}, []]), "embed is not an object"),
        (_task_env([[], {}, {"callbacks": "x"}]), "callbacks"),
        (_task_env([[], {}, {"chord": [1]}]), "chord"),
        (_task_env([[], {}, {}], eta="tomorrow"), "'eta' is not an ISO-8601"),
        (_task_env([[], {}, {}], retries="1"), "'retries' must be an integer"),
        (_task_env([[], {}, {}], timelimit=[1]), "timelimit"),
        (_task_env([[], {}, {}], group=5), "'group' must be a string"),
        (_task_env([[], {}, {}], task=""), "no valid 'task'"),
        (_task_env([[], {}, {}], id=None), "no valid 'id'"),
    ],
)
def test_bad_messages_raise_decode_error(env: Envelope, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        parse_task_envelope(env, {"json"})


def test_content_not_accepted(vector: Any) -> None:
    env = decode_element(vector("redis_serializer_pickle")["messages"][0]["raw_list_element"])
    with pytest.raises(ContentDisallowed, match="application/x-python-serialize"):
        parse_task_envelope(env, {"json"})
    assert parse_task_envelope(env, {"json", "pickle"}).args == (2, 3)


def test_two_element_body_and_null_embed_are_tolerated() -> None:
    msg = parse_task_envelope(_task_env([[1], {"a": 2}]), {"json"})
    assert (msg.args, msg.kwargs, msg.callbacks) == ((1,), {"a": 2}, None)
    msg = parse_task_envelope(_task_env([[1], None, None]), {"json"})
    assert msg.kwargs == {}


def test_argsrepr_is_bounded_and_safe() -> None:
    env = build_task_envelope(_fresh(args=("x" * 5000,)), queue="q")
    assert len(env.headers["argsrepr"]) == 1024
    assert env.headers["argsrepr"].endswith("...")

    class Bad:
        def __repr__(self) -> str:
            raise RuntimeError("no")

    assert safe_repr(Bad(), 100) == "<unrepresentable Bad>"


def test_root_id_defaults_to_own_id() -> None:
    msg = _fresh()
    assert build_task_envelope(msg, queue="q").headers["root_id"] == msg.id
    child = message_with(msg, id=new_task_id(), root_id=msg.id, parent_id=msg.id)
    headers = build_task_envelope(child, queue="q").headers
    assert (headers["root_id"], headers["parent_id"]) == (msg.id, msg.id)


def test_extra_headers_cannot_override_known_ones() -> None:
    env = build_task_envelope(_fresh(extra_headers={"task": "evil", "x-a": 1}), queue="q")
    assert env.headers["task"] == "tasks.add"
    assert list(env.headers)[-1] == "x-a"


def test_summary() -> None:
    msg = _fresh(args=(2, 3), retries=2, eta=datetime(2030, 1, 1, tzinfo=UTC))
    text = task_message_summary(msg)
    assert text.startswith(f"tasks.add[{msg.id}]")
    assert "retries=2" in text and "eta=2030-01-01T00:00:00+00:00" in text and "(2, 3)" in text


def test_message_is_frozen() -> None:
    msg = _fresh()
    with pytest.raises(AttributeError):
        msg.task = "other"  # type: ignore[misc]


# -- property: build -> kombu element -> parse is the identity ----------------

_ids = st.uuids().map(str)
_times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
_limits = st.none() | st.integers(min_value=0, max_value=10**6) | st.floats(0, 1e6)


def _messages(serializer: str) -> st.SearchStrategy[TaskMessage]:
    """Task messages whose values ``serializer`` can carry (msgpack: 64-bit ints)."""
    ints = (
        st.integers(min_value=-(2**63), max_value=2**64 - 1)
        if serializer == "msgpack"
        else st.integers()
    )
    leaf = st.none() | st.booleans() | ints | st.floats(allow_nan=False) | st.text(max_size=20)
    json_value = st.recursive(
        leaf,
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
        ),
        max_leaves=12,
    )
    sig = st.fixed_dictionaries(
        {"task": st.text(min_size=1, max_size=10), "args": st.lists(leaf, max_size=3)}
    )
    return st.builds(
        TaskMessage,
        task=st.text(min_size=1, max_size=30),
        id=_ids,
        args=st.lists(json_value, max_size=4).map(tuple),
        kwargs=st.dictionaries(st.text(max_size=10), json_value, max_size=4),
        callbacks=st.none() | st.lists(sig, max_size=2),
        errbacks=st.none() | st.lists(sig, max_size=2),
        chain=st.none() | st.lists(sig, max_size=2),
        chord=st.none() | sig,
        eta=st.none() | _times,
        expires=st.none() | _times,
        retries=st.integers(min_value=0, max_value=100),
        group=st.none() | _ids,
        group_index=st.none() | st.integers(min_value=0, max_value=1000),
        root_id=_ids,
        parent_id=st.none() | _ids,
        shadow=st.none() | st.text(max_size=10),
        timelimit=st.tuples(_limits, _limits),
        ignore_result=st.booleans(),
        origin=st.none() | st.text(max_size=20),
        argsrepr=st.none() | st.text(max_size=20),
        kwargsrepr=st.none() | st.text(max_size=20),
        replaced_task_nesting=st.integers(min_value=0, max_value=5),
        stamped_headers=st.none() | st.lists(st.text(max_size=5), max_size=2),
        stamps=st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2),
        extra_headers=st.dictionaries(
            st.text(max_size=6).map(lambda s: "x-" + s), json_value, max_size=2
        ),
        priority=st.integers(min_value=0, max_value=9),
        reply_to=st.none() | _ids,
    )


@settings(max_examples=150, deadline=None)
@given(
    data=st.data(),
    serializer=st.sampled_from(["json", "msgpack", "yaml", "pickle"]),
    compression=st.sampled_from([None, "zlib", "bzip2"]),
)
def test_build_parse_round_trip(
    data: st.DataObject, serializer: str, compression: str | None
) -> None:
    """build -> kombu element -> decode -> parse gives the message back."""
    msg = data.draw(_messages(serializer))
    env = build_task_envelope(msg, queue="q", serializer=serializer, compression=compression)
    back = parse_task_envelope(decode_element(encode_element(env)), ACCEPT_ALL)
    expected = message_with(
        msg,
        argsrepr=env.headers["argsrepr"],
        kwargsrepr=env.headers["kwargsrepr"],
        args=_listify(msg.args),
    )
    assert back == expected


def _listify(args: tuple[Any, ...]) -> tuple[Any, ...]:
    # tuples nested in args come back as lists, as with Celery
    return tuple(json.loads(json.dumps(list(args))))


def test_body_base64_in_vector_matches_body(vector: Any) -> None:
    message = vector("redis_delay_add")["messages"][0]
    env = decode_element(message["raw_list_element"])
    assert env.body == base64.b64decode(message["body_decoded"]["body_bytes_b64"])


def test_parsed_message_has_every_field_and_keeps_extra_header_order() -> None:
    env = build_task_envelope(_fresh(extra_headers={"x-b": 1, "x-a": 2}), queue="q")
    msg = parse_task_envelope(decode_element(encode_element(env)), {"json"})
    assert set(vars(msg)) == {f.name for f in dataclasses.fields(TaskMessage)}
    assert list(msg.extra_headers) == ["x-b", "x-a"]
    assert msg == dataclasses.replace(msg)  # the ordinary constructor agrees
