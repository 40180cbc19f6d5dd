"""The scheduler driven by a fixed clock: exact send instants, catch-up after a restart.

The seeds' beat examples run here in simulated time: seed 003's three entries
(daily crontab at 7:30, weekly on Sunday midnight, hourly 3600.0) and seed
002's Monday-morning crontab, with seed 002's ``CELERY_TIMEZONE =
'Asia/Shanghai'``.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from celeriac import Celery
from celeriac.beat.entries import Entry
from celeriac.beat.scheduler import Scheduler, run_id
from celeriac.beat.stores import BeatStore, FileStore, MemoryStore
from celeriac.protocol.message import parse_task_envelope
from celeriac.schedules import crontab
from celeriac.transports.memory import MemoryTransport

from .conftest import FakeClock

SHANGHAI = timedelta(hours=8)


class Recording(Scheduler):
    """A scheduler that also notes (entry, due, clock time) of every send."""

    def __init__(self, app: Any, store: BeatStore, clock: FakeClock, **kw: Any) -> None:
        super().__init__(app, store, now=clock.now, sleep=clock.sleep, **kw)
        self.clock = clock
        self.log: list[tuple[str, datetime, datetime]] = []

    async def send(self, entry: Entry, due: datetime) -> None:
        self.log.append((entry.name, due, self.clock.now()))
        await super().send(entry, due)

    def times(self, name: str) -> list[datetime]:
        return [at for entry, _, at in self.log if entry == name]


async def run_until(sched: Scheduler, clock: FakeClock, end: datetime) -> None:
    clock.on_tick = lambda t: sched.stop() if t >= end else None
    await asyncio.wait_for(sched.run(), 60)


def make_app(**conf: Any) -> Celery:
    app = Celery("beatclock", broker=f"memory://beat-{uuid.uuid4().hex}", set_as_current=False)
    app.conf.update(conf)
    return app


async def queued(app: Celery) -> list[Any]:
    transport = MemoryTransport(app.conf.settings.effective_broker_url())
    await transport.connect()
    out = []
    while True:
        batch = await transport.fetch(["celery"], 100, 0.0)
        if not batch:
            break
        out += [parse_task_envelope(d.envelope, ("json",)) for d in batch]
        await transport.ack(batch)
    await transport.close()
    return out


async def test_seed_003_schedule_in_asia_shanghai_sends_at_exact_instants() -> None:
    app = make_app(
        timezone="Asia/Shanghai",
        beat_schedule={
            "add-every-morning": {
                "task": "tasks.add",
                "schedule": crontab(hour=7, minute=30),
                "args": (16, 16),
            },
            "clean-db-weekly": {
                "task": "tasks.clean_database",
                "schedule": crontab(0, 0, day_of_week="sunday"),
            },
            "send-report-every-hour": {"task": "tasks.send_report", "schedule": 3600.0},
        },
    )
    # Monday 2024-01-01 08:00 in Shanghai
    start = datetime(2024, 1, 1, 0, 0, tzinfo=UTC)
    clock = FakeClock(start)
    sched = Recording(app, MemoryStore(), clock, max_interval=86400, refresh_interval=86400)
    await run_until(sched, clock, start + timedelta(days=8))
    local_days = [datetime(2024, 1, d, 7, 30, tzinfo=UTC) - SHANGHAI for d in range(2, 10)]
    assert sched.times("add-every-morning") == local_days
    assert sched.times("clean-db-weekly") == [datetime(2024, 1, 7, tzinfo=UTC) - SHANGHAI]
    assert sched.times("send-report-every-hour") == [
        start + timedelta(hours=h) for h in range(8 * 24)
    ]
    messages = await queued(app)
    assert len(messages) == len(sched.log)
    mornings = [m for m in messages if m.task == "tasks.add"]
    assert [m.args for m in mornings] == [(16, 16)] * 8
    assert {m.id for m in messages} == {
        run_id(sched.namespace, name, due) for name, due, _ in sched.log
    }


async def test_seed_002_monday_morning_crontab_through_old_setting_names() -> None:
    app = make_app()
    app.conf.update(
        {
            "CELERY_TIMEZONE": "Asia/Shanghai",
            "CELERYBEAT_SCHEDULE": {
                "add-every-monday-morning": {
                    "task": "tasks.add",
                    "schedule": crontab(hour=7, minute=30, day_of_week=1),
                    "args": (16, 16),
                }
            },
        }
    )
    start = datetime(2024, 1, 1, 0, 0, tzinfo=UTC)  # Monday 08:00 Shanghai: just missed
    clock = FakeClock(start)
    sched = Recording(app, MemoryStore(), clock, max_interval=86400, refresh_interval=86400)
    await run_until(sched, clock, start + timedelta(days=22))
    assert sched.times("add-every-monday-morning") == [
        datetime(2024, 1, d, 7, 30, tzinfo=UTC) - SHANGHAI for d in (8, 15, 22)
    ]


async def test_daily_crontab_across_european_dst_runs_once_each_day() -> None:
    app = make_app(
        timezone="Europe/Berlin",
        beat_schedule={
            "nightly": {"task": "t", "schedule": crontab(minute=30, hour=2)},
        },
    )
    start = datetime(2024, 3, 29, tzinfo=UTC)
    clock = FakeClock(start)
    sched = Recording(app, MemoryStore(), clock, max_interval=3600, refresh_interval=3600)
    await run_until(sched, clock, start + timedelta(days=4))
    # 02:30 CET on the 29th and 30th; 02:30 does not exist on the 31st: 03:00 CEST; then CEST
    assert sched.times("nightly") == [
        datetime(2024, 3, 29, 1, 30, tzinfo=UTC),
        datetime(2024, 3, 30, 1, 30, tzinfo=UTC),
        datetime(2024, 3, 31, 1, 0, tzinfo=UTC),
        datetime(2024, 4, 1, 0, 30, tzinfo=UTC),
    ]


def _interval_app() -> Celery:
    return make_app(beat_schedule={"tick": {"task": "t", "schedule": 10.0}})


async def _restart_case(tmp_path: Path, policy: str) -> tuple[Recording, Recording, datetime]:
    t0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    path = str(tmp_path / "beat-state.json")
    clock = FakeClock(t0)
    first = Recording(_interval_app(), FileStore(path), clock)
    await run_until(first, clock, t0 + timedelta(seconds=25))
    assert first.times("tick") == [t0, t0 + timedelta(seconds=10), t0 + timedelta(seconds=20)]
    # beat is down from t0+25 to t0+65: t0+30, 40, 50 and 60 fall due meanwhile
    clock = FakeClock(t0 + timedelta(seconds=65))
    second = Recording(_interval_app(), FileStore(path), clock, catch_up=policy)
    await run_until(second, clock, t0 + timedelta(seconds=95))
    return first, second, t0


async def test_restart_runs_a_missed_run_exactly_once(tmp_path: Path) -> None:
    _, second, t0 = await _restart_case(tmp_path, "once")
    assert second.log[0] == ("tick", t0 + timedelta(seconds=60), t0 + timedelta(seconds=65))
    assert second.times("tick") == [t0 + timedelta(seconds=s) for s in (65, 70, 80, 90)]


async def test_restart_catch_up_all_sends_every_missed_run(tmp_path: Path) -> None:
    _, second, t0 = await _restart_case(tmp_path, "all")
    assert [due for _, due, _ in second.log] == [
        t0 + timedelta(seconds=s) for s in (30, 40, 50, 60, 70, 80, 90)
    ]
    assert second.times("tick")[:4] == [t0 + timedelta(seconds=65)] * 4


async def test_restart_catch_up_skip_drops_missed_runs(tmp_path: Path) -> None:
    _, second, t0 = await _restart_case(tmp_path, "skip")
    assert second.times("tick") == [t0 + timedelta(seconds=s) for s in (70, 80, 90)]


async def test_restart_does_not_refire_what_already_ran(tmp_path: Path) -> None:
    t0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    path = str(tmp_path / "beat-state.json")
    clock = FakeClock(t0)
    first = Recording(_interval_app(), FileStore(path), clock)
    await run_until(first, clock, t0 + timedelta(seconds=5))
    clock = FakeClock(t0 + timedelta(seconds=6))
    second = Recording(_interval_app(), FileStore(path), clock)
    await run_until(second, clock, t0 + timedelta(seconds=15))
    assert first.times("tick") == [t0]
    assert second.times("tick") == [t0 + timedelta(seconds=10)]


async def test_add_periodic_task_in_on_after_configure_is_scheduled() -> None:
    app = make_app()

    @app.task(name="tasks.test")
    def test(arg: str) -> str:
        return arg

    @app.on_after_configure.connect
    def setup_periodic_tasks(sender: Any, **kwargs: Any) -> None:
        sender.add_periodic_task(10.0, test.s("hello"), name="add every 10")
        sender.add_periodic_task(crontab(minute=0), test.s("hourly"), expires=10)

    start = datetime(2024, 1, 1, 0, 0, 1, tzinfo=UTC)
    clock = FakeClock(start)
    sched = Recording(app, MemoryStore(), clock)
    await run_until(sched, clock, start + timedelta(seconds=3600))
    assert sched.times("add every 10") == [start + timedelta(seconds=10 * i) for i in range(360)]
    hourly = [name for name in sched.entries if name != "add every 10"]
    assert len(hourly) == 1
    assert sched.times(hourly[0]) == [datetime(2024, 1, 1, 1, 0, tzinfo=UTC)]
    assert sched.entries[hourly[0]].options == {"expires": 10}
    messages = await queued(app)
    assert sorted({m.args for m in messages}) == [("hello",), ("hourly",)]


async def test_two_schedulers_on_one_store_send_each_run_once() -> None:
    app = _interval_app()
    store = MemoryStore()
    t0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    clocks = [FakeClock(t0), FakeClock(t0)]
    scheds = [Recording(app, store, clock) for clock in clocks]
    await asyncio.gather(
        *(run_until(s, c, t0 + timedelta(seconds=55)) for s, c in zip(scheds, clocks, strict=True))
    )
    sent = [due for s in scheds for _, due, _ in s.log]
    assert sorted(sent) == [t0 + timedelta(seconds=10 * i) for i in range(6)]
    assert [len(s.log) for s in scheds].count(0) == 1


@pytest.mark.parametrize("policy", ["sometimes"])
def test_unknown_catch_up_policy_is_a_configuration_error(policy: str) -> None:
    from celeriac.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="catch-up policy 'sometimes'"):
        Scheduler(_interval_app(), MemoryStore(), catch_up=policy)
