"""Helpers shared by the pools that run tasks in the worker process itself."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from typing import TYPE_CHECKING, Any

from celeriac.app.trace import Outcome, arun_task
from celeriac.protocol import states
from celeriac.worker.pools.base import Job, Pool, failed_outcome

if TYPE_CHECKING:
    from celeriac.app.task import Task

__all__ = ["Slots", "run_coroutine_job"]


class Slots:
    """A FIFO counting semaphore whose uncontended take needs no coroutine.

    The asyncio pool takes a slot per coroutine job: with ``asyncio.Semaphore``
    that is an ``async with`` (three coroutines) even when a slot is free.
    Here :meth:`try_take` takes a free slot synchronously; only a job that
    must wait awaits :meth:`take`. A released slot goes straight to the oldest
    waiter (no barging), and a waiter cancelled after it was handed a slot
    passes it on.
    """

    __slots__ = ("_waiters", "free")

    def __init__(self, count: int) -> None:
        self.free = count
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    def try_take(self) -> bool:
        """Take a slot if one is free and nobody waits; whether it was taken."""
        if self.free > 0 and not self._waiters:
            self.free -= 1
            return True
        return False

    async def take(self) -> None:
        """Take a slot, waiting in line for one if need be."""
        if self.try_take():
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.give()  # handed a slot as we were cancelled: the next one gets it
            else:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
            raise

    def give(self) -> None:
        """Return a slot: to the oldest waiter, if any."""
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.free += 1


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
