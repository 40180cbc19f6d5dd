"""Fixtures of the beat tests: a fake clock, the real Redis server, a private database."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta

__all__ = ["FakeClock"]


class FakeClock:
    """``now``/``sleep`` for a Scheduler: sleeping moves time on at once.

    ``on_tick`` runs after each sleep (a test stops the scheduler from there).
    """

    def __init__(self, start: datetime) -> None:
        self.t = start
        self.on_tick: Callable[[datetime], None] | None = None

    def now(self) -> datetime:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.t += timedelta(seconds=seconds)
        if self.on_tick is not None:
            self.on_tick(self.t)
        await asyncio.sleep(0)
