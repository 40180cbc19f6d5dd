"""The solo pool: one task at a time, run inline on the worker's event loop.

The lowest overhead per task (no thread, no pipe). A sync task blocks the loop
while it runs, as Celery's solo pool blocks its consumer; leases are renewed
between tasks, so use solo for short tasks. The soft time limit works for sync
tasks through ``SIGALRM`` (the loop runs in the main thread); there is no hard
limit (nothing can stop a function running on this thread).
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any, ClassVar

from celeriac.app.trace import Outcome, run_task
from celeriac.errors import NotRegistered, SoftTimeLimitExceeded
from celeriac.worker.pools._inprocess import run_coroutine_job
from celeriac.worker.pools.base import Job, Pool, failed_outcome

__all__ = ["SoloPool"]


def _raise_soft_limit(signum: int, frame: FrameType | None) -> None:
    raise SoftTimeLimitExceeded("soft time limit exceeded")


class SoloPool(Pool):
    """Runs each job inline; concurrency is always 1."""

    name: ClassVar[str] = "solo"

    @property
    def limit(self) -> int:
        return 1

    def inline(self, task: Any) -> bool:
        return not task.is_async

    async def run(self, job: Job) -> Outcome:
        try:
            task = self.app.tasks[job.task_name]
        except NotRegistered as exc:
            return failed_outcome(exc)
        if task.is_async:
            return await run_coroutine_job(task, job)
        return self.run_inline(task, job)

    def run_inline(self, task: Any, job: Job) -> Outcome:
        soft = job.soft_time_limit
        if soft and threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGALRM, _raise_soft_limit)
            signal.setitimer(signal.ITIMER_REAL, soft)
            try:
                return run_task(task, job.ctx)
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, previous)
        return run_task(task, job.ctx)
