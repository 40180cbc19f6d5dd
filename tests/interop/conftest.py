"""Fixtures of the interop suite: real Celery 5.x and celeriac on the real local Redis.

The task modules and worker starters are in ``_sides.py``. The module-scoped,
parametrized ``redis_side`` fixture runs one direction at a time: the other side's
worker as a subprocess, on the queue the client side sends to.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_TESTS = str(Path(__file__).resolve().parents[1])
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

from _servers import REDIS_HOST, REDIS_PORT  # noqa: E402
from tests.helpers.procs import CliProcess  # noqa: E402
from tests.interop._sides import (  # noqa: E402
    TO_CELERIAC,
    TO_CELERY,
    start_celeriac,
    start_celery,
    write_modules,
)

__all__ = ["interop_dir", "interop_url", "redis_side"]


@pytest.fixture(scope="module")
def interop_url(redis_db: int) -> str:
    """This session's Redis database, flushed once for the module's workers."""
    import redis

    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=redis_db)
    try:
        client.flushdb()
    finally:
        client.close()
    return f"redis://{REDIS_HOST}:{REDIS_PORT}/{redis_db}"


@pytest.fixture(scope="module")
def interop_dir(tmp_path_factory: pytest.TempPathFactory, interop_url: str) -> Path:
    """A directory holding ``celery_side.py``, ``celeriac_side.py``, ``interop_errors.py``."""
    path = tmp_path_factory.mktemp("interop")
    write_modules(path, interop_url)
    return path


@pytest.fixture(
    scope="module",
    params=["celery_side", "celeriac_side"],
    ids=["celery-client-celeriac-worker", "celeriac-client-celery-worker"],
)
def redis_side(request: pytest.FixtureRequest, interop_dir: Path) -> Iterator[str]:
    """The client side's module name, with the *other* side's worker running.

    One direction at a time: while a celeriac client talks to a Celery worker,
    no celeriac worker runs at all (one would move due ETA messages for it).
    """
    side = str(request.param)
    worker: CliProcess
    if side == "celery_side":
        worker = start_celeriac(interop_dir, TO_CELERIAC, "-P", "prefork", "-c", "2")
    else:
        worker = start_celery(interop_dir, TO_CELERY, "-P", "prefork", "-c", "2")
    yield side
    worker.stop()
