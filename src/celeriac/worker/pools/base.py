"""The execution-pool interface and the :class:`Job` a pool runs.

The worker's dispatcher hands a pool one :class:`Job` at a time and awaits its
:class:`~celeriac.app.trace.Outcome`. A pool never raises for a task's own
failure: timeouts, a dead child process or a cancelled coroutine all come back
as outcomes (``TimeLimitExceeded``, ``WorkerLostError`` ...). The pool may queue
jobs internally; the worker bounds how many it submits (the prefetch window).
"""

from __future__ import annotations

import abc
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from celeriac.app.context import Context
from celeriac.app.trace import Outcome
from celeriac.errors import SoftTimeLimitExceeded, TimeLimitExceeded, WorkerLostError
from celeriac.protocol import states
from celeriac.protocol.exceptions import exception_to_wire

if TYPE_CHECKING:
    from celeriac.app.core import App

__all__ = ["Job", "Pool", "PoolOptions", "failed_outcome"]


@dataclass(slots=True)
class Job:
    """One task execution: the task name, its request context and its time limits.

    Everything here is plain data so it can be pickled to a prefork child.
    """

    task_name: str
    ctx: Context
    time_limit: float | None = None
    soft_time_limit: float | None = None


@dataclass(frozen=True, slots=True)
class PoolOptions:
    """Pool knobs from the worker's command line and settings."""

    concurrency: int = 1
    max_tasks_per_child: int | None = None
    max_memory_per_child: int | None = None  # KiB, as Celery
    autoscale: tuple[int, int] | None = None  # (max, min)
    per_child_queue: int = 2  # jobs in flight per prefork child (1 = strict fair dispatch)


def failed_outcome(exc: BaseException, runtime: float = 0.0) -> Outcome:
    """An outcome describing a failure the pool itself observed (timeout, lost child)."""
    return Outcome(
        states.FAILURE, exc=exc, exc_wire=exception_to_wire(exc),
        traceback="".join(traceback.format_exception(exc)), runtime=runtime,
    )


class Pool(abc.ABC):
    """Base class of execution pools (solo, threads, asyncio, prefork)."""

    name: ClassVar[str] = ""
    #: Whether :meth:`submit` is supported (a job's end reported by a callback).
    submits: ClassVar[bool] = False

    def __init__(self, app: App, options: PoolOptions) -> None:
        self.app = app
        self.options = options

    @property
    def limit(self) -> int:
        """How many jobs run at the same time."""
        return self.options.concurrency

    async def start(self) -> None:
        """Start threads/children; called once by the worker before consuming."""

    @abc.abstractmethod
    async def run(self, job: Job) -> Outcome:
        """Execute ``job`` and return how it ended (never raises for task errors)."""

    def submit(self, job: Job, on_done: Callable[[Outcome], None]) -> None:
        """Queue ``job`` and call ``on_done(outcome)`` on the loop when it ends.

        The same as awaiting :meth:`run`, without an asyncio task and a future
        per job; only for pools whose :attr:`submits` is true.
        """
        raise TypeError(f"the {self.name} pool does not take submitted jobs")

    def inline(self, task: Any) -> bool:
        """Whether jobs of ``task`` run synchronously on the worker's loop.

        Such jobs go through :meth:`run_inline`: the consumer runs a whole
        fetched batch of them without an asyncio task per message.
        """
        return False

    def run_inline(self, task: Any, job: Job) -> Outcome:
        """Run ``job`` of ``task`` now, on this thread (only when :meth:`inline` says so)."""
        raise TypeError(f"the {self.name} pool runs no job inline")

    async def stop(self, *, cold: bool = False) -> None:
        """Stop: warm waits for running jobs, cold abandons/kills them."""

    async def terminate(self, task_id: str, signum: int) -> bool:
        """Stop the running job ``task_id`` (revoke with terminate); whether it was found."""
        return False

    async def grow(self, n: int = 1) -> None:
        """Add ``n`` execution slots (``pool_grow``)."""

    async def shrink(self, n: int = 1) -> None:
        """Remove ``n`` execution slots (``pool_shrink``)."""

    def worker_pids(self) -> dict[str, int]:
        """Task id -> pid of the child process running it (pools with children)."""
        return {}

    def info(self) -> dict[str, Any]:
        """Pool facts for ``inspect stats`` and the banner."""
        return {"implementation": self.name, "max-concurrency": self.limit}

    # -- helpers shared by in-process pools --------------------------------------
    @staticmethod
    def soft_limit_outcome(limit: float, started: float) -> Outcome:
        """The outcome of a coroutine cancelled at its soft limit."""
        return failed_outcome(
            SoftTimeLimitExceeded(f"soft time limit ({limit}s) exceeded"),
            time.perf_counter() - started,
        )

    @staticmethod
    def hard_limit_outcome(limit: float, started: float) -> Outcome:
        """The outcome of a job stopped at its hard limit."""
        return failed_outcome(
            TimeLimitExceeded(f"TimeLimitExceeded({limit})"), time.perf_counter() - started
        )

    @staticmethod
    def lost_outcome(reason: str, started: float) -> Outcome:
        """The outcome of a job whose executing process died."""
        return failed_outcome(WorkerLostError(reason), time.perf_counter() - started)
