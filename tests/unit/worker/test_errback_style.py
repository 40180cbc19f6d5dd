"""Which errbacks the worker calls in place (new-style) and which it sends with the id."""

from __future__ import annotations

from celeriac import Celery
from celeriac.worker.completion import _takes_request_exc_tb

app = Celery("errbacks", broker="memory://", backend="memory://")


@app.task
def named_like_the_seed(task_id, exc, traceback):  # type: ignore[no-untyped-def]
    return task_id


@app.task
def named_request(request, exc, traceback):  # type: ignore[no-untyped-def]
    return request


@app.task
def two_positional(request, exc):  # type: ignore[no-untyped-def]
    return request


@app.task
def star_args(*args):  # type: ignore[no-untyped-def]
    return args


@app.task
def id_only(task_id):  # type: ignore[no-untyped-def]
    return task_id


@app.task
def id_and_keyword_only(task_id, *, note=None):  # type: ignore[no-untyped-def]
    return task_id


@app.task(bind=True)
def bound_id_only(self, task_id):  # type: ignore[no-untyped-def]
    return task_id


@app.task(bind=True)
def bound_new_style(self, request, exc, traceback):  # type: ignore[no-untyped-def]
    return request


def test_more_than_one_positional_parameter_is_new_style_whatever_the_names() -> None:
    for task in (named_like_the_seed, named_request, two_positional, star_args, bound_new_style):
        assert _takes_request_exc_tb(task), task.name


def test_one_positional_parameter_is_sent_with_the_failed_id() -> None:
    for task in (id_only, id_and_keyword_only, bound_id_only):
        assert not _takes_request_exc_tb(task), task.name
