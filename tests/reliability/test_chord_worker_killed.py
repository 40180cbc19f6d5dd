"""A worker SIGKILLed in the middle of a 50-task chord loses nothing.

The header tasks it was running (or had prefetched) come back when their lease
lapses; a second worker runs them, the chord counter ignores repeated parts
(idempotent per header task id) and the body runs exactly once with all 50
results in order.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from celeriac.canvas import chord

_TESTS = str(Path(__file__).resolve().parents[1])
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

from _servers import REDIS_HOST, REDIS_PORT, ensure_redis, redis_db_lease  # noqa: E402

TASKS = '''
import os
import time
from collections.abc import Iterator
from pathlib import Path

from celeriac import Celery

LOG = Path(__file__).with_name("events.log")
app = Celery("kill_tasks", broker=os.environ["KILL_URL"], backend=os.environ["KILL_URL"])
app.conf.worker_lease_seconds = 2.0


def record(*parts):
    with LOG.open("a") as f:
        f.write(" ".join(str(p) for p in parts) + "\\n")


@app.task(name="kill.slow")
def slow(i):
    time.sleep(0.05)
    record("slow", i)
    return i


@app.task(name="kill.tsum")
def tsum(xs):
    record("tsum", len(xs), sum(xs), xs == list(range(len(xs))))
    return sum(xs)
'''


def _start_worker(path: Path, env: dict[str, str], name: str) -> subprocess.Popen[bytes]:
    log = (path / f"{name}.log").open("w")
    # A session of its own, so the prefork children are killed with the parent.
    return subprocess.Popen(
        [str(Path(sys.executable).with_name("celeriac")), "-A", "kill_tasks", "worker",
         "-P", "prefork", "-c", "2", "-l", "INFO", "-n", f"{name}@%h"],
        cwd=path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )


def _wait_lines(path: Path, prefix: str, count: int, timeout: float) -> list[str]:
    deadline = time.monotonic() + timeout
    log = path / "events.log"
    while True:
        lines = [ln for ln in (log.read_text().splitlines() if log.exists() else [])
                 if ln.startswith(prefix)]
        if len(lines) >= count:
            return lines
        if time.monotonic() > deadline:
            raise AssertionError(f"only {len(lines)} {prefix!r} lines within {timeout}s")
        time.sleep(0.02)


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("kill_tasks_client", path / "kill_tasks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/broker.db"
        return
    import redis

    ensure_redis()
    with redis_db_lease() as db:
        client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=db)
        client.flushdb()
        client.close()
        yield f"redis://{REDIS_HOST}:{REDIS_PORT}/{db}"


def test_chord_survives_sigkill_of_worker(tmp_path: Path, url: str) -> None:
    (tmp_path / "kill_tasks.py").write_text(TASKS)
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "KILL_URL": url, "PYTHONUNBUFFERED": "1"}
    os.environ["KILL_URL"] = url
    try:
        mod = _load(tmp_path)
    finally:
        os.environ.pop("KILL_URL", None)
    first = _start_worker(tmp_path, env, "first")
    second = None
    try:
        result = chord([mod.slow.s(i) for i in range(50)], mod.tsum.s()).apply_async()
        _wait_lines(tmp_path, "slow ", 10, timeout=60)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(10)
        assert not (tmp_path / "events.log").read_text().count("tsum ")
        second = _start_worker(tmp_path, env, "second")
        assert result.get(timeout=90) == sum(range(50))
        second.send_signal(signal.SIGTERM)  # warm: finishes and acks whatever it holds
        assert second.wait(60) == 0
        lines = _wait_lines(tmp_path, "tsum ", 1, timeout=5)
        assert lines == ["tsum 50 1225 True"]
        ran = {int(ln.split()[1]) for ln in _wait_lines(tmp_path, "slow ", 50, timeout=5)}
        assert ran == set(range(50))
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        mod.app.close()
