"""The built-in ``celery.chain`` task sends the chain it is given."""

from __future__ import annotations

import pytest

from celeriac import Celery, chain
from celeriac.testing.worker_thread import run_worker


def test_celery_chain_task_sends_its_steps(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path}/b.db"
    app = Celery("bc", broker=url, backend=url)

    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    steps = chain(add.s(1, 2), add.s(10)).as_dict()["kwargs"]["tasks"]
    with run_worker(app):
        last_id = app.send_task("celery.chain", (), {"tasks": steps}).get(timeout=20)
        assert app.AsyncResult(last_id).get(timeout=20) == 13


def test_celery_chain_without_steps_is_a_clear_error() -> None:
    app = Celery("bc2", broker="memory://")
    with pytest.raises(TypeError, match="tasks"):
        app.tasks["celery.chain"]()
