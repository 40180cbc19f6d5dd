"""The inside of a prefork child: read jobs from a pipe, run them, write outcomes back.

The parent (:mod:`celeriac.worker.pools.prefork`) forks a child after the app and
its tasks are loaded, so the child inherits them and needs no import step. The
two sides talk over a pair of pipes in length-prefixed pickle frames; a frame
holds a list, so several jobs (or several events) travel in one write.

Parent -> child frame: ``[job_to_wire(seq, job), ...]``. End of stream (the parent closing
its end) tells the child to finish its queue and exit.

Child -> parent frame: ``[(kind, seq, payload), ...]`` with kind :data:`STARTED`
(payload ``None``), sent before a job runs so that the parent knows which job a
dying child was running, or :data:`DONE` (payload ``outcome_to_wire(outcome)``).
Jobs and outcomes travel as plain tuples: pickling a dataclass costs several
times more than pickling its values.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ctypes
import dataclasses
import operator
import os
import pickle
import resource
import signal
import struct
import sys
import time
import traceback
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, Any, NoReturn

from celeriac import signals
from celeriac.app.context import Context
from celeriac.app.trace import Outcome, run_task
from celeriac.errors import EncodeError, SoftTimeLimitExceeded
from celeriac.worker.pools._inprocess import run_coroutine_job
from celeriac.worker.pools.base import Job, Pool, failed_outcome

if TYPE_CHECKING:
    from celeriac.app.core import App

__all__ = [
    "DONE",
    "STARTED",
    "ChildConfig",
    "FrameReader",
    "child_main",
    "encode_frame",
    "job_from_wire",
    "job_to_wire",
    "outcome_from_wire",
    "outcome_to_wire",
]

STARTED = 0
DONE = 1

_HEADER = struct.Struct("!I")
_READ_SIZE = 1 << 16
# Signals whose parent-side handlers (asyncio, the worker's shutdown logic) must
# not run in a child: the child dies on them like a plain process would.
_DEFAULT_SIGNALS = ("SIGTERM", "SIGQUIT", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGCHLD")


_CTX_FIELDS = tuple(f.name for f in dataclasses.fields(Context))
_JOB_FIELDS = tuple(f.name for f in dataclasses.fields(Job) if f.name != "ctx")
_ALL_OUTCOME_FIELDS = tuple(f.name for f in dataclasses.fields(Outcome))
_EXC_INDEX = _ALL_OUTCOME_FIELDS.index("exc")
_ctx_values = operator.attrgetter(*_CTX_FIELDS)
_job_values = operator.attrgetter(*_JOB_FIELDS)
_outcome_values = operator.attrgetter(*(n for n in _ALL_OUTCOME_FIELDS if n != "exc"))


def job_to_wire(seq: int, job: Job) -> tuple[Any, ...]:
    """``job`` as plain values, tagged with the parent's sequence number."""
    return seq, _ctx_values(job.ctx), _job_values(job)


def job_from_wire(item: tuple[Any, ...]) -> tuple[int, Job]:
    """The inverse of :func:`job_to_wire`."""
    seq, ctx_values, job_values = item
    return seq, Job(ctx=Context(*ctx_values), **dict(zip(_JOB_FIELDS, job_values, strict=True)))


def outcome_to_wire(out: Outcome) -> tuple[Any, ...]:
    """``out`` as plain values, without the live exception (its wire form is kept)."""
    values: tuple[Any, ...] = _outcome_values(out)
    return values


def outcome_from_wire(values: tuple[Any, ...]) -> Outcome:
    """The inverse of :func:`outcome_to_wire`."""
    return Outcome(*[*values[:_EXC_INDEX], None, *values[_EXC_INDEX:]])


def encode_frame(items: list[Any]) -> bytes:
    """One length-prefixed frame holding ``items``, pickled."""
    body = pickle.dumps(items, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(body)) + body


