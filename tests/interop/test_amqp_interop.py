"""Real Celery 5.x and celeriac over RabbitMQ, both directions, with rpc:// and redis:// results.

For each result backend a Celery client sends to a celeriac worker, then a
celeriac client sends to a real ``celery worker`` (one worker at a time, each a
subprocess). Clients are separate Python processes, as a user's would be. Both
task modules have the same task names and the same default queue (the one the
worker of that run consumes), so chain steps sent by the worker land on it too.
Every run uses this session's own vhost.
"""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

_TESTS = str(Path(__file__).resolve().parents[1])
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

from _servers import (  # noqa: E402
    RABBITMQ_HOST,
    RABBITMQ_PORT,
    REDIS_HOST,
    REDIS_PORT,
    rabbitmq_vhost,
)
from tests.helpers.procs import CliProcess, run_python  # noqa: E402
from tests.interop._sides import start_celeriac, start_celery  # noqa: E402

__all__ = ["rabbitmq_vhost"]

pytestmark = [pytest.mark.amqp]

_TASKS = '''
import time

from {package} import Celery
from amqp_interop_errors import InteropError

app = Celery("{module}", broker={broker!r}, backend={backend!r})
app.conf.task_default_queue = {queue!r}
app.conf.result_expires = 600


@app.task(name="amqpx.add")
def add(x, y):
    return x + y


@app.task(name="amqpx.fail")
def fail(message):
    raise ValueError(message)


@app.task(name="amqpx.fail_custom")
def fail_custom(message):
    raise InteropError(message)


@app.task(name="amqpx.stamp")
def stamp():
    return time.time()
'''

_ERRORS = '''
class InteropError(Exception):
    """A user exception both sides can import."""
'''

#: (client module, worker side, queue the worker consumes)
_DIRECTIONS = {
    "celery-client-celeriac-worker": ("celery_side", "celeriac", "amqpx-to-celeriac"),
    "celeriac-client-celery-worker": ("celeriac_side", "celery", "amqpx-to-celery"),
}
_RUNS = [(backend, direction) for backend in ("rpc", "redis") for direction in _DIRECTIONS]


@pytest.fixture(scope="module", params=_RUNS, ids=[f"{b}-{d}" for b, d in _RUNS])
def side(request: pytest.FixtureRequest,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """``(directory, client module)`` with the other side's worker running for it."""
    backend_name, direction = request.param
    client, worker_side, queue = _DIRECTIONS[direction]
    vhost = request.getfixturevalue("rabbitmq_vhost")
    broker = f"amqp://guest:guest@{RABBITMQ_HOST}:{RABBITMQ_PORT}/{vhost}"
    if backend_name == "rpc":
        backend = "rpc://"
    else:
        import redis

        db = request.getfixturevalue("redis_db")
        server = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=db)
        try:
            server.flushdb()
        finally:
            server.close()
        backend = f"redis://{REDIS_HOST}:{REDIS_PORT}/{db}"
    path = tmp_path_factory.mktemp(f"amqpx-{backend_name}-{worker_side}")
    (path / "amqp_interop_errors.py").write_text(textwrap.dedent(_ERRORS))
    for package, module in (("celery", "celery_side"), ("celeriac", "celeriac_side")):
        (path / f"{module}.py").write_text(_TASKS.format(
            package=package, module=module, broker=broker, backend=backend, queue=queue))
    start = start_celeriac if worker_side == "celeriac" else start_celery
    worker: CliProcess = start(path, queue, "-P", "prefork", "-c", "2")
    try:
        yield path, client
    finally:
        worker.stop()


def client_run(side: tuple[Path, str], code: str, timeout: float = 60.0) -> object:
    """Run ``code`` (which sets ``out``) in a new process with the client's tasks imported."""
    path, client = side
    script = f"from {client} import *\n{code}\nimport json\nprint(json.dumps(out))\n"
    done = run_python(script, path, timeout=timeout)
    assert done.returncode == 0, f"client {client} failed:\n{done.stdout}\n{done.stderr}"
    return json.loads(done.stdout.strip().splitlines()[-1])


