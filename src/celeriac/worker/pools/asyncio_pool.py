"""The asyncio pool: ``async def`` tasks run on the worker's own event loop.

Up to ``concurrency`` coroutines run at once (default 100 for this pool); a
coroutine is cancelled at its soft limit (it sees ``CancelledError`` and can
clean up) and reported as ``SoftTimeLimitExceeded``. Sync tasks given to this
pool run in a small thread pool so they never block the loop.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from celeriac.app.trace import Outcome, arun_task
from celeriac.errors import NotRegistered
from celeriac.worker.pools._inprocess import Slots, run_coroutine_job
from celeriac.worker.pools.base import Job, Pool, PoolOptions, failed_outcome
from celeriac.worker.pools.threads import ThreadsPool

__all__ = ["AsyncioPool"]


class AsyncioPool(Pool):
    """Coroutines on the loop; sync tasks delegated to threads."""

    name: ClassVar[str] = "asyncio"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._slots = Slots(self.limit)
        self._threads = ThreadsPool(self.app, PoolOptions(concurrency=max(1, min(self.limit, 8))))
        self._running: dict[str, asyncio.Task[Any]] = {}
        self._terminated: set[str] = set()

    async def start(self) -> None:
        await self._threads.start()

    async def run(self, job: Job) -> Outcome:
        try:
            task = self.app.tasks[job.task_name]
        except NotRegistered as exc:
            return failed_outcome(exc)
        if not task.is_async:
            return await self._threads.run(job)
        slots = self._slots
        if not slots.try_take():
            await slots.take()
        # The coroutine runs in the caller's task (no second task per job: it
        # costs as much as the framework's whole per-task work); terminate()
        # cancels that task and the CancelledError is turned into an outcome here.
        current = asyncio.current_task()
        assert current is not None
        task_id = job.ctx.id or ""
        self._running[task_id] = current
        try:
            if job.soft_time_limit or job.time_limit:
                return await run_coroutine_job(task, job)
            return await arun_task(task, job.ctx)
        except asyncio.CancelledError:
            if task_id in self._terminated and current.uncancel() == 0:
                from celeriac.errors import TaskRevokedError

                return failed_outcome(TaskRevokedError("terminated"))
            raise
        finally:
            self._running.pop(task_id, None)
            self._terminated.discard(task_id)
            slots.give()

    async def terminate(self, task_id: str, signum: int) -> bool:
        runner = self._running.get(task_id)
        if runner is None:
            return False
        self._terminated.add(task_id)
        runner.cancel()
        return True

    async def stop(self, *, cold: bool = False) -> None:
        if cold:
            for task_id, runner in list(self._running.items()):
                self._terminated.add(task_id)
                runner.cancel()
        await self._threads.stop(cold=cold)
