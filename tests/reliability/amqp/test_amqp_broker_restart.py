"""RabbitMQ stopped and started in the middle of 5,000 tasks: none is lost.

The tasks sit on a durable queue as persistent messages; the worker loses its
connection when ``rabbitmqctl stop_app`` runs, reconnects with backoff after
``start_app`` and carries on. Messages it had fetched but not yet acknowledged
come back (late acks), so a few tasks may run twice; none may be missing. The
results are in Redis, which the restart does not touch.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest
from _amqp_rel import Run, duplicates, rabbitmq_app_stopped

pytestmark = [pytest.mark.amqp, pytest.mark.redis]

TASKS = 5000
PAUSE = 0.005


def test_broker_restart_mid_run_loses_nothing(rel_run: Run) -> None:
    handles = rel_run.send(TASKS, PAUSE)
    worker = rel_run.worker("restart", "-P", "prefork", "-c", "4")
    rel_run.wait_runs(TASKS // 10, timeout=60)
    stopped_at = time.monotonic()
    with rabbitmq_app_stopped():
        # The outage lasts until the worker has noticed it (bounded).
        worker.wait_for(r"broker connection lost", timeout=20)
    outage = time.monotonic() - stopped_at
    done_during_outage = len(set(rel_run.runs()))
    assert done_during_outage < TASKS, "every task ran before the outage: nothing was tested"

    runs = rel_run.wait_runs(TASKS, timeout=90)
    values = rel_run.results(handles, timeout=60)

    assert sorted(values) == list(range(TASKS)), "a result is missing or wrong"
    assert set(runs) == set(range(TASKS))
    twice = duplicates(runs)
    print(f"broker stopped for {outage:.1f}s with {done_during_outage}/{TASKS} tasks run: "
          f"0 lost, {len(twice)} ran twice")
    assert max(Counter(runs).values()) <= 2, "one outage, yet a task ran three times"
    assert worker.proc.poll() is None, "the worker did not survive the broker restart"
