"""Helpers shared by the pools that run tasks in the worker process itself."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from celeriac.app.trace import Outcome, arun_task
from celeriac.protocol import states
from celeriac.worker.pools.base import Job, Pool, failed_outcome

if TYPE_CHECKING:
    from celeriac.app.task import Task

__all__ = ["run_coroutine_job"]


async def run_coroutine_job(task: Task[Any, Any], job: Job) -> Outcome:
    """Run an ``async def`` task on this loop, cancelled at its soft limit.

    The coroutine sees ``asyncio.CancelledError`` at the soft limit (so it can
    clean up in ``finally``); the outcome is ``SoftTimeLimitExceeded``. The hard
    limit, if smaller or alone, applies the same way with ``TimeLimitExceeded``.
    """
    limit = job.soft_time_limit or job.time_limit
    started = time.perf_counter()
    if not limit:
        return await arun_task(task, job.ctx)
    try:
        async with asyncio.timeout(limit):
            return await arun_task(task, job.ctx)
    except TimeoutError:
        if job.soft_time_limit:
            return Pool.soft_limit_outcome(job.soft_time_limit, started)
        return Pool.hard_limit_outcome(limit, started)


def unknown_task_outcome(name: str) -> Outcome:
    """The outcome for a job whose task is not registered in this process."""
    from celeriac.errors import NotRegistered

    out = failed_outcome(NotRegistered(f"task {name!r} is not registered"))
    out.status = states.FAILURE
    return out
