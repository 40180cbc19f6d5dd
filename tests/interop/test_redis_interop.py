"""Real Celery 5.x and celeriac share Redis queues and results, both directions.

Each test runs a client as a separate Python process (the way a user would)
using one side's task module; the other side's worker, a real subprocess,
executes the task: a Celery client with a celeriac worker, and a celeriac
client with a real ``celery worker``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import redis

from tests.helpers.procs import run_python
from tests.interop._sides import TO_CELERIAC, TO_CELERY, start_celeriac, start_celery

pytestmark = pytest.mark.redis

#: client module -> what runs the task
DIRECTIONS = {
    "celery_side": "celeriac worker",
    "celeriac_side": "celery worker",
}


def client_run(path: Path, client: str, code: str, timeout: float = 60.0) -> object:
    """Run ``code`` (which sets ``out``) with ``client``'s tasks imported; return ``out``."""
    script = f"from {client} import *\n{code}\nimport json\nprint(json.dumps(out))\n"
    done = run_python(script, path, timeout=timeout)
    assert done.returncode == 0, f"client {client} failed:\n{done.stdout}\n{done.stderr}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_add(interop_dir: Path, redis_side: str) -> None:
    assert client_run(interop_dir, redis_side, "out = add.delay(2, 3).get(timeout=20)") == 5


def test_bulk_sent_messages_run_on_either_worker(interop_dir: Path, redis_side: str) -> None:
    # celeriac's bulk publish (one template per chunk) to whichever worker runs now:
    # Celery's when the direction is celeriac -> Celery, else celeriac's.
    queue = TO_CELERY if redis_side == "celeriac_side" else TO_CELERIAC
    code = f"""
results = add.delay_many([(i, i) for i in range(20)], queue={queue!r}, chunk_size=8)
results += add.delay_many([(i,) for i in range(5)], [{{"y": 100}}] * 5, queue={queue!r},
                          countdown=1, priority=5, expires=600, headers={{"x-trace": "t1"}})
out = [r.get(timeout=30) for r in results]
"""
    assert client_run(interop_dir, "celeriac_side", code) == (
        [2 * i for i in range(20)] + [i + 100 for i in range(5)])


def test_failure_arrives_as_the_same_exception(interop_dir: Path, redis_side: str) -> None:
    code = """
out = []
for task, message in ((fail, "boom from the other side"), (fail_custom, "custom boom")):
    result = task.delay(message)
    try:
        result.get(timeout=20)
    except Exception as exc:
        out.append([type(exc).__module__, type(exc).__name__, str(exc), result.state])
    else:
        out.append("no exception")
"""
    assert client_run(interop_dir, redis_side, code) == [
        ["builtins", "ValueError", "boom from the other side", "FAILURE"],
        ["interop_errors", "InteropError", "custom boom", "FAILURE"],
    ]


def test_countdown_and_eta(interop_dir: Path, redis_side: str) -> None:
    code = """
import time
from datetime import datetime, timedelta, timezone
sent = time.time()
by_countdown = stamp.apply_async(countdown=2)
by_eta = stamp.apply_async(eta=datetime.now(timezone.utc) + timedelta(seconds=1.5))
out = [sent, by_countdown.get(timeout=30), by_eta.get(timeout=30)]
"""
    sent, ran_countdown, ran_eta = client_run(interop_dir, redis_side, code)  # type: ignore[misc]
    # Same machine, same clock; ETAs travel as ISO strings with microseconds.
    assert ran_countdown >= sent + 2.0 - 0.01
    assert ran_eta >= sent + 1.5 - 0.01
    assert ran_countdown - sent < 15


def test_priority_is_honoured(interop_dir: Path, interop_url: str, redis_side: str) -> None:
    # Messages are queued before the worker starts, so the order it runs them in is the
    # broker's priority order. Celery on Redis serves a lower number first; celeriac's
    # rule is "higher first" on every broker and it writes kombu's inverted number on
    # Redis (docs/decisions-execution.md), so each side says "urgent" its own way.
    low_p, high_p = (0, 9) if redis_side == "celeriac_side" else (9, 0)
    queue = f"interop-prio-{redis_side}"
    key = f"interop:order:{redis_side}:{time.monotonic_ns()}"
    code = f"""
lows = [record.apply_async(({key!r}, f"low{{i}}"), priority={low_p}, queue={queue!r})
        for i in range(5)]
mid = record.apply_async(({key!r}, "mid"), priority=5, queue={queue!r})
high = record.apply_async(({key!r}, "high"), priority={high_p}, queue={queue!r})
out = [r.id for r in [*lows, mid, high]]
"""
    ids = client_run(interop_dir, redis_side, code)
    assert isinstance(ids, list) and len(ids) == 7
    start = start_celeriac if redis_side == "celery_side" else start_celery
    worker = start(interop_dir, queue, "-P", "solo")
    try:
        got = client_run(
            interop_dir, redis_side, f"out = [app.AsyncResult(i).get(timeout=30) for i in {ids!r}]"
        )
    finally:
        worker.stop()
    assert sorted(got) == sorted(["high", "mid"] + [f"low{i}" for i in range(5)])  # type: ignore[arg-type]
    server = redis.Redis.from_url(interop_url)
    try:
        order = [item.decode() for item in server.lrange(key, 0, -1)]
    finally:
        server.close()
    expected = ["high", "mid", *[f"low{i}" for i in range(5)]]
    assert order == expected, f"{DIRECTIONS[redis_side]} ran {order}; its log:\n{worker.output}"
