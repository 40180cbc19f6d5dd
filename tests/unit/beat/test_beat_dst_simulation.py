"""A simulated beat ticking every 30 s through each DST change: no double run, no skipped run.

Each scenario runs the scheduler loop (ask ``is_due``, run, record ``now`` as
the last run) over three local days around a transition and compares the
firings with hand-written expectations.
"""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from celeriac.schedules import crontab

TICK = timedelta(seconds=30)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def simulate(schedule: crontab, start: str, end: str) -> list[datetime]:
    """Run a 30-second beat loop from ``start`` to ``end``; return the firing instants."""
    now, stop = at(start), at(end)
    last = now  # as if the entry had just run when beat started
    fired: list[datetime] = []
    while now < stop:
        due, wait = schedule.is_due(last, now)
        if due:
            fired.append(now)
            last = now
        assert wait > 0
        now += TICK
    return fired


def per_local_day(fired: list[datetime], tz: ZoneInfo) -> Counter[date]:
    return Counter(f.astimezone(tz).date() for f in fired)


def assert_sane(schedule: crontab, fired: list[datetime]) -> None:
    """Never two runs at one instant; a schedule naming its hours never repeats a wall time."""
    assert all(b - a >= timedelta(minutes=1) for a, b in itertools.pairwise(fired))
    if len(schedule.hour) < 24:
        walls = [f.astimezone(schedule.tz).replace(tzinfo=None) for f in fired]
        assert len(walls) == len(set(walls))


BERLIN_SPRING = ("2024-03-30T00:00:00+01:00", "2024-04-02T00:00:00+02:00")
BERLIN_FALL = ("2024-10-26T00:00:00+02:00", "2024-10-29T00:00:00+01:00")
NY_SPRING = ("2024-03-09T00:00:00-05:00", "2024-03-12T00:00:00-04:00")
NY_FALL = ("2024-11-02T00:00:00-04:00", "2024-11-05T00:00:00-05:00")

EXACT: list[tuple[str, tuple[str, str], dict[str, Any], list[str]]] = [
    (
        "Europe/Berlin",
        BERLIN_SPRING,
        {"minute": 30, "hour": 2},
        ["2024-03-30T02:30:00+01:00", "2024-03-31T03:00:00+02:00", "2024-04-01T02:30:00+02:00"],
    ),
    (
        "Europe/Berlin",
        BERLIN_SPRING,
        {"minute": 0, "hour": 2},
        ["2024-03-30T02:00:00+01:00", "2024-03-31T03:00:00+02:00", "2024-04-01T02:00:00+02:00"],
    ),
    (
        "Europe/Berlin",
        BERLIN_SPRING,
        {"minute": "0,30", "hour": "2,3", "day_of_month": 31},
        ["2024-03-31T03:00:00+02:00", "2024-03-31T03:30:00+02:00"],
    ),
    (
        "Europe/Berlin",
        BERLIN_FALL,
        {"minute": 30, "hour": 2},
        ["2024-10-26T02:30:00+02:00", "2024-10-27T02:30:00+02:00", "2024-10-28T02:30:00+01:00"],
    ),
    (
        "Europe/Berlin",
        BERLIN_FALL,
        {"minute": "*/20", "hour": 2, "day_of_month": 27},
        ["2024-10-27T02:00:00+02:00", "2024-10-27T02:20:00+02:00", "2024-10-27T02:40:00+02:00"],
    ),
    (
        "America/New_York",
        NY_SPRING,
        {"minute": 30, "hour": 2},
        ["2024-03-09T02:30:00-05:00", "2024-03-10T03:00:00-04:00", "2024-03-11T02:30:00-04:00"],
    ),
    (
        "America/New_York",
        NY_FALL,
        {"minute": 30, "hour": 1},
        ["2024-11-02T01:30:00-04:00", "2024-11-03T01:30:00-04:00", "2024-11-04T01:30:00-05:00"],
    ),
    (
        "America/New_York",
        NY_FALL,
        {"minute": 0, "hour": "0-2", "day_of_month": 3},
        ["2024-11-03T00:00:00-04:00", "2024-11-03T01:00:00-04:00", "2024-11-03T02:00:00-05:00"],
    ),
]


@pytest.mark.parametrize(("zone", "window", "fields", "expected"), EXACT)
def test_exact_firings_through_transition(
    zone: str, window: tuple[str, str], fields: dict[str, Any], expected: list[str]
) -> None:
    schedule = crontab(**fields).with_tz(zone)
    fired = simulate(schedule, *window)
    assert fired == [at(e) for e in expected]
    assert_sane(schedule, fired)


# Schedules that run every hour follow real time: a 23-hour day has 23 hourly
# runs, a 25-hour day 25, always one real hour apart.
COUNTS: list[tuple[str, tuple[str, str], dict[str, Any], date, int, timedelta]] = [
    ("Europe/Berlin", BERLIN_SPRING, {"minute": 0}, date(2024, 3, 31), 23, timedelta(hours=1)),
    ("Europe/Berlin", BERLIN_FALL, {"minute": 0}, date(2024, 10, 27), 25, timedelta(hours=1)),
    ("Europe/Berlin", BERLIN_SPRING, {"minute": 30}, date(2024, 3, 31), 23, timedelta(hours=1)),
    ("Europe/Berlin", BERLIN_FALL, {"minute": 30}, date(2024, 10, 27), 25, timedelta(hours=1)),
    (
        "Europe/Berlin",
        BERLIN_SPRING,
        {"minute": "*/15"},
        date(2024, 3, 31),
        92,
        timedelta(minutes=15),
    ),
    (
        "Europe/Berlin",
        BERLIN_FALL,
        {"minute": "*/15"},
        date(2024, 10, 27),
        100,
        timedelta(minutes=15),
    ),
    ("America/New_York", NY_SPRING, {"minute": 0}, date(2024, 3, 10), 23, timedelta(hours=1)),
    ("America/New_York", NY_FALL, {"minute": 0}, date(2024, 11, 3), 25, timedelta(hours=1)),
    ("Asia/Shanghai", BERLIN_FALL, {"minute": 0}, date(2024, 10, 27), 24, timedelta(hours=1)),
]


@pytest.mark.parametrize(("zone", "window", "fields", "day", "count", "gap"), COUNTS)
def test_every_hour_schedules_follow_real_time(
    zone: str,
    window: tuple[str, str],
    fields: dict[str, Any],
    day: date,
    count: int,
    gap: timedelta,
) -> None:
    schedule = crontab(**fields).with_tz(zone)
    fired = simulate(schedule, *window)
    assert per_local_day(fired, schedule.tz)[day] == count
    assert all(b - a == gap for a, b in itertools.pairwise(fired))
    assert_sane(schedule, fired)


DAILY: list[tuple[str, tuple[str, str]]] = [
    ("Europe/Berlin", BERLIN_SPRING),
    ("Europe/Berlin", BERLIN_FALL),
    ("America/New_York", NY_SPRING),
    ("America/New_York", NY_FALL),
]


@pytest.mark.parametrize(("zone", "window"), DAILY)
@pytest.mark.parametrize("hour", [0, 1, 2, 3, 23])
def test_daily_schedules_run_once_every_day(zone: str, window: tuple[str, str], hour: int) -> None:
    schedule = crontab(minute=30, hour=hour).with_tz(zone)
    fired = simulate(schedule, *window)
    days = per_local_day(fired, schedule.tz)
    first = at(window[0]).date()
    assert days == Counter({first + timedelta(days=n): 1 for n in range(3)})
    assert_sane(schedule, fired)
