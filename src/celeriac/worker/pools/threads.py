"""The threads pool: sync tasks in a thread pool, async tasks on the loop.

Soft time limit: :class:`SoftTimeLimitExceeded` is raised asynchronously in
the thread running the task (``PyThreadState_SetAsyncExc``), so it arrives at
the next Python bytecode (not inside a blocking C call). Hard time limit: a
thread cannot be killed, so the job is reported as ``TimeLimitExceeded`` at
the limit and its thread is left to finish on its own; its slot is replaced.
"""

from __future__ import annotations

import asyncio
import ctypes
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

from celeriac.app.trace import Outcome, run_task
from celeriac.errors import NotRegistered, SoftTimeLimitExceeded
from celeriac.worker.pools._inprocess import run_coroutine_job
from celeriac.worker.pools.base import Job, Pool, failed_outcome

__all__ = ["ThreadsPool"]


def _raise_in_thread(thread_id: int, exc_type: type[BaseException]) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(exc_type)
    )


class ThreadsPool(Pool):
    """A fixed-size thread pool (``-P threads -c N``)."""

    name: ClassVar[str] = "threads"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._executor: ThreadPoolExecutor | None = None
        self._semaphore: asyncio.Semaphore | None = None

    async def start(self) -> None:
        self._executor = ThreadPoolExecutor(self.limit, thread_name_prefix="celeriac-task")
        self._semaphore = asyncio.Semaphore(self.limit)

    def _call(self, task: Any, job: Job, box: dict[str, Any]) -> Outcome:
        box["thread"] = threading.get_ident()
        try:
            return run_task(task, job.ctx)
        finally:
            box["done"] = True

    async def run(self, job: Job) -> Outcome:
        try:
            task = self.app.tasks[job.task_name]
        except NotRegistered as exc:
            return failed_outcome(exc)
        if task.is_async:
            return await run_coroutine_job(task, job)
        assert self._executor is not None and self._semaphore is not None
        loop = asyncio.get_running_loop()
        box: dict[str, Any] = {}
        started = time.perf_counter()
        async with self._semaphore:
            future = loop.run_in_executor(self._executor, self._call, task, job, box)
            soft, hard = job.soft_time_limit, job.time_limit
            if not soft and not hard:
                return await future
            if soft:
                try:
                    return await asyncio.wait_for(asyncio.shield(future), soft)
                except TimeoutError:
                    if "thread" in box and not box.get("done"):
                        _raise_in_thread(box["thread"], SoftTimeLimitExceeded)
            remaining = None if not hard else max(0.0, hard - (time.perf_counter() - started))
            try:
                return await asyncio.wait_for(asyncio.shield(future), remaining)
            except TimeoutError:
                return self.hard_limit_outcome(hard or 0.0, started)

    async def stop(self, *, cold: bool = False) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=not cold, cancel_futures=cold)
            self._executor = None
