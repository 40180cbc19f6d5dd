"""Support of the RabbitMQ reliability tests: a task module, its workers, its run log.

Messages travel over this session's vhost on the real RabbitMQ; results are
stored in Redis (this session's database), so they survive a broker restart.
Every execution of a task appends its number to a Redis list (the run log),
which tells lost tasks (never ran) from duplicates (ran twice).
"""

from __future__ import annotations

import contextlib
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import redis
from tests.helpers.procs import CliProcess

from celeriac import Celery

TASKS = '''
import os
import time

import redis

from celeriac import Celery

app = Celery("rel_tasks", broker=os.environ["REL_BROKER"], backend=os.environ["REL_BACKEND"])
app.conf.task_default_queue = os.environ["REL_QUEUE"]
app.conf.task_acks_late = True
RUNS = os.environ["REL_RUNS"]
_client = None


def _redis():
    global _client
    if _client is None:
        _client = redis.Redis.from_url(os.environ["REL_BACKEND"])
    return _client


@app.task(name="rel.work")
def work(i, pause):
    time.sleep(pause)
    _redis().rpush(RUNS, i)
    return i
'''


class Run:
    """One reliability run: the task module in ``directory``, its own queue and run log."""

    def __init__(self, directory: Path, broker: str, backend: str) -> None:
        self.directory = directory
        self.broker = broker
        self.backend = backend
        tag = uuid.uuid4().hex[:8]
        self.queue = f"rel-{tag}"
        self.runs_key = f"rel:runs:{tag}"
        (directory / "rel_tasks.py").write_text(TASKS)
        self.env = {"REL_BROKER": broker, "REL_BACKEND": backend, "REL_QUEUE": self.queue,
                    "REL_RUNS": self.runs_key}  # fmt: skip
        self.client = Celery("rel_client", broker=broker, backend=backend)
        self.redis = redis.Redis.from_url(backend)
        self.workers: list[CliProcess] = []

    def worker(self, name: str, *args: str) -> CliProcess:
        """A ``celeriac worker`` in its own session (for SIGKILL of the whole group), ready."""
        proc = CliProcess(["-A", "rel_tasks", "worker", "-l", "INFO", "-n", f"{name}@%h",
                           *args], self.directory, self.env, new_session=True)  # fmt: skip
        self.workers.append(proc)
        proc.wait_for(r"@\S+ ready\.", timeout=30)
        return proc

    def send(self, count: int, pause: float) -> list[Any]:
        """Send ``rel.work(i, pause)`` for i in 0..count-1 (confirmed by the broker)."""
        return self.client.send_many("rel.work", [(i, pause) for i in range(count)],
                                     queue=self.queue)

    def runs(self) -> list[int]:
        """Every execution so far, in order (a number twice = ran twice)."""
        return [int(x) for x in self.redis.lrange(self.runs_key, 0, -1)]

    def run_count(self) -> int:
        return int(self.redis.llen(self.runs_key))

    def wait_runs(self, distinct: int, timeout: float) -> list[int]:
        """Poll the run log until ``distinct`` different tasks ran; fail with the gap."""
        deadline = time.monotonic() + timeout
        while True:
            runs = self.runs()
            if len(set(runs)) >= distinct:
                return runs
            if time.monotonic() > deadline:
                raise AssertionError(f"{distinct - len(set(runs))} of {distinct} tasks never "
                                     f"ran within {timeout}s ({len(runs)} runs logged)")
            time.sleep(0.05)

    def results(self, handles: list[Any], timeout: float) -> list[Any]:
        """Every handle's value, all within one ``timeout``."""
        deadline = time.monotonic() + timeout
        return [h.get(timeout=max(0.1, deadline - time.monotonic())) for h in handles]

    def close(self) -> None:
        for proc in self.workers:
            if proc.proc.poll() is None:
                proc.kill_group()
        self.client.close()
        self.redis.delete(self.runs_key)
        self.redis.close()


def duplicates(runs: list[int]) -> dict[int, int]:
    """Task number -> times it ran, for those that ran more than once."""
    return {i: n for i, n in Counter(runs).items() if n > 1}


def _rabbitmqctl(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["rabbitmqctl", *args], capture_output=True, text=True,
                          timeout=timeout, check=False)


@contextlib.contextmanager
def rabbitmq_app_stopped() -> Iterator[None]:
    """``rabbitmqctl stop_app`` for the block; ``start_app`` always follows.

    The node is shared with every other test session on this machine: keep the
    block short. Durable queues and persistent messages are on disk and come back.
    """
    try:
        stopped = _rabbitmqctl("stop_app")
        assert stopped.returncode == 0, f"rabbitmqctl stop_app: {stopped.stderr.strip()}"
        yield
    finally:
        started = _rabbitmqctl("start_app")
        awaited = _rabbitmqctl("await_startup")
    assert started.returncode == 0, f"rabbitmqctl start_app: {started.stderr.strip()}"
    assert awaited.returncode == 0, f"rabbitmqctl await_startup: {awaited.stderr.strip()}"
