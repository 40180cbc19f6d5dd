"""Canvas interop over Redis: Celery-built workflows on a celeriac worker, and the reverse.

Two task modules with the same task names are written to a temp dir, one on
``celery`` and one on ``celeriac``. A real Celery 5.x client sends a chain, a
group and a chord to a queue only a celeriac worker consumes; then a celeriac
client sends the same to a queue only a real Celery worker consumes. Every
follow-up message (chain steps, chord body) is sent by the worker that ran the
previous step, so each direction exercises that side's worker-side canvas.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

_TESTS = Path(__file__).resolve().parents[1]
if str(_TESTS) not in sys.path:
    sys.path.insert(0, str(_TESTS))

from _servers import REDIS_HOST, REDIS_PORT, ensure_redis, redis_db_lease  # noqa: E402

pytestmark = pytest.mark.redis

BIN = Path(sys.executable).parent
TO_CELERIAC = "canvas-to-celeriac"
TO_CELERY = "canvas-to-celery"

_MODULE = '''
import os
from {package} import Celery

app = Celery("{name}", broker=os.environ["CX_URL"], backend=os.environ["CX_URL"])
app.conf.task_default_queue = os.environ["CX_QUEUE"]


@app.task(name="cx.add")
def add(x, y):
    return x + y


@app.task(name="cx.tsum")
def tsum(xs):
    return sum(xs)


@app.task(name="cx.double")
def double(x):
    return 2 * x
'''

_CLIENT = '''
import json
from {module} import add, tsum, double
from {package} import chain, group, chord

out = {{}}
out["chain"] = chain(add.s(1, 2), add.s(3), double.s()).apply_async().get(timeout=30)
out["group"] = group(add.s(i, i) for i in range(5)).apply_async().get(timeout=30)
out["chord"] = chord([add.s(i, i) for i in range(6)], tsum.s()).apply_async().get(timeout=30)
out["chain_si"] = (add.s(1, 1) | add.si(10, 10) | add.s(1)).apply_async().get(timeout=30)
print("RESULT " + json.dumps(out))
'''

EXPECTED = {"chain": 12, "group": [0, 2, 4, 6, 8], "chord": 30, "chain_si": 21}


class _Worker:
    """A worker subprocess whose output goes to a file we poll (bounded)."""

    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str], log: Path) -> None:
        self.log = log
        self._out = log.open("w")
        self.proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=self._out,
                                     stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while "ready." not in self.log.read_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"worker not ready:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._out.close()


@pytest.fixture(scope="module")
def cx_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    import redis

    ensure_redis()
    with redis_db_lease() as db:
        client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=db)
        client.flushdb()
        client.close()
        path = tmp_path_factory.mktemp("canvas_interop")
        (path / "cx_celery.py").write_text(_MODULE.format(package="celery", name="cx_celery"))
        (path / "cx_celeriac.py").write_text(
            _MODULE.format(package="celeriac", name="cx_celeriac"))
        yield path, f"redis://{REDIS_HOST}:{REDIS_PORT}/{db}"


def _env(path: Path, url: str, queue: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(path), "CX_URL": url, "CX_QUEUE": queue,
            "PYTHONUNBUFFERED": "1"}


def _client(path: Path, env: dict[str, str], module: str, package: str) -> dict[str, object]:
    code = textwrap.dedent(_CLIENT.format(module=module, package=package))
    done = subprocess.run([sys.executable, "-c", code], cwd=path, env=env, text=True,
                          capture_output=True, timeout=120)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stdout[-2000:] + done.stderr[-3000:]
    result: dict[str, object] = json.loads(lines[-1].removeprefix("RESULT "))
    return result


@pytest.fixture
def workers_cleanup() -> Iterator[list[_Worker]]:
    started: list[_Worker] = []
    yield started
    for worker in started:
        worker.stop()


def test_celery_client_workflows_on_celeriac_worker(cx_dir: tuple[Path, str],
                                                    workers_cleanup: list[_Worker]) -> None:
    path, url = cx_dir
    env = _env(path, url, TO_CELERIAC)
    worker = _Worker([str(BIN / "celeriac"), "-A", "cx_celeriac", "worker", "-P", "prefork",
                      "-c", "2", "-Q", TO_CELERIAC, "-l", "INFO"], path, env,
                     path / "celeriac_worker.log")
    workers_cleanup.append(worker)
    worker.wait_ready()
    assert _client(path, env, "cx_celery", "celery") == EXPECTED


def test_celeriac_client_workflows_on_celery_worker(cx_dir: tuple[Path, str],
                                                    workers_cleanup: list[_Worker]) -> None:
    path, url = cx_dir
    env = _env(path, url, TO_CELERY)
    worker = _Worker([str(BIN / "celery"), "-A", "cx_celery", "worker", "-P", "prefork", "-c",
                      "2", "-Q", TO_CELERY, "-l", "INFO", "--without-mingle",
                      "--without-gossip"], path, env, path / "celery_worker.log")
    workers_cleanup.append(worker)
    worker.wait_ready()
    assert _client(path, env, "cx_celeriac", "celeriac") == EXPECTED
