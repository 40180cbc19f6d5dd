"""A real cluster for the dashboard tests: a ``celeriac worker -E`` and a ``celeriac
dashboard`` subprocess on a free loopback port, both on the test's Redis, plus a
small HTTP client for the dashboard's JSON API."""

from __future__ import annotations

import json
import re
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.helpers.procs import CliProcess

QUEUE = "dash-test"
WORKER = "dash1@%h"

TASKS = """
import redis

from celeriac import Celery

app = Celery("dashtasks", broker={broker!r}, backend={backend!r})
app.conf.task_default_queue = {queue!r}
app.conf.task_send_sent_event = True
app.conf.worker_prefetch_multiplier = 1  # one slot, one message: the next one waits in Redis


@app.task(name="dash.add")
def add(x, y):
    return x + y


@app.task(name="dash.block")
def block(key):
    # holds the worker's only slot until the test pushes to ``key`` (bounded)
    client = redis.Redis.from_url({broker!r})
    try:
        return "released" if client.blpop([key], 60) else "timed out"
    finally:
        client.close()
"""


@dataclass
class Dashboard:
    """A running dashboard: its base URL and process."""

    url: str
    process: CliProcess

    def get(self, path: str) -> Any:
        """GET ``path`` and decode the JSON answer."""
        with urllib.request.urlopen(self.url + path, timeout=10) as answer:
            return json.loads(answer.read())

    def post(self, path: str, fields: dict[str, str],
             headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        """POST ``fields`` (urlencoded) to ``path``; ``(status, body)``."""
        data = urllib.parse.urlencode(fields).encode()
        request = urllib.request.Request(self.url + path, data=data, headers=headers or {},
                                         method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.status, answer.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def wait_for(self, path: str, check: Callable[[Any], bool], what: str,
                 timeout: float = 30.0) -> Any:
        """GET ``path`` until ``check(json)`` holds (every 50 ms, at most ``timeout`` s)."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            last = self.get(path)
            if check(last):
                return last
            time.sleep(0.05)
        raise AssertionError(f"{what}: not within {timeout}s; last {path}: {last!r}\n"
                             f"dashboard output:\n{self.process.output}")


def write_tasks(directory: Path, broker: str, backend: str) -> None:
    """Write ``dashtasks.py``, the app of the worker, the dashboard and the client."""
    (directory / "dashtasks.py").write_text(
        textwrap.dedent(TASKS.format(broker=broker, backend=backend, queue=QUEUE)))


def start_worker(directory: Path) -> CliProcess:
    """A worker with task events, one thread: a blocked task keeps the next one waiting."""
    return CliProcess(["-A", "dashtasks", "worker", "-P", "threads", "-c", "1", "-E",
                       "-n", WORKER, "-l", "INFO", "-Q", QUEUE], cwd=directory)


@contextmanager
def run_dashboard(directory: Path, *extra: str) -> Iterator[Dashboard]:
    """``celeriac -A dashtasks dashboard --port 0``: yields once it listens."""
    process = CliProcess(["-A", "dashtasks", "dashboard", "--port", "0", *extra],
                         cwd=directory)
    try:
        line = process.wait_for(r"listening on http://", timeout=30)[0]
        found = re.search(r"(http://[^/ ]+)/", line)
        assert found, line
        yield Dashboard(found.group(1), process)
    finally:
        process.stop()
