"""Celery's ``from celery.result import AsyncResult`` works as ``celeriac.result``."""

from __future__ import annotations

import celeriac
from celeriac import Celery
from celeriac.result import AsyncResult, GroupResult, ResultSet


def test_celery_result_path_gives_the_same_classes() -> None:
    assert AsyncResult is celeriac.AsyncResult
    assert GroupResult is celeriac.GroupResult
    assert ResultSet is celeriac.ResultSet


def test_a_handle_built_from_an_id_reads_the_backend() -> None:
    app = Celery("paths", broker="memory://", backend="memory://")
    app.conf.task_always_eager = False

    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    sent = add.delay(2, 2)
    handle = AsyncResult(sent.id, app=app)
    assert handle.id == sent.id
    assert handle.state == "PENDING"