class FrameReader:
    """Splits a byte stream back into the item lists :func:`encode_frame` wrote."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Any]:
        """Add ``data``; return the items of every frame now complete, in order."""
        self._buf += data
        items: list[Any] = []
        buf = self._buf
        pos = 0
        while len(buf) - pos >= _HEADER.size:
            (size,) = _HEADER.unpack_from(buf, pos)
            end = pos + _HEADER.size + size
            if len(buf) < end:
                break
            items.extend(pickle.loads(memoryview(buf)[pos + _HEADER.size:end]))
            pos = end
        if pos:
            del buf[:pos]
        return items


@dataclass(frozen=True, slots=True)
class ChildConfig:
    """What a child needs to know besides the app: its pipes and recycling limits."""

    read_fd: int
    write_fd: int
    close_fds: tuple[int, ...]
    max_tasks: int | None
    max_memory_kib: int | None


def child_main(app: App, config: ChildConfig) -> NoReturn:
    """Run the child loop until end of input or a recycling limit, then ``os._exit``."""
    code = 0
    try:
        _Child(app, config).serve()
    except BaseException:  # a child reports its own crash, then dies
        traceback.print_exc()
        code = 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # nothing left to report to
                stream.flush()
    os._exit(code)


def _reset_signals() -> None:
    with contextlib.suppress(ValueError):  # forked from a non-main thread
        signal.set_wakeup_fd(-1)  # the parent's event loop owns that fd
    for name in _DEFAULT_SIGNALS:
        signal.signal(getattr(signal, name), signal.SIG_DFL)
    # Ctrl-C in a terminal reaches the whole process group; the parent decides.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this child when the worker dies (even by SIGKILL).

    Otherwise an orphaned child would finish its task after the worker is gone,
    while the broker already hands the same message to another worker.
    """
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _resident_kib() -> int:
    """Current resident set size of this process, in KiB."""
    try:
        with open("/proc/self/statm", "rb") as f:
            resident_pages = int(f.read().split()[1])
        return resident_pages * (os.sysconf("SC_PAGE_SIZE") // 1024)
    except (OSError, ValueError, IndexError):  # pragma: no cover - not Linux
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


class _Child:
    def __init__(self, app: App, config: ChildConfig) -> None:
        self.app = app
        self.config = config
        self.queue: collections.deque[tuple[int, Job]] = collections.deque()
        self.outbox: list[Any] = []
        self.reader = FrameReader()
        self.done = 0
        self.soft_armed = False
        self.soft_limit = 0.0
        self.eof = False
        self.orphaned = False

    def serve(self) -> None:
        _reset_signals()
        for fd in self.config.close_fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        signal.signal(signal.SIGALRM, self._on_alarm)
        signals.worker_process_init.send(sender=None)
        after_fork = getattr(self.app, "after_fork", None)
        if callable(after_fork):
            after_fork()
        try:
            while self._next_job():
                seq, job = self.queue.popleft()
                self.outbox.append((STARTED, seq, None))
                self._flush()
                if self.orphaned:
                    break
                self.outbox.append((DONE, seq, outcome_to_wire(self._execute(job))))
                self.done += 1
                if self._should_recycle():
                    break
        finally:
            self._flush()
            signals.worker_process_shutdown.send(sender=None, pid=os.getpid(), exitcode=0)

    def _next_job(self) -> bool:
        """Make sure a job is queued (blocking on the pipe); False at end of input."""
        while not self.queue:
            if self.eof:
                return False
            self._flush()
            data = os.read(self.config.read_fd, _READ_SIZE)
            if not data:
                self.eof = True
                continue
            self.queue.extend(job_from_wire(item) for item in self.reader.feed(data))
        return True

    def _should_recycle(self) -> bool:
        cfg = self.config
        if cfg.max_tasks is not None and self.done >= cfg.max_tasks:
            return True
        return cfg.max_memory_kib is not None and _resident_kib() > cfg.max_memory_kib

    def _flush(self) -> None:
        if not self.outbox or self.orphaned:
            return
        try:
            data = encode_frame(self.outbox)
        except Exception:  # find the value that does not pickle
            data = encode_frame([self._picklable(item) for item in self.outbox])
        self.outbox.clear()
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self.config.write_fd, view):]
        except BrokenPipeError:  # the parent died: nobody wants results any more
            self.orphaned = self.eof = True
            self.queue.clear()

    @staticmethod
    def _picklable(item: tuple[int, int, Any]) -> tuple[int, int, Any]:
        kind, seq, payload = item
        try:
            pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            error = EncodeError(f"the task's return value cannot be pickled: {exc!r}")
            return kind, seq, outcome_to_wire(failed_outcome(error))
        return item

    # -- running one job -------------------------------------------------------
    def _execute(self, job: Job) -> Outcome:
        try:
            task = self.app.tasks[job.task_name]
        except KeyError as exc:
            return failed_outcome(exc)
        if task.is_async:
            return asyncio.run(run_coroutine_job(task, job))
        return self._execute_sync(task, job)

    def _execute_sync(self, task: Any, job: Job) -> Outcome:
        soft = job.soft_time_limit
        if not soft:
            return run_task(task, job.ctx)
        out: Outcome | None = None
        started = time.perf_counter()
        try:
            self.soft_limit = soft
            self.soft_armed = True
            signal.setitimer(signal.ITIMER_REAL, soft)
            out = run_task(task, job.ctx)
        except SoftTimeLimitExceeded:
            # The alarm fired after the task body returned, before it was disarmed.
            if out is None:
                out = Pool.soft_limit_outcome(soft, started)
        finally:
            self.soft_armed = False
            signal.setitimer(signal.ITIMER_REAL, 0)
        return out

    def _on_alarm(self, signum: int, frame: FrameType | None) -> None:
        if self.soft_armed:
            self.soft_armed = False
            raise SoftTimeLimitExceeded(f"soft time limit ({self.soft_limit}s) exceeded")
