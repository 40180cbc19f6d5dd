"""The asyncio pool: ``async def`` tasks run on the worker's own event loop.

Up to ``concurrency`` coroutines run at once (default 100 for this pool); a
coroutine is cancelled at its soft limit (it sees ``CancelledError`` and can
clean up) and reported as ``SoftTimeLimitExceeded``. Sync tasks given to this
pool run in a small thread pool so they never block the loop.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from celeriac.app.trace import Outcome
from celeriac.errors import NotRegistered
from celeriac.worker.pools._inprocess import run_coroutine_job
from celeriac.worker.pools.base import Job, Pool, PoolOptions, failed_outcome
from celeriac.worker.pools.threads import ThreadsPool

__all__ = ["AsyncioPool"]


class AsyncioPool(Pool):
    """Coroutines on the loop; sync tasks delegated to threads."""

    name: ClassVar[str] = "asyncio"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._semaphore: asyncio.Semaphore | None = None
        self._threads = ThreadsPool(self.app, PoolOptions(concurrency=max(1, min(self.limit, 8))))
        self._running: dict[str, asyncio.Task[Outcome]] = {}

    async def start(self) -> None:
        self._semaphore = asyncio.Semaphore(self.limit)
        await self._threads.start()

    async def run(self, job: Job) -> Outcome:
        try:
            task = self.app.tasks[job.task_name]
        except NotRegistered as exc:
            return failed_outcome(exc)
        if not task.is_async:
            return await self._threads.run(job)
        assert self._semaphore is not None
        async with self._semaphore:
            runner = asyncio.ensure_future(run_coroutine_job(task, job))
            task_id = job.ctx.id or ""
            self._running[task_id] = runner
            try:
                return await runner
            except asyncio.CancelledError:
                if runner.cancelled() and not _current_cancelling():
                    from celeriac.errors import TaskRevokedError

                    return failed_outcome(TaskRevokedError("terminated"))
                raise
            finally:
                self._running.pop(task_id, None)

    async def terminate(self, task_id: str, signum: int) -> bool:
        runner = self._running.get(task_id)
        if runner is None:
            return False
        runner.cancel()
        return True

    async def stop(self, *, cold: bool = False) -> None:
        if cold:
            for runner in list(self._running.values()):
                runner.cancel()
        await self._threads.stop(cold=cold)


def _current_cancelling() -> int:
    current = asyncio.current_task()
    return current.cancelling() if current is not None else 0