# A process of its own: with rpc:// one process should not wait both ways (sync and
# async consumers of one reply queue share its messages).
_ASYNC = """
import asyncio


async def twice():
    result = await add.adelay(20, 3)
    await asyncio.sleep(0.5)  # the result is in before anyone waits for it
    return await result


out = [asyncio.run(twice()), asyncio.run(twice())]  # the second: a new loop, new consumer
"""


def test_success(side: tuple[Path, str]) -> None:
    code = "out = [add.delay(2, 3).get(timeout=20), add.apply_async((4, 5)).get(timeout=20)]"
    assert client_run(side, code) == [5, 9]
    if side[1] == "celeriac_side":
        assert client_run(side, _ASYNC, timeout=30) == [23, 23]


def test_failure_arrives_as_the_same_exception(side: tuple[Path, str]) -> None:
    code = """
out = []
for task, message in ((fail, "boom over amqp"), (fail_custom, "custom boom")):
    result = task.delay(message)
    try:
        result.get(timeout=20)
    except Exception as exc:
        out.append([type(exc).__module__, type(exc).__name__, str(exc), result.state])
    else:
        out.append("no exception")
"""
    assert client_run(side, code) == [
        ["builtins", "ValueError", "boom over amqp", "FAILURE"],
        ["amqp_interop_errors", "InteropError", "custom boom", "FAILURE"],
    ]


def test_chain_and_a_failing_chain(side: tuple[Path, str]) -> None:
    # The worker sends each next step itself; the last result reaches the client.
    _, client = side
    package = "celery" if client == "celery_side" else "celeriac"
    code = f"""
from {package} import chain
good = chain(add.s(1, 2), add.s(3), add.s(4)).apply_async()
out = [good.get(timeout=20), good.parent.get(timeout=20)]
bad = (add.s(1, 1) | fail.si("stopped here") | add.s(100)).apply_async()
try:
    bad.get(timeout=20)
except Exception as exc:
    out.append([type(exc).__name__, str(exc)])
out.append(bad.parent.parent.get(timeout=20))
"""
    # A failed step stops the chain and the error reaches the chain's result. (Its state
    # is not compared: Celery's rpc client raises the parent's error and may leave the
    # last step PENDING, with a Celery worker just the same.)
    assert client_run(side, code) == [10, 6, ["ValueError", "stopped here"], 2]


def test_countdown(side: tuple[Path, str]) -> None:
    code = """
import time
sent = time.time()
late = stamp.apply_async(countdown=2)
now = add.delay(1, 1)  # not held up by the message waiting for its countdown
out = [sent, now.get(timeout=20), time.time(), late.get(timeout=30)]
"""
    got = client_run(side, code)
    assert isinstance(got, list)
    sent, quick, quick_at, ran = got
    assert quick == 2
    assert quick_at < sent + 2.0, "a countdown message blocked the worker"
    # Same machine, same clock.
    assert ran >= sent + 2.0 - 0.01
    assert ran - sent < 15


def test_remote_control_reaches_the_other_sides_worker(side: tuple[Path, str]) -> None:
    # Each client's app.control against the other implementation's worker, over
    # RabbitMQ's pidbox exchanges (the only worker on this vhost answers).
    code = """
insp = app.control.inspect(timeout=10, limit=1)
ping = insp.ping()
queues = insp.active_queues()
out = [list(ping.values()), [q["name"] for qs in queues.values() for q in qs],
       list(app.control.rate_limit("amqpx.add", "100/m", reply=True, timeout=10,
                                   limit=1)[0].values())]
"""
    assert client_run(side, code) == [
        [{"ok": "pong"}], [_DIRECTIONS[_direction(side)][2]],
        [{"ok": "new rate limit set successfully"}]]


def _direction(side: tuple[Path, str]) -> str:
    return next(d for d, (client, _, _) in _DIRECTIONS.items() if client == side[1])
