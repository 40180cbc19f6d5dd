"""``Request.to_job``: the request context a task sees (``self.request``)."""

from __future__ import annotations

import pytest

from celeriac.app.context import Context
from celeriac.protocol.envelope import Envelope
from celeriac.protocol.message import task_message
from celeriac.transports.base import Delivery
from celeriac.worker import request as request_module
from celeriac.worker.request import Request


class _Task:
    time_limit = 30.0
    soft_time_limit = None


def _request() -> Request:
    message = task_message(
        task="proj.add", id="id-1", args=(1, 2), kwargs={"k": 3}, retries=2, group="g",
        group_index=1, root_id="root", parent_id="parent", origin="gen1@host",
        timelimit=(None, 5.0), callbacks=[{"task": "cb"}], errbacks=None, chain=None,
        chord=None, extra_headers={"custom": "x"}, priority=4, reply_to="reply",
        ignore_result=True,
    )
    envelope = Envelope(b"[]", exchange="ex", routing_key="rk", priority=4)
    return Request(message, Delivery(envelope, "q", None, True), _Task())


def test_the_context_carries_the_message() -> None:
    job = _request().to_job("worker@host", None, None)
    assert job.ctx == Context(
        id="id-1", task="proj.add", args=(1, 2), kwargs={"k": 3}, retries=2, is_eager=False,
        called_directly=False, hostname="worker@host",
        delivery_info={"exchange": "ex", "routing_key": "rk", "priority": 4,
                       "redelivered": True},
        group="g", group_index=1, root_id="root", parent_id="parent", reply_to="reply",
        correlation_id="id-1", origin="gen1@host", timelimit=(30.0, 5.0),
        callbacks=[{"task": "cb"}], headers={"custom": "x"}, priority=4, ignore_result=True,
    )
    assert (job.task_name, job.time_limit, job.soft_time_limit) == ("proj.add", 30.0, 5.0)


def test_the_task_may_change_its_kwargs_and_headers_without_touching_the_message() -> None:
    request = _request()
    job = request.to_job("w", None, None)
    job.ctx.kwargs["k"] = 99
    job.ctx.headers["custom"] = "changed"
    assert request.message.kwargs == {"k": 3}
    assert request.message.extra_headers == {"custom": "x"}


def test_both_ways_of_building_the_context_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    # Built positionally while Context's fields are in the expected order, else by name.
    assert request_module._POSITIONAL_CONTEXT
    fast = _request().to_job("w", 10.0, 2.0).ctx
    monkeypatch.setattr(request_module, "_POSITIONAL_CONTEXT", False)
    assert _request().to_job("w", 10.0, 2.0).ctx == fast
