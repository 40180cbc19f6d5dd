"""Processes of a benchmark: workers, one-shot clients, and their memory (PSS)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent


def _env(extra: Mapping[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra)
    env["PYTHONPATH"] = str(HERE) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def run_client(env: Mapping[str, str], *args: str, timeout: float = 600) -> dict[str, Any]:
    """Run ``client.py`` with ``args`` and return the JSON object it prints."""
    proc = subprocess.run(
        [sys.executable, str(HERE / "client.py"), *args], env=_env(env), cwd=HERE,
        capture_output=True, text=True, timeout=timeout, check=False,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"client {' '.join(args)} failed ({proc.returncode}):\n"
                           f"{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


class WorkerProcess:
    """A ``celeriac``/``celery`` worker started in its own session (process group)."""

    def __init__(self, system: str, env: Mapping[str, str], pool: str, concurrency: int,
                 log_path: Path) -> None:
        if system == "celery":
            cmd = [str(BIN / "celery"), "-A", "tasks", "worker", "-P", pool,
                   "-c", str(concurrency), "-l", "WARNING", "--without-mingle",
                   "--without-gossip"]
        else:
            cmd = [str(BIN / "celeriac"), "-A", "tasks", "worker", "-P", pool,
                   "-c", str(concurrency), "-l", "WARNING"]
        self.command = cmd
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(cmd, env=_env(env), cwd=HERE, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def pid(self) -> int:
        """The worker's main process id."""
        return self.proc.pid

    def alive(self) -> bool:
        """Whether the main process still runs."""
        return self.proc.poll() is None

    def stop(self, timeout: float = 20.0) -> None:
        """Warm shutdown (SIGTERM), then SIGKILL of the whole group after ``timeout``."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self._log.close()

    def log_tail(self, n: int = 2000) -> str:
        """The end of the worker's output (for error reports)."""
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants, from ``/proc/<pid>/task/*/children``."""
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        try:
            tids = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{current}/task/{tid}/children") as f:
                    todo += [int(c) for c in f.read().split()]
            except OSError:
                continue
    return out


def pss_kib(pid: int) -> int:
    """Proportional set size of one process in KiB (``smaps_rollup``)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        return 0
    return 0


def tree_pss_mib(pid: int) -> tuple[float, int]:
    """PSS of the process tree rooted at ``pid`` in MiB, and how many processes it has."""
    pids = process_tree(pid)
    return sum(pss_kib(p) for p in pids) / 1024.0, len(pids)


def wait_until(predicate: Any, timeout: float, interval: float = 0.02) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
