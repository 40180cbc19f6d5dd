"""Task modules and worker starters of the interop suite (used by its conftest and tests).

Two task modules are written to a temp dir with the same task names (explicit
``name=``): ``celery_side.py`` (``from celery import Celery``) and
``celeriac_side.py`` (``from celeriac import Celery``). Each side's default
queue is the queue the *other* side's worker consumes, so ``add.delay(2, 3)``
called on one side is executed by the other side's worker.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from tests.helpers.procs import CeleryProcess, CliProcess

#: Queue consumed by the celeriac worker (where celery_side sends by default).
TO_CELERIAC = "interop-to-celeriac"
#: Queue consumed by the Celery worker (where celeriac_side sends by default).
TO_CELERY = "interop-to-celery"

_TASKS = """
import time

import redis

from {import_line}
from interop_errors import InteropError

URL = {url!r}
app = Celery("{module}", broker=URL, backend=URL)
app.conf.task_default_queue = {default_queue!r}
app.conf.result_expires = 600
{extra}
_client = None


def _redis():
    global _client
    if _client is None:
        _client = redis.Redis.from_url(URL)
    return _client


@app.task(name="interop.add")
def add(x, y):
    return x + y


@app.task(name="interop.fail")
def fail(message):
    raise ValueError(message)


@app.task(name="interop.fail_custom")
def fail_custom(message):
    raise InteropError(message)


@app.task(name="interop.stamp")
def stamp():
    return time.time()


@app.task(name="interop.record")
def record(key, tag):
    _redis().rpush(key, tag)
    return tag
"""

_ERRORS = '''
class InteropError(Exception):
    """A user exception both sides can import."""
'''


def write_modules(path: Path, url: str) -> None:
    """Write ``celery_side.py``, ``celeriac_side.py`` and ``interop_errors.py`` into ``path``."""
    (path / "interop_errors.py").write_text(textwrap.dedent(_ERRORS))
    (path / "celery_side.py").write_text(_TASKS.format(
        import_line="celery import Celery", url=url, module="celery_side",
        default_queue=TO_CELERIAC, extra=""))  # fmt: skip
    # Celery workers never read celeriac's delayed zset: ETA messages go on the queue.
    (path / "celeriac_side.py").write_text(_TASKS.format(
        import_line="celeriac import Celery", url=url, module="celeriac_side",
        default_queue=TO_CELERY,
        extra='app.conf.broker_transport_options = {"eta_on_queue": True}'))  # fmt: skip


def start_celeriac(path: Path, queue: str, *args: str) -> CliProcess:
    """``celeriac -A celeriac_side worker -Q queue ...``, returned once ready."""
    proc = CliProcess(["-A", "celeriac_side", "worker", "-l", "INFO", "-Q", queue,
                       "-n", f"celeriac-{queue}@%h", *args], path)  # fmt: skip
    try:
        proc.wait_for(r"@\S+ ready\.", timeout=30)
    except AssertionError:
        proc.stop()
        raise
    return proc


def start_celery(path: Path, queue: str, *args: str) -> CeleryProcess:
    """``celery -A celery_side worker -Q queue ...`` (real Celery), returned once ready."""
    proc = CeleryProcess(["-A", "celery_side", "worker", "-l", "INFO", "-Q", queue,
                          "-n", f"celery-{queue}@%h", "--without-mingle", "--without-gossip",
                          *args], path)  # fmt: skip
    try:
        proc.wait_for(r"@\S+ ready\.", timeout=30)
    except AssertionError:
        proc.stop()
        raise
    return proc
