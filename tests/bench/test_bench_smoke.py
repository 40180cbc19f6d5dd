"""A small run of the benchmark code (celeriac only, counts not times), so it cannot rot.

The same functions as ``python bench/run.py``, with a few hundred tasks, on
SQLite and on this session's own Redis database: every workload must run to
completion with the exact count of executions and correct results.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import harness as h  # noqa: E402
from bench import limits  # noqa: E402

pytestmark = pytest.mark.slow
N = 400


@pytest.fixture(params=["sqlite", "redis"])
def target(request: pytest.FixtureRequest, redis_db: int) -> h.Target:
    return h.Target("celeriac", request.param, redis_db)


def test_main_round(target: h.Target) -> None:
    tag = h.new_tag(target, "smoke")
    env = target.env(tag, N)
    try:
        assert h.enqueue(target, tag, N) > 0
        worker = h.start_worker(target, env, "prefork", 2)
        try:
            drained = h.drain(target, tag, N, worker, timeout=60, stall=20)
            assert (drained.count, drained.lost, drained.duplicated) == (N, 0, 0), \
                worker.log_tail()
            assert drained.rate > 0
            assert h.e2e(env, 100) > 0
            p50, p99 = h.latency(env, 10)
            assert 0 < p50 <= p99
            p50, p99 = h.latency(env, 10, use_async=True)
            assert 0 < p50 <= p99
            pss, processes = h.idle_pss(worker, settle=0.1)
            assert pss > 0 and processes == 3  # the worker and its two children
        finally:
            worker.stop()
        assert h.enqueue_batch(target, N) > 0
    finally:
        target.cleanup(tag)


def test_overhead_solo(target: h.Target) -> None:
    assert h.overhead(target, N, "solo", 1, timeout=60) > 0


def test_redis_limits(redis_db: int) -> None:
    url = f"{h.REDIS}/{redis_db}"
    assert limits.round_trip_ms(url, 50) > 0
    assert limits.incr_loop_rate(url, 300) > 0
