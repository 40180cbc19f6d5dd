"""The bulk send API: ``Task.delay_many`` / ``App.send_many`` and their async forms."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from celeriac import Celery, signals
from celeriac.app.producer import OutgoingBatch
from celeriac.protocol.batch import encode_elements
from celeriac.protocol.kombu_json import decode_element, encode_element
from celeriac.testing.worker_thread import run_worker


@pytest.fixture(params=["memory", "sqlite", "redis"])
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Celery:
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
    elif request.param == "memory":
        url = f"memory://{tmp_path.name}"
    else:
        url = f"sqlite:///{tmp_path}/t.db"
    app = Celery("bulk", broker=url, backend=url)

    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    @app.task
    def scale(x: int, factor: int = 1) -> int:
        return x * factor

    return app


def test_delay_many_runs_every_call_once(app: Celery) -> None:
    add = app.tasks[f"{__name__}.add"]
    results = add.delay_many([(i, i) for i in range(250)], chunk_size=100)
    assert len({r.id for r in results}) == 250
    with run_worker(app, pool="threads", concurrency=4):
        assert [r.get(timeout=20) for r in results] == [2 * i for i in range(250)]


def test_kwargs_list_pairs_item_by_item(app: Celery) -> None:
    scale = app.tasks[f"{__name__}.scale"]
    results = app.send_many(scale.name, [(1,), (2,), (3,)],
                            [{"factor": 10}, {}, {"factor": 3}])
    with run_worker(app, pool="solo"):
        assert [r.get(timeout=10) for r in results] == [10, 2, 9]


def test_lengths_must_match_and_ids_are_not_shared(app: Celery) -> None:
    add = app.tasks[f"{__name__}.add"]
    with pytest.raises(ValueError):
        add.delay_many([(1, 1), (2, 2)], [{}])
    with pytest.raises(TypeError, match="task_id"):
        add.delay_many([(1, 1)], task_id="fixed")
    assert add.delay_many([]) == []


async def test_adelay_many(app: Celery) -> None:
    add = app.tasks[f"{__name__}.add"]
    results = await add.adelay_many([(i, 1) for i in range(20)])
    with run_worker(app, pool="threads"):
        assert [await r for r in results] == [i + 1 for i in range(20)]
    await app.aclose()


def test_eager_mode_runs_here(app: Celery) -> None:
    app.conf.task_always_eager = True
    add = app.tasks[f"{__name__}.add"]
    assert [r.get() for r in add.delay_many([(1, 2), (3, 4)])] == [3, 7]


def test_options_apply_to_every_call(app: Celery) -> None:
    add = app.tasks[f"{__name__}.add"]
    results = add.delay_many([(i, 1) for i in range(30)], countdown=0.2, priority=5,
                             expires=600, headers={"x-trace": "t"}, chunk_size=7)
    with run_worker(app, pool="threads", concurrency=4):
        assert [r.get(timeout=20) for r in results] == [i + 1 for i in range(30)]


NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
CALLS = [((1, 2), {}), ((3,), {"y": 4}), (("a", "b"), {}), ((5, 6), {})]
OPTION_SETS: dict[str, dict[str, Any]] = {
    "none": {},
    "countdown": {"countdown": 30},
    "eta-expires": {"eta": NOW + timedelta(minutes=1), "expires": NOW + timedelta(hours=1)},
    "priority": {"priority": 7},
    "headers-link": {"headers": {"x-trace": "abc"},
                     "link": {"task": "cb", "args": [], "kwargs": {}, "options": {}}},
    "other-queue": {"queue": "elsewhere"},
    "ignore-result-shadow": {"ignore_result": True, "shadow": "shown"},
}


@pytest.mark.parametrize("options", OPTION_SETS.values(), ids=OPTION_SETS.keys())
def test_bulk_elements_are_the_single_send_elements(options: dict[str, Any]) -> None:
    app = Celery("bulk", broker="redis://127.0.0.1:6379/0")  # nothing is sent

    @app.task
    def add(x: Any, y: Any = 0) -> Any:
        return x + y

    producer = app.producer
    chunks = list(producer.build_batches(add.name, [a for a, _ in CALLS], [k for _, k in CALLS],
                                         options, add, size=3, now=NOW))
    assert [len(c.envelopes) for c in chunks if isinstance(c, OutgoingBatch)] == [3, 1]
    for chunk in chunks:
        assert isinstance(chunk, OutgoingBatch)
    calls = iter(CALLS)
    for chunk in chunks:
        assert isinstance(chunk, OutgoingBatch)
        for task_id, element in zip(chunk.ids, encode_elements(chunk.envelopes), strict=True):
            args, kwargs = next(calls)
            single = producer.build(add.name, args, kwargs, {**options, "task_id": task_id},
                                    add, now=NOW)
            assert single.route == chunk.task.route and single.eta == chunk.task.eta
            tag = decode_element(element).delivery_tag
            assert element == encode_element(replace(single.envelope, delivery_tag=tag))


def test_publish_signals_and_router_functions_get_one_message_per_call() -> None:
    app = Celery("bulk", broker="redis://127.0.0.1:6379/0")  # nothing is sent

    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    def seen(**_: Any) -> None:
        pass

    signals.before_task_publish.connect(seen)
    try:
        chunks = list(app.producer.build_batches(add.name, [(1, 2)], None, {}, add))
    finally:
        signals.before_task_publish.disconnect(seen)
    assert isinstance(chunks[0], list)
    app = Celery("bulk", broker="redis://127.0.0.1:6379/0")
    app.conf.task_routes = lambda name, args, kwargs, options, task=None, **kw: (
        {"queue": f"q{args[0]}"})
    add = app.task(add.run)
    chunks = list(app.producer.build_batches(add.name, [(1, 2), (2, 2)], None, {}, add))
    assert isinstance(chunks[0], list)
    assert [o.route.queue for o in chunks[0]] == ["q1", "q2"]
    chunks = list(app.producer.build_batches(add.name, [(1, 2)], None, {"queue": "x"}, add))
    assert isinstance(chunks[0], OutgoingBatch)
