"""The prefork pool: sync tasks run in forked child processes fed over pipes.

The parent side lives on the worker's event loop: every child has a pipe for
jobs, a pipe for events back and a pidfd, all watched with ``loop.add_reader``
(no thread per child). Each child keeps up to ``per_child_queue`` jobs in flight
so it never idles between tasks; with ``per_child_queue=1`` a job only goes to
an idle child (strict fair dispatch, ``-O fair``). Jobs waiting for a slot are
written to a child in one frame, and a child's events arrive batched.

A child reports ``STARTED`` before it runs a job. That is what makes recovery
exact: when a child dies (hard time limit, ``terminate``, a crash, ``kill -9``)
the one job it had started gets an outcome (``TimeLimitExceeded``, ``REVOKED``,
``WorkerLostError``) and the jobs it had only been sent go back to the head of
the queue to run in another child. A replacement child is forked at once.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import os
import signal
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from celeriac.app.trace import Outcome
from celeriac.worker.pools._child import DONE, STARTED, encode_frame, job_to_wire, outcome_from_wire
from celeriac.worker.pools._proc import (
    Entry,
    Proc,
    exit_cause,
    fork_child,
    requeue_outcome,
    revoked_outcome,
)
from celeriac.worker.pools.base import Job, Pool, PoolOptions, failed_outcome

if TYPE_CHECKING:
    from celeriac.app.core import App

__all__ = ["PreforkPool"]

_READ_SIZE = 1 << 16
_JOIN_TIMEOUT = 10.0
# A child that fails before finishing one task (a broken worker_process_init
# receiver, say) would otherwise be re-forked in a tight loop.
_CRASH_RESPAWN_DELAY = 1.0


class PreforkPool(Pool):
    """Runs jobs in forked child processes; see the module docstring for the design."""

    name: ClassVar[str] = "prefork"
    submits: ClassVar[bool] = True

    def __init__(
        self,
        app: App,
        options: PoolOptions,
        *,
        keepalive: float = 30.0,
        autoscale_interval: float = 1.0,
        timeouts: tuple[float | None, float | None] = (None, None),
    ) -> None:
        super().__init__(app, options)
        self.keepalive = keepalive
        self.autoscale_interval = autoscale_interval
        self.timeouts = timeouts
        if options.autoscale is not None:
            self._max, self._min = options.autoscale
            self._target = self._min
        else:
            self._min = self._max = self._target = max(options.concurrency, 1)
        self._per_child = max(options.per_child_queue, 1)
        # A busy child is topped up once it is down to half its queue: one pipe
        # write then carries several jobs instead of one per finished job.
        self._refill_at = self._per_child // 2
        self._procs: dict[int, Proc] = {}
        self._pending: collections.deque[Entry] = collections.deque()
        self._entries: dict[int, Entry] = {}
        self._seq = itertools.count()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._dispatch_scheduled = False
        self._started = False
        self._closing = False
        self._cold = False
        self._drained = asyncio.Event()
        self._drained.set()
        self._proc_exited = asyncio.Event()
        self._autoscaler: asyncio.Task[None] | None = None
        self._last_full = 0.0

    # -- Pool API ------------------------------------------------------------------
    @property
    def limit(self) -> int:
        """How many child processes the pool aims to keep (changes with grow/shrink)."""
        return self._target

    @property
    def pids(self) -> list[int]:
        """Process ids of the live children, oldest first."""
        return list(self._procs)

    async def start(self) -> None:
        """Fork the initial children (and start the autoscaler when configured)."""
        if self._started:
            return
        self._loop = asyncio.get_running_loop()
        self._started = True
        self._last_full = self._loop.time()
        self._ensure_target()
        if self.options.autoscale is not None:
            self._autoscaler = self._loop.create_task(self._autoscale_loop())

    async def run(self, job: Job) -> Outcome:
        """Queue ``job`` for a child and wait for its outcome."""
        loop = self._get_loop()
        future: asyncio.Future[Outcome] = loop.create_future()
        entry = Entry(next(self._seq), job, future)
        if self._closing:  # too late to run it here: the worker gives it back
            return requeue_outcome(entry)
        self._queue(entry)
        try:
            return await future
        except asyncio.CancelledError:
            if entry.proc is None:  # not handed to a child yet: forget it
                with contextlib.suppress(ValueError):
                    self._pending.remove(entry)
                self._forget(entry)
            raise

    def submit(self, job: Job, on_done: Callable[[Outcome], None]) -> None:
        """Queue ``job`` for a child; ``on_done(outcome)`` is called when it ends."""
        loop = self._get_loop()
        entry = Entry(next(self._seq), job, None, on_done)
        if self._closing:  # too late to run it here: the worker gives it back
            loop.call_soon(on_done, requeue_outcome(entry))
            return
        self._queue(entry)

    def _queue(self, entry: Entry) -> None:
        self._entries[entry.seq] = entry
        self._drained.clear()
        if len(self._entries) == 1:
            proc = self._idle_child()
            if proc is not None:
                # A lone job on an idle pool (the sequential round trip) goes to a
                # child now, not a loop turn later. Jobs queued behind it in this
                # turn still go out together at the next dispatch; a busy pool
                # (a drain) always batches.
                self._assign(proc, entry)
                self._send(proc, [entry])
                self._mark_busy()
                return
        self._pending.append(entry)
        self._schedule_dispatch()

    def _idle_child(self) -> Proc | None:
        for proc in self._procs.values():
            if not proc.inflight and self._capacity(proc) > 0:
                return proc
        return None

    def _assign(self, proc: Proc, entry: Entry) -> None:
        entry.proc = proc
        proc.inflight.append(entry)
        proc.assigned += 1

    async def stop(self, *, cold: bool = False) -> None:
        """Warm: let every submitted job finish, then let children exit.

        Cold: kill children at once; unfinished jobs come back as ``WorkerLostError``
        outcomes with ``requeue=True`` so the worker puts them back on the queue.
        """
        if not self._started:
            return
        if self._autoscaler is not None:
            self._autoscaler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._autoscaler
            self._autoscaler = None
        if cold:
            self._closing = self._cold = True
            while self._pending:
                entry = self._pending.popleft()
                self._resolve(entry, requeue_outcome(entry))
            for proc in list(self._procs.values()):
                proc.kill(signal.SIGKILL)
        else:
            await self._drained.wait()
            self._closing = True
            for proc in list(self._procs.values()):
                self._close_input(proc)
        if not await self._join(_JOIN_TIMEOUT):
            for proc in list(self._procs.values()):
                proc.kill(signal.SIGKILL)
            await self._join(_JOIN_TIMEOUT)

    async def terminate(self, task_id: str, signum: int) -> bool:
        """Send ``signum`` to the child running ``task_id``; the job ends ``REVOKED``."""
        entry = next((e for e in self._entries.values() if e.job.ctx.id == task_id), None)
        if entry is None:
            return False
        if entry.proc is None:
            with contextlib.suppress(ValueError):
                self._pending.remove(entry)
            self._resolve(entry, revoked_outcome(entry))
            return True
        entry.revoke_signal = signum
        if entry.started is not None:  # else: signalled as soon as it reports STARTED
            entry.proc.killed_for = ("revoke", entry)
            entry.proc.kill(signum)
        return True

    async def grow(self, n: int = 1) -> None:
        """Fork ``n`` more children."""
        self._target += max(n, 0)
        self._max = max(self._max, self._target)
        self._ensure_target()
        self._schedule_dispatch()

    async def shrink(self, n: int = 1) -> None:
        """Retire ``n`` children (idle ones first); they finish the jobs they hold."""
        self._shrink(n)

    def worker_pids(self) -> dict[str, int]:
        """Task id -> pid of the child each job was sent to."""
        return {e.job.ctx.id: e.proc.pid for e in self._entries.values()
                if e.proc is not None and e.job.ctx.id is not None}

    def info(self) -> dict[str, Any]:
        """Pool facts for ``inspect stats``: pids, limits and recycling settings."""
        soft, hard = self.timeouts
        return {
            "implementation": self.name,
            "max-concurrency": self.limit,
            "processes": self.pids,
            "max-tasks-per-child": self.options.max_tasks_per_child or "N/A",
            "max-memory-per-child": self.options.max_memory_per_child or "N/A",
            "per-child-queue": self._per_child,
            "autoscale": list(self.options.autoscale) if self.options.autoscale else None,
            "timeouts": [soft or 0, hard or 0],
        }

    # -- children ----------------------------------------------------------------
    def _get_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("the prefork pool is not started: await pool.start() first")
        return self._loop

    def _ensure_target(self) -> None:
        while not self._closing and self._counted() < self._target:
            self._spawn()

    def _counted(self) -> int:
        return sum(1 for p in self._procs.values() if not p.retiring)

    def _spawn(self) -> None:
        loop = self._get_loop()
        proc = fork_child(self.app, self.options, self._procs.values())
        self._procs[proc.pid] = proc
        loop.add_reader(proc.from_fd, self._on_readable, proc)
        loop.add_reader(proc.pidfd, self._on_exit, proc)

    def _close_input(self, proc: Proc) -> None:
        if proc.to_fd < 0:
            return
        if proc.wbuf:
            proc.close_after_flush = True
            return
        self._get_loop().remove_writer(proc.to_fd)
        os.close(proc.to_fd)
        proc.to_fd = -1

    def _shrink(self, n: int) -> None:
        floor = min(self._min, 1)
        n = max(min(n, self._target - floor), 0)
        if not n:
            return
        self._target -= n
        candidates = sorted(
            (p for p in self._procs.values() if not p.retiring), key=lambda p: len(p.inflight)
        )
        for proc in candidates[:n]:
            proc.retiring = True
            self._close_input(proc)

    # -- events from children ----------------------------------------------------
    def _on_readable(self, proc: Proc) -> None:
        self._drain(proc)
        self._schedule_dispatch()

    def _drain(self, proc: Proc) -> None:
        while not proc.eof:
            try:
                data = os.read(proc.from_fd, _READ_SIZE)
            except BlockingIOError:
                return
            if not data:
                proc.eof = True
                self._get_loop().remove_reader(proc.from_fd)
                return
            for kind, seq, payload in proc.reader.feed(data):
                entry = self._entries.get(seq)
                if entry is None or entry.proc is not proc:
                    continue  # a job whose waiter was cancelled and forgotten
                if kind == STARTED:
                    self._on_started(proc, entry)
                elif kind == DONE:
                    self._on_done(proc, entry, outcome_from_wire(payload))
            if len(data) < _READ_SIZE:
                # A short read emptied the pipe: no second read() just to hear EAGAIN
                # (the reader stays registered for whatever the child writes next).
                return

    def _on_started(self, proc: Proc, entry: Entry) -> None:
        entry.started = time.perf_counter()
        limit = entry.job.time_limit
        if limit:
            entry.deadline = self._get_loop().call_later(limit, self._on_deadline, proc, entry)
        if entry.revoke_signal is not None:
            proc.killed_for = ("revoke", entry)
            proc.kill(entry.revoke_signal)

    def _on_done(self, proc: Proc, entry: Entry, outcome: Outcome) -> None:
        proc.inflight.remove(entry)
        proc.completed += 1
        if entry.deadline is not None:
            entry.deadline.cancel()
        if entry.revoke_signal is not None:
            outcome = revoked_outcome(entry)
            if proc.killed_for is not None and proc.killed_for[1] is entry:
                proc.killed_for = None  # the signal did not end the child: keep using it
        self._resolve(entry, outcome)

    def _on_deadline(self, proc: Proc, entry: Entry) -> None:
        if entry in proc.inflight and proc.killed_for is None:
            proc.killed_for = ("timeout", entry)
            proc.kill(signal.SIGKILL)

    def _on_writable(self, proc: Proc) -> None:
        self._write(proc, b"")

    def _on_exit(self, proc: Proc) -> None:
        """The child is gone: settle what it held, reap it, replace it."""
        loop = self._get_loop()
        loop.remove_reader(proc.pidfd)
        self._drain(proc)  # events it wrote before it died come first
        if not proc.eof:
            loop.remove_reader(proc.from_fd)
        try:
            _, status = os.waitpid(proc.pid, 0)
            code: int | None = os.waitstatus_to_exitcode(status)
        except ChildProcessError:  # reaped by someone else: the cause is unknown
            code = None
        if proc.to_fd >= 0:
            loop.remove_writer(proc.to_fd)
            os.close(proc.to_fd)
        os.close(proc.from_fd)
        os.close(proc.pidfd)
        proc.to_fd = proc.from_fd = proc.pidfd = -1
        del self._procs[proc.pid]
        requeue: list[Entry] = []
        for entry in proc.inflight:
            if entry.deadline is not None:
                entry.deadline.cancel()
            if entry.started is not None:
                self._resolve(entry, self._death_outcome(proc, entry, code))
            elif self._cold:
                self._resolve(entry, requeue_outcome(entry))
            elif entry.revoke_signal is not None:
                self._resolve(entry, revoked_outcome(entry))
            else:
                entry.proc = None
                requeue.append(entry)
        proc.inflight.clear()
        self._pending.extendleft(reversed(requeue))
        self._proc_exited.set()
        if proc.completed == 0 and code is not None and code > 0 and not proc.retiring:
            loop.call_later(_CRASH_RESPAWN_DELAY, self._respawn)
        else:
            self._respawn()

    def _respawn(self) -> None:
        self._ensure_target()
        self._schedule_dispatch()

    def _death_outcome(self, proc: Proc, entry: Entry, code: int | None) -> Outcome:
        started = entry.started or time.perf_counter()
        killed = proc.killed_for
        if killed is not None and killed[1] is entry and killed[0] == "timeout":
            return self.hard_limit_outcome(entry.job.time_limit or 0.0, started)
        if entry.revoke_signal is not None:
            return revoked_outcome(entry)
        if self._cold:
            return requeue_outcome(entry)
        return self.lost_outcome(
            f"Worker exited prematurely: {exit_cause(code)} Job: {entry.job.ctx.id or entry.seq}.",
            started,
        )

    # -- handing jobs to children ------------------------------------------------
    def _schedule_dispatch(self) -> None:
        if not self._dispatch_scheduled and self._pending:
            self._dispatch_scheduled = True
            self._get_loop().call_soon(self._dispatch)

    def _capacity(self, proc: Proc) -> int:
        if proc.retiring or proc.to_fd < 0 or proc.killed_for is not None:
            return 0
        room = self._per_child - len(proc.inflight)
        max_tasks = self.options.max_tasks_per_child
        if max_tasks:
            room = min(room, max_tasks - proc.assigned)
        return room

    def _dispatch(self) -> None:
        self._dispatch_scheduled = False
        if self._closing and self._cold:
            return
        self._autogrow()
        refill_at = self._refill_at
        ready = [p for p in self._procs.values()
                 if len(p.inflight) <= refill_at and self._capacity(p) > 0]
        batches: dict[int, list[Entry]] = {}
        while self._pending and ready:
            proc = min(ready, key=lambda p: len(p.inflight))  # idle children first
            entry = self._pending.popleft()
            self._assign(proc, entry)
            batches.setdefault(proc.pid, []).append(entry)
            if self._capacity(proc) <= 0:
                ready.remove(proc)
        for pid, entries in batches.items():
            self._send(self._procs[pid], entries)
        if self._pending or any(p.inflight for p in self._procs.values()):
            self._mark_busy()

    def _send(self, proc: Proc, entries: list[Entry]) -> None:
        try:
            data = encode_frame([job_to_wire(e.seq, e.job) for e in entries])
        except Exception:  # find the job that does not pickle
            good: list[Entry] = []
            for entry in entries:
                try:
                    encode_frame([job_to_wire(entry.seq, entry.job)])
                except Exception as exc:
                    proc.inflight.remove(entry)
                    proc.assigned -= 1
                    self._resolve(entry, failed_outcome(exc))
                else:
                    good.append(entry)
            if not good:
                return
            data = encode_frame([job_to_wire(e.seq, e.job) for e in good])
        self._write(proc, data)

    def _write(self, proc: Proc, data: bytes) -> None:
        if proc.to_fd < 0:
            return
        proc.wbuf += data
        loop = self._get_loop()
        try:
            written = os.write(proc.to_fd, proc.wbuf)
        except BlockingIOError:
            written = 0
        except BrokenPipeError:  # the child died; _on_exit requeues what it held
            proc.wbuf.clear()
            proc.close_after_flush = True
            written = 0
        del proc.wbuf[:written]
        if proc.wbuf:
            loop.add_writer(proc.to_fd, self._on_writable, proc)
            return
        loop.remove_writer(proc.to_fd)
        if proc.close_after_flush:
            self._close_input(proc)

    def _resolve(self, entry: Entry, outcome: Outcome) -> None:
        self._forget(entry)
        if entry.on_done is not None:
            on_done, entry.on_done = entry.on_done, None
            on_done(outcome)
        elif entry.future is not None and not entry.future.done():
            entry.future.set_result(outcome)

    def _forget(self, entry: Entry) -> None:
        self._entries.pop(entry.seq, None)
        if not self._entries:
            self._drained.set()

    async def _join(self, timeout: float) -> bool:
        """Wait until every child has exited and been reaped; False on timeout."""
        deadline = self._get_loop().time() + timeout
        while self._procs:
            self._proc_exited.clear()
            remaining = deadline - self._get_loop().time()
            if remaining <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._proc_exited.wait(), remaining)
        return True

    # -- autoscale -----------------------------------------------------------------
    def _mark_busy(self) -> None:
        if len(self._entries) >= self._counted():
            self._last_full = self._get_loop().time()

    def _autogrow(self) -> None:
        if self.options.autoscale is None or self._closing:
            return
        # Celery's rule: grow while more jobs are outstanding than there are children.
        want = min(len(self._entries) - self._counted(), self._max - self._target)
        if want > 0:
            self._target += want
            self._ensure_target()

    async def _autoscale_loop(self) -> None:
        while True:
            await asyncio.sleep(self.autoscale_interval)
            self._autoscale_tick()

    def _autoscale_tick(self) -> None:
        """Shrink one child at a time once the pool has had spare children for ``keepalive``."""
        now = self._get_loop().time()
        self._mark_busy()
        if self._target > self._min and now - self._last_full >= self.keepalive:
            self._shrink(1)

