"""The prefork parent's bookkeeping: submitted jobs, children, forking, pool-made outcomes."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from celeriac.app.trace import Outcome
from celeriac.errors import TaskRevokedError, WorkerLostError
from celeriac.protocol import states
from celeriac.protocol.exceptions import exception_to_wire
from celeriac.worker.pools._child import ChildConfig, FrameReader, child_main
from celeriac.worker.pools.base import Job, PoolOptions, failed_outcome

if TYPE_CHECKING:
    from celeriac.app.core import App

__all__ = ["Entry", "Proc", "exit_cause", "fork_child", "requeue_outcome", "revoked_outcome"]


@dataclass(slots=True, eq=False)
class Entry:
    """A submitted job and where it is: pending, sent to a child, or started there."""

    seq: int
    job: Job
    future: asyncio.Future[Outcome] | None  # run()'s waiter, or None when submitted
    on_done: Callable[[Outcome], None] | None = None  # submit()'s callback
    proc: Proc | None = None
    started: float | None = None  # perf_counter when the child reported STARTED
    deadline: asyncio.TimerHandle | None = None
    revoke_signal: int | None = None


@dataclass(slots=True, eq=False)
class Proc:
    """The parent's view of one child process."""

    pid: int
    to_fd: int  # jobs go out here; closing it tells the child to finish and exit
    from_fd: int
    pidfd: int
    inflight: collections.deque[Entry] = field(default_factory=collections.deque)
    reader: FrameReader = field(default_factory=FrameReader)
    wbuf: bytearray = field(default_factory=bytearray)
    assigned: int = 0
    completed: int = 0
    retiring: bool = False  # being shrunk away: gets no jobs, is not replaced
    close_after_flush: bool = False
    eof: bool = False
    killed_for: tuple[str, Entry] | None = None  # ("timeout" | "revoke", entry)

    def kill(self, signum: int) -> None:
        """Send ``signum`` to the child (gone already is fine)."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signum)


def fork_child(app: App, options: PoolOptions, others: Iterable[Proc]) -> Proc:
    """Fork a child running :func:`~celeriac.worker.pools._child.child_main`.

    The child closes the parent's ends of every other child's pipes: a sibling
    holding a write end would hide that child's end-of-file from the parent.
    """
    job_r, job_w = os.pipe()
    event_r, event_w = os.pipe()
    inherited = [fd for p in others for fd in (p.to_fd, p.from_fd, p.pidfd) if fd >= 0]
    config = ChildConfig(
        read_fd=job_r, write_fd=event_w, close_fds=(*inherited, job_w, event_r),
        max_tasks=options.max_tasks_per_child, max_memory_kib=options.max_memory_per_child,
    )
    for stream in (sys.stdout, sys.stderr):  # or the child writes the buffer again
        with contextlib.suppress(Exception):
            stream.flush()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child never returns from here
        child_main(app, config)
    os.close(job_r)
    os.close(event_w)
    os.set_blocking(job_w, False)
    os.set_blocking(event_r, False)
    return Proc(pid=pid, to_fd=job_w, from_fd=event_r, pidfd=os.pidfd_open(pid))


def exit_cause(code: int | None) -> str:
    """Describe an exit code from ``os.waitstatus_to_exitcode`` as Celery's messages do."""
    if code is None:
        return "unknown exit status"
    if code < 0:
        return f"signal {-code} ({signal.Signals(-code).name})"
    return f"exitcode {code}"


def requeue_outcome(entry: Entry) -> Outcome:
    """A job abandoned by a shutdown: the worker gives its message back."""
    exc = WorkerLostError(
        f"pool shut down: job {entry.job.ctx.id or entry.seq} did not finish; requeued"
    )
    out = failed_outcome(exc)
    out.requeue = True
    return out


def revoked_outcome(entry: Entry) -> Outcome:
    """A job stopped by ``terminate`` (revoke with terminate=True)."""
    exc = TaskRevokedError("terminated")
    runtime = time.perf_counter() - entry.started if entry.started is not None else 0.0
    return Outcome(
        states.REVOKED, exc=exc, exc_wire=exception_to_wire(exc), runtime=runtime,
        reason="terminated",
    )
