"""A celeriac worker SIGKILLed in the middle of 200 tasks on RabbitMQ loses none of them.

Acks are late, so every message the killed worker had fetched (running or
prefetched) is still unacknowledged when its connection dies; RabbitMQ puts
those back on the queue by itself and a second worker runs them.
"""

from __future__ import annotations

from collections import Counter

import pytest
from _amqp_rel import Run, duplicates

pytestmark = [pytest.mark.amqp, pytest.mark.redis]

TASKS = 200
PAUSE = 0.2


def test_sigkill_mid_run_loses_nothing(rel_run: Run) -> None:
    first = rel_run.worker("kill-a", "-P", "prefork", "-c", "4")
    handles = rel_run.send(TASKS, PAUSE)
    rel_run.wait_runs(TASKS // 4, timeout=30)
    first.kill_group()
    done_before_kill = len(set(rel_run.runs()))
    assert done_before_kill < TASKS, "every task ran before the kill: nothing was tested"

    rel_run.worker("kill-b", "-P", "prefork", "-c", "4")
    runs = rel_run.wait_runs(TASKS, timeout=60)
    values = rel_run.results(handles, timeout=30)

    assert sorted(values) == list(range(TASKS)), "a result is missing or wrong"
    assert set(runs) == set(range(TASKS))
    twice = duplicates(runs)
    print(f"SIGKILL after {done_before_kill}/{TASKS} tasks: 0 lost, "
          f"{len(twice)} ran twice {sorted(twice)}")
    # Only what the killed worker held unacknowledged can run again, and only once.
    assert max(Counter(runs).values()) <= 2
