"""``delay()`` with no options: sent from a per-task plan, the same message as in full.

The plan (``Producer.plain``) holds what is the same for every call of a task;
these tests check that what reaches the broker is what ``Producer.build``
makes, that the plan follows changes of settings and task attributes, and that
signals, calls made inside a task and a connection closed by Redis still
behave as with the full path.
"""

from __future__ import annotations

import contextlib
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import redis

from celeriac import Celery, signals
from celeriac.app.context import Context, push_request
from celeriac.protocol import keys
from celeriac.protocol.kombu_json import decode_element, encode_element
from celeriac.protocol.message import parse_task_envelope
from celeriac.testing.worker_thread import run_worker

ACCEPT = ("application/json",)


@pytest.fixture
def app(redis_url: str) -> Any:
    app = Celery("plain", broker=redis_url)

    @app.task(ignore_result=True)
    def noop(x: Any, y: Any = 0) -> None:
        return None

    yield app
    app.close()


@pytest.fixture
def raw(redis_url: str) -> Any:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def _elements(raw: redis.Redis, queue: str = "celery") -> list[bytes]:
    return list(reversed(raw.lrange(queue, 0, -1)))  # LPUSHed: oldest last


def test_the_element_is_the_full_build(app: Any, raw: redis.Redis) -> None:
    noop = app.tasks[f"{__name__}.noop"]
    calls = [((1,), {}), (("é\u2028",), {"y": {"k": [1.5, None]}}), ((2**70,), {}),
             (("\ud800",), {})]
    ids = [noop.apply_async(args, kwargs).id for args, kwargs in calls]
    ids += [noop.delay(7, y=8).id]
    calls += [((7,), {"y": 8})]
    elements = _elements(raw)
    assert len(elements) == len(calls)
    for (args, kwargs), task_id, element in zip(calls, ids, elements, strict=True):
        full = app.producer.build(noop.name, args, kwargs, {"task_id": task_id}, noop)
        tag = decode_element(element).delivery_tag
        assert element == encode_element(replace(full.envelope, delivery_tag=tag))
    tags = {decode_element(e).delivery_tag for e in elements}
    assert len(tags) == len(elements)


def test_the_plan_follows_settings_and_task_attributes(app: Any, raw: redis.Redis) -> None:
    noop = app.tasks[f"{__name__}.noop"]
    noop.delay(1)
    app.conf.task_default_queue = "other"
    noop.delay(2)
    noop.queue = "third"
    noop.ignore_result = False
    noop.delay(3)
    first, second, third = (parse_task_envelope(decode_element(e), ACCEPT)
                            for q in ("celery", "other", "third") for e in _elements(raw, q))
    assert (first.args, second.args, third.args) == ((1,), (2,), (3,))
    assert first.ignore_result and second.ignore_result and not third.ignore_result


def test_publish_signals_see_and_edit_the_message(app: Any, raw: redis.Redis) -> None:
    noop = app.tasks[f"{__name__}.noop"]
    seen: list[tuple[str, Any]] = []

    def before(headers: dict[str, Any], **_: Any) -> None:
        headers["x-trace"] = "t-1"
        seen.append(("before", headers["id"]))

    def after(headers: dict[str, Any], **_: Any) -> None:
        seen.append(("after", headers["id"]))

    noop.delay(0)  # a plan exists before the receivers connect
    signals.before_task_publish.connect(before)
    signals.after_task_publish.connect(after)
    try:
        task_id = noop.delay(1).id
    finally:
        signals.before_task_publish.disconnect(before)
        signals.after_task_publish.disconnect(after)
    assert seen == [("before", task_id), ("after", task_id)]
    sent = decode_element(_elements(raw)[1])
    assert sent.headers["x-trace"] == "t-1"
    noop.delay(2)
    assert "x-trace" not in decode_element(_elements(raw)[2]).headers


def test_a_call_inside_a_task_names_its_parent(app: Any, raw: redis.Redis) -> None:
    noop = app.tasks[f"{__name__}.noop"]
    noop.delay(0)
    with push_request(Context(id="parent-1", root_id="root-1", called_directly=False)):
        noop.delay(1)
    noop.delay(2)
    messages = [parse_task_envelope(decode_element(e), ACCEPT) for e in _elements(raw)]
    assert [(m.parent_id, m.root_id == m.id) for m in messages] == [
        (None, True), ("parent-1", False), (None, True)]
    assert messages[1].root_id == "root-1"


def test_delay_after_redis_closed_the_connection_queues_once(app: Any,
                                                              raw: redis.Redis) -> None:
    noop = app.tasks[f"{__name__}.noop"]
    noop.delay(1)
    db = app.transport._target.db
    for client in raw.client_list():
        if int(client["db"]) == db:
            with contextlib.suppress(redis.ResponseError):
                raw.client_kill_filter(_id=client["id"], skipme=True)
    noop.delay(2)  # the kept connection was closed: retried on a new one
    assert [parse_task_envelope(decode_element(e), ACCEPT).args
            for e in _elements(raw)] == [(1,), (2,)]


def test_delay_after_the_script_was_flushed(app: Any, raw: redis.Redis) -> None:
    noop = app.tasks[f"{__name__}.noop"]
    noop.delay(1)
    raw.script_flush()
    noop.delay(2)  # NOSCRIPT: sent again as EVAL
    noop.delay(3)
    assert len(_elements(raw)) == 3


def test_a_worker_runs_plain_sends(app: Any, raw: redis.Redis) -> None:
    # a plain send goes through the same PUBLISH script as a full one (handed
    # to a worker idle on the queue, or pushed)
    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    app.conf.result_backend = app.conf.broker_url
    with run_worker(app, pool="solo"):
        assert add.delay(2, 3).get(timeout=10) == 5
    assert raw.llen(keys.priority_queue("celery", 0)) == 0


@pytest.mark.parametrize("url", ["memory", "sqlite"])
def test_other_brokers_get_the_same_message(url: str, tmp_path: Path) -> None:
    broker = f"memory://{tmp_path.name}" if url == "memory" else f"sqlite:///{tmp_path}/t.db"
    app = Celery("plain", broker=broker, backend=broker)

    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    results = [add.delay(i, i) for i in range(5)]
    with run_worker(app, pool="solo"):
        assert [r.get(timeout=10) for r in results] == [0, 2, 4, 6, 8]
    app.close()
