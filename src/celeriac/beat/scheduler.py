"""The beat loop: send each periodic task when it falls due, exactly once.

:class:`Scheduler` runs on asyncio. Each *tick* it reads the run marks from
the store, finds the entries that are due, claims each run in the store
(:meth:`~celeriac.beat.stores.BeatStore.claim`: once per entry and due
instant, leader only), sends the task with ``app.asend_task`` and logs
``Scheduler: Sending due task <entry> (<task>)``. Then it sleeps until the next
due instant, at most ``beat_max_loop_interval`` and at most the refresh
interval of dynamic entries. Only the process holding the leader lease
(:mod:`celeriac.beat.leader`) sends; the others stand by.

Due instants are a grid: the mark of a run is its *due* instant, not the time
it was sent, so an interval entry fires at ``t0, t0 + every, ...`` in every
process and a claim names the same run everywhere. Runs missed while no beat
led (down, or a takeover gap) follow the catch-up policy:

* ``once`` (default, as Celery): one run for all the missed ones, keyed by the
  latest missed due instant;
* ``all``: every missed due instant is sent, oldest first;
* ``skip``: missed runs are dropped; the schedule resumes with the next one.

The clock is injectable (``now`` and ``sleep``), so tests drive a scheduler
through days of schedule in milliseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

from celeriac.beat.entries import Entry, app_timezone, entries_from_config, to_us
from celeriac.beat.leader import Leadership
from celeriac.beat.schedules import BaseSchedule, schedule, utcnow
from celeriac.beat.stores import BeatStore, Claim, open_store, store_namespace
from celeriac.errors import CeleriacError, ConfigurationError, OperationalError

__all__ = ["CATCH_UP_POLICIES", "Scheduler", "latest_due", "run_id"]

logger = logging.getLogger("celeriac.beat")

#: What to do with runs that fell due while no beat was leading.
CATCH_UP_POLICIES = ("once", "all", "skip")

# Walking a cron schedule run by run to the latest missed one stops here; past
# it the latest run is taken to be "now" (beat down for weeks on a per-minute entry).
_WALK_LIMIT = 10_000
# How long to wait before trying again when the store cannot be reached.
_STORE_RETRY = 2.0
_RUN_IDS = uuid.UUID("5e1d0c8a-8f39-4a51-9a43-0b6c0f1e2b7d")


def latest_due(sched: BaseSchedule, first: datetime, now: datetime) -> datetime:
    """The last due instant at or before ``now``, walking from the due instant ``first``."""
    if isinstance(sched, schedule) and not sched.relative:
        missed = (now - first) // sched.run_every
        return first + sched.run_every * missed
    current = first
    for _ in range(_WALK_LIMIT):
        following = sched.next_run_after(current, now)
        if following > now:
            return current
        current = following
    return now


def run_id(namespace: str, entry: str, due: datetime) -> str:
    """The task id of one run: the same in every beat process (a duplicate would show)."""
    return str(uuid.uuid5(_RUN_IDS, f"{namespace}|{entry}|{to_us(due)}"))


class Scheduler:
    """Sends an app's periodic tasks (``beat_schedule`` plus dynamic entries).

    ``app.finalize()`` is called first, so entries added with
    ``add_periodic_task`` in ``on_after_configure`` handlers are included.
    ``store`` defaults to :func:`~celeriac.beat.stores.open_store`;
    ``now``/``sleep`` replace the clock (tests).
    """

    def __init__(
        self,
        app: Any,
        store: BeatStore | None = None,
        *,
        max_interval: float | None = None,
        lease_seconds: float | None = None,
        catch_up: str = "once",
        refresh_interval: float | None = None,
        now: Callable[[], datetime] = utcnow,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        holder: str | None = None,
    ) -> None:
        if catch_up not in CATCH_UP_POLICIES:
            raise ConfigurationError(
                f"unknown catch-up policy {catch_up!r}: use one of {', '.join(CATCH_UP_POLICIES)}"
            )
        app.finalize()
        settings = app.conf.settings
        self.app = app
        self.tz = app_timezone(settings)
        self.static: dict[str, Entry] = entries_from_config(settings.beat_schedule, self.tz)
        self.entries: dict[str, Entry] = dict(self.static)
        self.store = store if store is not None else open_store(app)
        self.namespace = store_namespace(app.main)
        self.max_interval = float(max_interval or settings.beat_max_loop_interval)
        self.refresh_interval = float(refresh_interval or min(self.max_interval, 5.0))
        self.catch_up = catch_up
        self.leadership = Leadership(
            self.store,
            float(lease_seconds or settings.beat_lease_seconds),
            holder,
            on_change=self._wake_up,
        )
        self._now = now
        self._sleep = sleep
        self._wake = asyncio.Event()
        self._stopping = False
        self._leading_since: datetime | None = None
        self._version: int | None = None
        self._refreshed_at = float("-inf")
        #: Runs sent by this process (for logs and tests).
        self.sent = 0

    # -- lifecycle ---------------------------------------------------------------
    async def run(self) -> None:
        """Tick until :meth:`stop` (or cancellation); releases the lease on the way out."""
        logger.info("beat: Starting...")
        try:
            await self.leadership.attempt()
            async with asyncio.TaskGroup() as group:
                keeper = group.create_task(self.leadership.run())
                while not self._stopping:
                    delay = await self.tick()
                    if self._stopping:
                        break
                    await self._wait(delay)
                keeper.cancel()
        finally:
            await self.leadership.release()
            await asyncio.to_thread(self.store.close)
            logger.info("beat: stopped (%d runs sent by this process)", self.sent)

    def stop(self) -> None:
        """Ask :meth:`run` to return after the current tick."""
        self._stopping = True
        self._wake.set()

    def _wake_up(self) -> None:
        self._wake.set()

    async def _wait(self, seconds: float) -> None:
        if self._sleep is not None:
            await self._sleep(seconds)
            return
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    # -- one pass -----------------------------------------------------------------
    async def tick(self) -> float:
        """Send what is due now; return the seconds until the next check."""
        now = self._now()
        try:
            await self.refresh()
            if not self.leadership.is_leader:
                self._leading_since = None
                return min(self.leadership.interval, self.refresh_interval)
            if self._leading_since is None:
                self._leading_since = now
            marks = await asyncio.to_thread(self.store.marks)
            wait = min(self.max_interval, self.refresh_interval)
            for entry in list(self.entries.values()):
                last = marks.get(entry.name)
                due = entry.schedule.next_run_after(last, now)
                if due <= now:
                    last = await self._run_due(entry, last, due, now)
                    if last is None:
                        return self.leadership.interval
                    due = entry.schedule.next_run_after(last, now)
                wait = min(wait, (due - now).total_seconds())
        except OperationalError as exc:
            logger.error("beat: beat store unavailable (%s): retrying in %.0f s", exc, _STORE_RETRY)
            return _STORE_RETRY
        return max(wait, 0.0)

    async def _run_due(
        self, entry: Entry, last: datetime | None, first: datetime, now: datetime
    ) -> datetime | None:
        """Claim and send one due run; the new mark, or None if leadership was lost."""
        if last is None or self.catch_up == "all":
            due, send = first, True
        else:
            due = latest_due(entry.schedule, first, now)
            since = self._leading_since or now
            send = self.catch_up == "once" or due >= since
        claim = await asyncio.to_thread(self.store.claim, entry.name, due, self.leadership.holder)
        if claim is Claim.NOT_LEADER:
            logger.warning("beat: lease lost before sending %s; standing by", entry.name)
            return None
        if claim is Claim.CLAIMED:
            if send:
                await self.send(entry, due)
            else:
                logger.info(
                    "beat: skipping missed run of %s due %s (catch-up policy 'skip')",
                    entry.name,
                    due.isoformat(),
                )
        return due

    async def send(self, entry: Entry, due: datetime) -> None:
        """Publish one run of ``entry`` (its task id is :func:`run_id`)."""
        options: dict[str, Any] = dict(entry.options)
        options.setdefault("task_id", run_id(self.namespace, entry.name, due))
        logger.info("Scheduler: Sending due task %s (%s)", entry.name, entry.task)
        logger.debug(
            "beat: run of %s due %s has task id %s", entry.name, due.isoformat(), options["task_id"]
        )
        try:
            await self.app.asend_task(entry.task, entry.args, entry.kwargs, **options)
        except CeleriacError as exc:
            logger.error("Message Error: Couldn't apply scheduled task %s: %s", entry.name, exc)
            return
        self.sent += 1

    async def refresh(self, *, force: bool = False) -> None:
        """Reload dynamic entries if they changed (checked at most every refresh interval)."""
        moment = time.monotonic()
        if not force and moment - self._refreshed_at < self.refresh_interval:
            return
        self._refreshed_at = moment
        version = await asyncio.to_thread(self.store.version)
        if version == self._version and not force:
            return
        stored = await asyncio.to_thread(self.store.entries)
        self.entries = {**self.static, **self._parse(stored)}
        if self._version is not None or stored:
            logger.info("beat: %d dynamic entries loaded", len(stored))
        self._version = version

    def _parse(self, stored: Mapping[str, Mapping[str, Any]]) -> dict[str, Entry]:
        parsed: dict[str, Entry] = {}
        for name, data in stored.items():
            try:
                parsed[name] = Entry.from_dict(name, data, self.tz)
            except ConfigurationError as exc:
                logger.error("beat: ignoring a stored entry: %s", exc)
        return parsed
