"""The bulk send API: ``Task.delay_many`` / ``App.send_many`` and their async forms."""

from __future__ import annotations

from pathlib import Path

import pytest

from celeriac import Celery
from celeriac.testing.worker_thread import run_worker


@pytest.fixture(params=["memory", "sqlite"])
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Celery:
    url = f"memory://{tmp_path.name}" if request.param == "memory" else f"sqlite:///{tmp_path}/t.db"
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
