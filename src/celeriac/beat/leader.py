"""Leadership among beat processes: one lease in the shared store.

Every beat runs a :class:`Leadership` loop. Every ``lease / 3`` seconds it
asks the store to take or renew the lease. The leader renews it; a standby
takes it once it lapses, so a dead leader is replaced within ``lease + lease /
3`` seconds. The leader counts its lease from the moment it *sent* the request
(before the store started the lease's clock), so it stops believing it leads
before the store lets anyone else in. The store also checks the lease on
every claim, so a leader that has lost the lease cannot send.

This loop uses the real monotonic clock, never the scheduler's injectable one.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable

from celeriac.beat._store_base import BeatStore
from celeriac.errors import OperationalError

__all__ = ["Leadership", "new_holder_id"]

logger = logging.getLogger("celeriac.beat")


def new_holder_id() -> str:
    """A token unique to this beat process: ``host:pid:random``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


class Leadership:
    """Keeps (or waits for) the beat leader lease in ``store``."""

    def __init__(
        self,
        store: BeatStore,
        lease_seconds: float,
        holder: str | None = None,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        if lease_seconds <= 0:
            raise ValueError("lease_seconds must be positive")
        self.store = store
        self.lease_seconds = float(lease_seconds)
        self.holder = holder or new_holder_id()
        self._valid_until = 0.0
        self._was_leader = False
        #: Called whenever leadership is gained or lost (the scheduler wakes up).
        self.on_change = on_change

    @property
    def is_leader(self) -> bool:
        """True while this process holds an unexpired lease (by its own conservative count)."""
        return time.monotonic() < self._valid_until

    @property
    def interval(self) -> float:
        """Seconds between two attempts to take or renew the lease."""
        return self.lease_seconds / 3

    async def attempt(self) -> bool:
        """Take or renew the lease once; returns whether this process leads now."""
        asked_at = time.monotonic()
        try:
            ok = await asyncio.to_thread(self.store.acquire, self.holder, self.lease_seconds)
        except OperationalError as exc:
            logger.warning("beat: cannot reach the beat store to renew the lease: %s", exc)
            ok = False
            # the lease we had, if any, still runs out on its own
            leading = self.is_leader
        else:
            self._valid_until = asked_at + self.lease_seconds if ok else 0.0
            leading = ok
        if leading != self._was_leader:
            self._was_leader = leading
            if leading:
                logger.info(
                    "beat: this process is now the leader (lease %.1f s, holder %s)",
                    self.lease_seconds,
                    self.holder,
                )
            else:
                logger.warning("beat: leadership lost; standing by")
            if self.on_change is not None:
                self.on_change()
        return leading

    async def run(self) -> None:
        """Renew the lease (or keep trying to take it) every ``interval`` until cancelled.

        Call :meth:`attempt` once first: this loop starts with a sleep.
        """
        standby_logged = False
        while True:
            if self.is_leader:
                standby_logged = False
            elif not standby_logged:
                logger.info("beat: standing by: another beat holds the leader lease")
                standby_logged = True
            await asyncio.sleep(self.interval)
            await self.attempt()

    async def release(self) -> None:
        """Give the lease up (on a clean stop) so a standby takes over at once."""
        self._valid_until = 0.0
        try:
            await asyncio.to_thread(self.store.release, self.holder)
        except OperationalError as exc:
            logger.warning("beat: could not release the leader lease: %s", exc)
