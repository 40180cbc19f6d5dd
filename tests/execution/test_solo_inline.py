"""The solo pool runs sync tasks inline, a fetched batch without an asyncio task each.

What a user relies on stays the same on that path: every task runs once and its
message is acknowledged (only after the result is written), results, failures,
retries, revokes, expiry and rate limits behave as on every other pool.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import redis

from celeriac.canvas import signature
from celeriac.protocol import keys
from tests.execution.conftest import Project
from tests.helpers.procs import wait_until

BROKERS = ("redis",)

TASKS = '''
import time


def note(name, value):
    with open(name + ".log", "a") as fh:
        fh.write(f"{value}\\n")


@app.task(ignore_result=True)
def count(i):
    note("count", i)


@app.task
def double(i):
    return i * 2


@app.task
def boom():
    raise ValueError("boom")


@app.task(bind=True, max_retries=2, default_retry_delay=0)
def flaky(self):
    note("flaky", self.request.retries)
    if self.request.retries < 2:
        raise self.retry()
    return "third time"


@app.task(rate_limit="4/s")
def paced(i):
    note("paced", time.monotonic())
    return i


@app.task
def chained(x):
    return x + 1
'''


@pytest.fixture
def project(make_project: Callable[[str], Project]) -> Project:
    return make_project(TASKS)


def _unacked(url: str) -> int:
    client = redis.Redis.from_url(url)
    try:
        return sum(client.hlen(k) for k in client.scan_iter(match=keys.inflight_key("*")))
    finally:
        client.close()


def test_solo_inline_batches_keep_every_guarantee(project: Project) -> None:
    project.worker("-P", "solo")
    revoked = project.send("double", 100, countdown=1)
    project.client.control.revoke(revoked.id)
    expired = project.send("double", 7, expires=datetime.now(UTC) - timedelta(seconds=5))
    for i in range(200):
        project.send("count", i)
    doubles = [project.send("double", i) for i in range(50)]
    failed = project.send("boom")
    flaky = project.send("flaky")
    paced = [project.send("paced", i) for i in range(3)]
    chain = (signature("tasks.chained", (1,), app=project.client)
             | signature("tasks.chained", app=project.client)).apply_async()

    assert [r.get(timeout=20) for r in doubles] == [i * 2 for i in range(50)]
    with pytest.raises(ValueError, match="boom"):
        failed.get(timeout=10)
    assert flaky.get(timeout=20) == "third time"
    assert project.read("flaky.log") == ["0", "1", "2"]
    assert [r.get(timeout=20) for r in paced] == [0, 1, 2]
    assert chain.get(timeout=10) == 3
    wait_until(lambda: len(project.read("count.log")) == 200, timeout=20, what="200 counts")
    assert sorted(int(x) for x in project.read("count.log")) == list(range(200))
    assert expired.state == "REVOKED"
    wait_until(lambda: revoked.state == "REVOKED", timeout=10, what="revoked task discarded")

    # The rate limit spaced the three calls (4/s: the first at once, then 0.25 s apart).
    stamps = sorted(float(x) for x in project.read("paced.log"))
    assert stamps[-1] - stamps[0] >= 0.4
    # Every message was acknowledged: nothing is left in the worker's in-flight hash.
    wait_until(lambda: _unacked(project.broker_url) == 0, timeout=10, what="all acked")
