"""Remote control across implementations over Redis: Celery's ``celery inspect`` /
``celery control`` against a celeriac worker, and celeriac's against a Celery worker."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.procs import CELERIAC, CELERY, CeleryProcess, run_python
from tests.interop._sides import TO_CELERIAC, TO_CELERY, start_celeriac, start_celery

HOST = socket.gethostname()
CELERIAC_NODE = f"celeriac-{TO_CELERIAC}@{HOST}"
CELERY_NODE = f"celery-{TO_CELERY}@{HOST}"


@pytest.fixture(scope="module")
def workers(interop_dir: Path) -> Iterator[None]:
    """A celeriac and a Celery prefork worker on the same Redis database."""
    ours = start_celeriac(interop_dir, TO_CELERIAC, "-P", "prefork", "-c", "2")
    try:
        theirs = start_celery(interop_dir, TO_CELERY, "-P", "prefork", "-c", "2")
    except BaseException:
        ours.stop()
        raise
    yield
    theirs.stop()
    ours.stop()


def _cli(binary: str, module: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join([str(cwd), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([binary, "-A", module, *args], cwd=cwd, env=env, text=True,
                          capture_output=True, timeout=60)


def test_celery_inspect_ping_reaches_a_celeriac_worker(interop_dir: Path, workers: None) -> None:
    out = _cli(CELERY, "celery_side", interop_dir, "inspect", "ping", "-d", CELERIAC_NODE)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"->  {CELERIAC_NODE}: OK" in out.stdout and "pong" in out.stdout


def test_celery_status_lists_both_workers(interop_dir: Path, workers: None) -> None:
    out = _cli(CELERY, "celery_side", interop_dir, "status")
    assert out.returncode == 0, out.stdout + out.stderr
    assert CELERIAC_NODE in out.stdout and CELERY_NODE in out.stdout
    assert "2 nodes online." in out.stdout


def test_celery_inspect_and_control_a_celeriac_worker(interop_dir: Path, workers: None) -> None:
    out = _cli(CELERY, "celery_side", interop_dir, "inspect", "registered", "-d", CELERIAC_NODE)
    assert out.returncode == 0 and "interop.add" in out.stdout
    out = _cli(CELERY, "celery_side", interop_dir, "inspect", "stats", "-d", CELERIAC_NODE,
               "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    assert json.loads(out.stdout)[CELERIAC_NODE]["pool"]["implementation"] == "prefork"
    out = _cli(CELERY, "celery_side", interop_dir, "control", "rate_limit", "interop.add",
               "100/m", "-d", CELERIAC_NODE)
    assert out.returncode == 0 and "new rate limit set successfully" in out.stdout
    out = _cli(CELERY, "celery_side", interop_dir, "inspect", "registered", "-d", CELERIAC_NODE)
    assert "interop.add [rate_limit=100/m]" in out.stdout
    out = _cli(CELERY, "celery_side", interop_dir, "control", "rate_limit", "interop.add",
               "", "-d", CELERIAC_NODE)
    assert out.returncode == 0 and "rate limit disabled successfully" in out.stdout
    out = _cli(CELERY, "celery_side", interop_dir, "inspect", "registered", "-d", CELERIAC_NODE)
    assert "interop.add\n" in out.stdout + "\n" and "rate_limit=" not in out.stdout


def test_celery_python_api_sees_celeriac_active_task(interop_dir: Path, workers: None) -> None:
    code = f"""
import time
r = record.apply_async(("ctl-interop-key", "x"), countdown=0)
insp = app.control.inspect([{CELERIAC_NODE!r}], timeout=5)
r2 = stamp.delay()
out = {{"ping": insp.ping(), "queues": [q["name"] for q in insp.active_queues()[{CELERIAC_NODE!r}]],
       "done": r2.get(timeout=30) > 0}}
"""
    proc = run_python(f"from celery_side import *\n{code}\nimport json\nprint(json.dumps(out))",
                      interop_dir)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["ping"] == {CELERIAC_NODE: {"ok": "pong"}}
    assert out["queues"] == [TO_CELERIAC] and out["done"]


def test_celeriac_inspect_reaches_a_celery_worker(interop_dir: Path, workers: None) -> None:
    out = _cli(CELERIAC, "celeriac_side", interop_dir, "inspect", "ping", "-d", CELERY_NODE)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"->  {CELERY_NODE}: OK" in out.stdout and "pong" in out.stdout
    out = _cli(CELERIAC, "celeriac_side", interop_dir, "status")
    assert out.returncode == 0 and "2 nodes online." in out.stdout
    out = _cli(CELERIAC, "celeriac_side", interop_dir, "inspect", "registered", "-d",
               CELERY_NODE, "--json")
    assert "interop.add" in json.loads(out.stdout)[CELERY_NODE]
    out = _cli(CELERIAC, "celeriac_side", interop_dir, "control", "rate_limit", "interop.add",
               "100/m", "-d", CELERY_NODE)
    assert out.returncode == 0 and "new rate limit set successfully" in out.stdout


def test_celeriac_python_api_against_a_celery_worker(interop_dir: Path, workers: None) -> None:
    code = f"""
insp = app.control.inspect([{CELERY_NODE!r}], timeout=5)
stats = insp.stats()[{CELERY_NODE!r}]
out = {{"ping": insp.ping(), "pool": stats["pool"]["max-concurrency"],
       "queues": [q["name"] for q in insp.active_queues()[{CELERY_NODE!r}]],
       "revoke": app.control.revoke("ctl-x", destination=[{CELERY_NODE!r}], reply=True,
                                    timeout=5)}}
"""
    proc = run_python(f"from celeriac_side import *\n{code}\nimport json\nprint(json.dumps(out))",
                      interop_dir)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["ping"] == {CELERY_NODE: {"ok": "pong"}}
    assert out["pool"] == 2 and out["queues"] == [TO_CELERY]
    assert out["revoke"] == [{CELERY_NODE: {"ok": "tasks {'ctl-x'} flagged as revoked"}}]


def test_a_celery_worker_starting_with_mingle_syncs_with_celeriac(interop_dir: Path,
                                                                  workers: None) -> None:
    # Celery workers greet the cluster at start-up ("hello") and merge the revoked
    # ids they hear back; a celeriac worker's answer must not break that.
    revoked = _cli(CELERIAC, "celeriac_side", interop_dir, "control", "revoke", "mingle-id",
                   "-d", CELERIAC_NODE)
    assert revoked.returncode == 0, revoked.stdout + revoked.stderr
    proc = CeleryProcess(["-A", "celery_side", "worker", "-l", "INFO", "-Q", "ctl-mingle",
                          "-n", f"celery-mingle@{HOST}", "--without-gossip"], interop_dir)
    try:
        proc.wait_for(r"@\S+ ready\.", timeout=60)
        assert proc.wait_for(r"mingle: sync with \d+ nodes", timeout=1)
        assert "Traceback" not in proc.output
        out = _cli(CELERY, "celery_side", interop_dir, "inspect", "revoked", "-d",
                   f"celery-mingle@{HOST}")
        assert "mingle-id" in out.stdout
    finally:
        proc.stop()
