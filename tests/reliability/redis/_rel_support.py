"""Helpers of the Redis reliability tests: a task module, workers, readers of results.

Every task records each execution in Redis (list ``rel:runs``), so a test can
count executions (duplicates) separately from results (losses); ``rel.note``
records it in a file instead, for tests that take Redis away under running
tasks (a task that itself waits for Redis would hide the worker's own handling
of the outage, and hold its prefetch slots while doing so). Workers are
real ``celeriac`` subprocesses; prefork children left behind by a SIGKILLed
parent are ended by pid at teardown.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import textwrap
from collections.abc import Callable
from pathlib import Path

import redis
from tests.helpers.procs import CliProcess, run_python, wait_until

from celeriac.protocol import keys
from celeriac.protocol import states as states_mod
from celeriac.protocol.results import decode_meta
from celeriac.transports._redis_conn import DEFAULT_SOCKET_TIMEOUT

__all__ = [
    "OUTAGE_DEADLINE",
    "RUNS",
    "Project",
    "outage_line",
    "publish_notes",
    "result_states",
    "waiter",
]

RUNS = "rel:runs"

#: How long a worker may take to report that Redis stopped answering: one command
#: bounded by the default socket timeout, a lease-renewal interval, and room for a
#: loaded machine (the worker reports the first failure at once, not after backoff).
OUTAGE_DEADLINE = 2 * DEFAULT_SOCKET_TIMEOUT + 10.0

TASKS = """
import os
import time

import redis

from celeriac import Celery

URL = {url!r}
app = Celery("rel_tasks", broker=URL, backend=URL)
app.conf.broker_transport_options = {transport_options!r}
app.conf.result_expires = 3600
RUNS = {runs!r}
NOTES = {notes!r}
_client = None


def _record(key, value):
    # Retried because one test restarts the server under running tasks.
    global _client
    deadline = time.monotonic() + 60
    while True:
        try:
            if _client is None:
                _client = redis.Redis.from_url(URL, socket_timeout=5)
            _client.rpush(key, value)
            return
        except redis.exceptions.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@app.task(name="rel.sleep")
def sleep_for(i, seconds):
    _record("rel:started", i)
    time.sleep(seconds)
    _record(RUNS, i)
    return i


@app.task(name="rel.note")
def note(i):
    # One O_APPEND write per run: lines never interleave between processes.
    fd = os.open(NOTES, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{{i}}\\n".encode())
    finally:
        os.close(fd)
    return i


@app.task(name="rel.stamp")
def stamp(i):
    _record(RUNS, i)
    return [i, time.time()]
"""


class Project:
    """A temp dir holding ``rel_tasks.py`` bound to one Redis URL, and its workers."""

    def __init__(self, path: Path, url: str) -> None:
        self.path = path
        self.url = url
        self.workers: list[CliProcess] = []
        self.orphans: list[int] = []
        self.notes_path = path / "notes.log"

    def write(self, **transport_options: object) -> None:
        """(Re)write ``rel_tasks.py``; ``lease_seconds`` defaults to 2."""
        options = {"lease_seconds": 2, **transport_options}
        (self.path / "rel_tasks.py").write_text(textwrap.dedent(TASKS.format(
            url=self.url, transport_options=options, runs=RUNS,
            notes=str(self.notes_path))))  # fmt: skip

    def worker(self, *args: str) -> CliProcess:
        """Start ``celeriac -A rel_tasks worker -l INFO *args``; return it once ready."""
        proc = CliProcess(["-A", "rel_tasks", "worker", "-l", "INFO", *args], self.path)
        self.workers.append(proc)
        proc.wait_for(r"@\S+ ready\.", timeout=30)
        return proc

    def client(self) -> redis.Redis:
        """A redis-py client on the project's database (the caller closes it)."""
        return redis.Redis.from_url(self.url, socket_timeout=10)

    def runs(self) -> list[int]:
        """Every recorded execution, in order (a task run twice appears twice)."""
        with self.client() as client:
            return [int(x) for x in client.lrange(RUNS, 0, -1)]

    def notes(self) -> list[int]:
        """Every execution of ``rel.note``, in order (a task run twice appears twice)."""
        if not self.notes_path.exists():
            return []
        return [int(x) for x in self.notes_path.read_text().split()]

    def kill9(self, proc: CliProcess) -> None:
        """SIGKILL a worker's main process; its pool children are ended at cleanup."""
        self.orphans += _children(proc.proc.pid)
        proc.signal(signal.SIGKILL)
        assert proc.wait(10) == -signal.SIGKILL

    def cleanup(self) -> None:
        """Stop every worker started here and end orphaned pool children."""
        for pid in self.orphans:
            _kill(pid)
        for proc in self.workers:
            children = _children(proc.proc.pid)
            proc.stop()
            for pid in children:
                _kill(pid)


def outage_line(url: str) -> str:
    """The pattern of the worker's one-line report that ``url`` cannot be reached
    (from its consumer, its lease renewal or its result store, whichever fails first)."""
    return r"cannot reach Redis at " + re.escape(url)


def publish_notes(project: Project, count: int) -> list[str]:
    """Send ``rel.note(i)`` for ``i`` in ``range(count)`` from a client process; the ids."""
    sent = run_python(
        "import json\nfrom rel_tasks import note\n"
        f"print(json.dumps([r.id for r in note.delay_many([(i,) for i in range({count})])]))\n",
        project.path, timeout=120,
    )  # fmt: skip
    assert sent.returncode == 0, sent.stderr
    ids: list[str] = json.loads(sent.stdout)
    assert len(set(ids)) == count
    return ids


def _children(pid: int) -> list[int]:
    # Children are listed per thread that started them (the pool may start them
    # from a helper thread), so read every thread's list.
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(x) for x in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def result_states(client: redis.Redis, ids: list[str]) -> dict[str, tuple[str, object]]:
    """``{task id: (state, result)}`` of the ids that have a stored result."""
    out: dict[str, tuple[str, object]] = {}
    for start in range(0, len(ids), 1000):
        chunk = ids[start : start + 1000]
        for task_id, raw in zip(chunk, client.mget([keys.task_meta_key(i) for i in chunk]),
                                strict=True):  # fmt: skip
            if raw is not None:
                meta = decode_meta(raw, task_id=task_id)
                out[task_id] = (meta.status, meta.result)
    return out


def waiter(client: redis.Redis, ids: list[str]) -> Callable[[], bool]:
    """A predicate: every id has a ready result (only ids not yet seen are read again)."""
    pending = list(ids)

    def done() -> bool:
        states = result_states(client, pending)
        pending[:] = [
            i for i in pending if i not in states or states[i][0] not in states_mod.READY_STATES
        ]
        return not pending

    return done


def all_results(project: Project, worker: CliProcess, ids: list[str], since: int,
                event: str) -> dict[str, tuple[str, object]]:
    """Wait (bounded) until every id has a ready result and return their states; on a
    timeout, fail with the counts and the worker's log since line ``since`` (``event``)."""
    with project.client() as client:
        try:
            wait_until(waiter(client, ids), timeout=90, what=f"results of all {len(ids)} tasks")
        except AssertionError as exc:
            log = "\n".join(line for line in worker.lines[since:] if "rel.note" not in line)
            raise AssertionError(
                f"{exc}; {len(result_states(client, ids))} results, "
                f"{len(project.notes())} runs; worker log since the {event}:\n{log[-8000:]}"
            ) from None
        return result_states(client, ids)
