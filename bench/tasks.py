"""The benchmark's tasks, identical for both systems.

``BENCH_SYSTEM`` picks the framework (``celeriac`` or ``celery``); the broker,
result store, queue and counter key come from the environment that
``bench/run.py`` sets for each worker and client process, so both systems run
the very same task code against the same servers.
"""

from __future__ import annotations

import json
import os
import time

import redis

SYSTEM = os.environ.get("BENCH_SYSTEM", "celeriac")
BROKER = os.environ.get("BENCH_BROKER", "redis://127.0.0.1:6379/7")
BACKEND = os.environ.get("BENCH_BACKEND") or None
QUEUE = os.environ.get("BENCH_QUEUE", "bench")
COUNTER = os.environ.get("BENCH_COUNTER", "bench:counter")
COUNTER_URL = os.environ.get("BENCH_COUNTER_URL", "redis://127.0.0.1:6379/7")
TOTAL = int(os.environ.get("BENCH_TOTAL", "0"))

if SYSTEM == "celery":
    from celery import Celery
else:
    from celeriac import Celery  # type: ignore[assignment]

app = Celery("bench", broker=BROKER, backend=BACKEND)
app.conf.update(task_default_queue=QUEUE)
if os.environ.get("BENCH_BROKER_OPTIONS"):
    app.conf.update(broker_transport_options=json.loads(os.environ["BENCH_BROKER_OPTIONS"]))
if SYSTEM == "celery":
    app.conf.update(broker_connection_retry_on_startup=True, worker_hijack_root_logger=False)

_client: redis.Redis | None = None
_client_pid = 0


def counter() -> redis.Redis:
    """A Redis client for the counter, made per process (prefork children fork)."""
    global _client, _client_pid
    if _client is None or _client_pid != os.getpid():
        _client = redis.Redis.from_url(COUNTER_URL)
        _client_pid = os.getpid()
    return _client


@app.task(ignore_result=True)
def noop(i: int) -> None:
    """One Redis INCR, so executions are counted exactly; stamps the first and last."""
    client = counter()
    n = client.incr(COUNTER)
    if n == 1:
        client.set(COUNTER + ":first", repr(time.time()))
    if n == TOTAL:
        client.set(COUNTER + ":last", repr(time.time()))


@app.task(ignore_result=True)
def nothing(i: int) -> None:
    """No I/O at all: what is left is the framework's own cost per task."""


@app.task(ignore_result=True)
def mark(i: int) -> None:
    """Time stamps around a run of ``nothing`` tasks (queued first and last)."""
    counter().rpush(COUNTER + ":marks", repr(time.time()))


@app.task
def add(x: int, y: int) -> int:
    """The end-to-end and latency task."""
    return x + y


if SYSTEM != "celery":

    @app.task(ignore_result=True)
    async def anothing(i: int) -> None:
        """``nothing`` as a coroutine, for celeriac's asyncio pool."""

    @app.task(ignore_result=True)
    async def amark(i: int) -> None:
        """``mark`` as a coroutine (its one RPUSH is a blocking call: rare, fine)."""
        counter().rpush(COUNTER + ":marks", repr(time.time()))



@app.task
def stamp() -> float:
    """The wall-clock time at which a worker ran it (latency breakdowns)."""
    return time.time()
