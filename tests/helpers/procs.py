"""Run the real ``celeriac`` (or Celery's ``celery``) CLI in a subprocess and wait on
what it logs."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

CELERIAC = str(Path(sys.executable).with_name("celeriac"))
#: Real Celery's CLI (a test-only dependency), for interoperability tests.
CELERY = str(Path(sys.executable).with_name("celery"))


class CliProcess:
    """A ``celeriac`` subprocess whose stderr/stdout lines are collected as they come."""

    binary = CELERIAC

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str] | None = None,
                 new_session: bool = False) -> None:
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        full_env["PYTHONPATH"] = os.pathsep.join(
            [str(cwd), full_env.get("PYTHONPATH", "")]
        ).strip(os.pathsep)
        self.args = args
        self.proc = subprocess.Popen(
            [self.binary, *args], cwd=cwd, env=full_env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, bufsize=1, start_new_session=new_session,
        )
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    @property
    def output(self) -> str:
        with self._cond:
            return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout: float = 30.0, count: int = 1) -> list[str]:
        """Block until ``count`` lines match ``pattern``; fail with the output if not."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [line for line in self.lines if regex.search(line)]
                if len(found) >= count:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    raise AssertionError(
                        f"no {count} line(s) matching {pattern!r} within {timeout}s; "
                        f"exit={self.proc.poll()}; output:\n" + "\n".join(self.lines[-80:])
                    )
                self._cond.wait(min(remaining, 0.5))

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def kill_group(self, timeout: float = 10.0) -> int:
        """SIGKILL the process and its children (needs ``new_session=True``); wait for it."""
        assert self.proc.pid == os.getpgid(self.proc.pid), "started without new_session"
        os.killpg(self.proc.pid, signal.SIGKILL)
        return self.wait(timeout)

    def wait(self, timeout: float = 30.0) -> int:
        code = self.proc.wait(timeout)
        self._reader.join(5)
        return code

    def stop(self) -> None:
        """Warm-stop (SIGTERM), then kill if it lingers."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._reader.join(5)


class PythonProcess(CliProcess):
    """``python <args>`` (a user's own script) with the same line collection and waits."""

    binary = sys.executable


class CeleryProcess(CliProcess):
    """A real Celery ``celery`` subprocess (same line collection and waits)."""

    binary = CELERY


def run_python(code: str, cwd: Path, timeout: float = 60.0,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -c code`` in ``cwd`` (the way a user would from a second shell).

    ``cwd`` goes first on PYTHONPATH, before what the test run had (so a worktree's
    ``src`` stays importable); ``env`` adds variables.
    """
    path = os.pathsep.join([str(cwd), os.environ.get("PYTHONPATH", "")]).strip(os.pathsep)
    env = {**os.environ, **(env or {}), "PYTHONPATH": path}
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, text=True,
                          capture_output=True, timeout=timeout)


def wait_until(predicate: object, timeout: float = 30.0, what: str = "condition") -> None:
    """Poll ``predicate()`` every 10 ms until true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout}s")
        time.sleep(0.01)
