"""Interval schedules, maybe_schedule, with_tz, and to_dict/from_dict round trips."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from celeriac import schedules as shim
from celeriac.beat.schedules import BaseSchedule, crontab, maybe_schedule, schedule, solar, utcnow
from celeriac.errors import ConfigurationError


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


T0 = at("2024-01-01T10:17:30+00:00")


def test_interval_first_run_is_now_then_every_interval() -> None:
    every = schedule(30)
    assert every.next_run_after(None, T0) == T0
    assert every.is_due(None, T0) == (True, 30.0)
    assert every.next_run_after(T0, T0) == T0 + timedelta(seconds=30)
    assert every.is_due(T0, T0 + timedelta(seconds=10)) == (False, 20.0)
    assert every.is_due(T0, T0 + timedelta(seconds=30)) == (True, 30.0)
    # after a long outage: due once, and the next one counts from now
    assert every.is_due(T0, T0 + timedelta(hours=5)) == (True, 30.0)
    assert every.remaining_estimate(T0, T0 + timedelta(seconds=12)) == timedelta(seconds=18)
    assert every.remaining_estimate(T0, T0 + timedelta(hours=1)) == timedelta(0)


@pytest.mark.parametrize(
    ("run_every", "seconds"),
    [(30, 30.0), (0.5, 0.5), (timedelta(minutes=5), 300.0), (timedelta(days=1), 86400.0)],
)
def test_interval_accepts_seconds_and_timedelta(
    run_every: float | timedelta, seconds: float
) -> None:
    every = schedule(run_every)
    assert every.seconds == seconds
    assert every.run_every == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("run_every", "message"),
    [
        (0, "must be positive, got 0"),
        (-5, "must be positive, got -5"),
        (timedelta(0), "must be positive"),
        ("10", "must be seconds or a timedelta, not str"),
        (True, "must be seconds or a timedelta, not bool"),
    ],
)
def test_interval_rejects_bad_values(run_every: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        schedule(run_every)


RELATIVE: list[tuple[float | timedelta, str, str]] = [
    # (interval, last run, expected next): rounded down to the interval's resolution
    (3600, "2024-01-01T10:17:30+00:00", "2024-01-01T11:00:00+00:00"),
    (7200, "2024-01-01T10:17:30+00:00", "2024-01-01T12:00:00+00:00"),
    (90, "2024-01-01T10:17:30+00:00", "2024-01-01T10:19:00+00:00"),
    (10, "2024-01-01T10:17:30.500000+00:00", "2024-01-01T10:17:40+00:00"),
    (timedelta(days=1), "2024-01-01T10:17:30+00:00", "2024-01-02T00:00:00+00:00"),
]


@pytest.mark.parametrize(("every", "last", "expected"), RELATIVE)
def test_relative_interval_rounds_down(every: float | timedelta, last: str, expected: str) -> None:
    assert schedule(every, relative=True).next_run_after(at(last), at(last)) == at(expected)


def test_relative_interval_without_last_run_waits_for_the_boundary() -> None:
    hourly = schedule(3600, relative=True)
    assert hourly.next_run_after(None, T0) == at("2024-01-01T11:00:00+00:00")
    on_the_hour = at("2024-01-01T10:00:00+00:00")
    assert hourly.next_run_after(None, on_the_hour) == on_the_hour


def test_relative_daily_interval_uses_local_midnight() -> None:
    daily = schedule(timedelta(days=1), relative=True).with_tz("Asia/Shanghai")
    last = at("2024-01-01T10:00:00+08:00")
    assert daily.next_run_after(last, last) == at("2024-01-02T00:00:00+08:00")


def test_interval_repr() -> None:
    assert repr(schedule(30)) == "<freq: 30.00 seconds>"
    assert repr(schedule(3600)) == "<freq: 1.00 hour>"
    assert repr(schedule(90)) == "<freq: 1.50 minutes>"
    assert repr(schedule(timedelta(days=2))) == "<freq: 2.00 days>"


def test_maybe_schedule() -> None:
    assert maybe_schedule(10) == schedule(10)
    assert maybe_schedule(2.5) == schedule(2.5)
    assert maybe_schedule(timedelta(minutes=1)) == schedule(60)
    assert maybe_schedule(10, relative=True) == schedule(10, relative=True)
    cron = crontab(0, 0)
    assert maybe_schedule(cron) is cron
    sun = solar("sunset", 1, 2)
    assert maybe_schedule(sun) is sun


@pytest.mark.parametrize(
    ("value", "type_name"), [("*/5", "str"), (None, "NoneType"), ([1], "list"), (True, "bool")]
)
def test_maybe_schedule_rejects_other_types(value: object, type_name: str) -> None:
    with pytest.raises(ConfigurationError, match=f"not {type_name}$"):
        maybe_schedule(value)


def test_with_tz_returns_a_copy() -> None:
    utc = crontab(30, 2)
    berlin = utc.with_tz("Europe/Berlin")
    assert utc.tz == ZoneInfo("UTC")
    assert berlin.tz == ZoneInfo("Europe/Berlin")
    assert berlin.with_tz(ZoneInfo("UTC")) == utc
    assert repr(berlin) == "<crontab: 30 2 * * * (m/h/dM/MY/d) Europe/Berlin>"
    last = at("2024-01-01T00:00:00+00:00")
    assert utc.next_run_after(last, last) == at("2024-01-01T02:30:00+00:00")
    assert berlin.next_run_after(last, last) == at("2024-01-01T02:30:00+01:00")


def test_bad_time_zone() -> None:
    with pytest.raises(ConfigurationError, match="unknown time zone 'Mars/Olympus'"):
        crontab().with_tz("Mars/Olympus")


ROUND_TRIPS: list[BaseSchedule] = [
    schedule(30),
    schedule(timedelta(hours=1), relative=True),
    schedule(0.25, tz="Asia/Shanghai"),
    crontab(),
    crontab(0, 0, day_of_week="sunday"),
    crontab("*/15", "9-17", "mon-fri", "1-7", "jan,jul", tz="Europe/Berlin"),
    crontab(minute={0, 30}, hour=[1, 2]),
    solar("sunrise", 51.5, -0.13),
    solar("dusk_nautical", -33.87, 151.21, tz="Australia/Sydney"),
]


@pytest.mark.parametrize("original", ROUND_TRIPS, ids=repr)
def test_to_dict_round_trip_through_json(original: BaseSchedule) -> None:
    data = json.loads(json.dumps(original.to_dict()))
    restored = BaseSchedule.from_dict(data)
    assert restored == original
    assert type(restored) is type(original)
    assert repr(restored) == repr(original)
    assert restored.tz == original.tz


def test_to_dict_shapes() -> None:
    assert schedule(30).to_dict() == {
        "type": "interval",
        "every": 30.0,
        "relative": False,
        "tz": "UTC",
    }
    assert crontab(0, "*/2", day_of_week={1, 5}).with_tz("America/New_York").to_dict() == {
        "type": "crontab",
        "minute": "0",
        "hour": "*/2",
        "day_of_week": "1,5",
        "day_of_month": "*",
        "month_of_year": "*",
        "tz": "America/New_York",
    }


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"type": "weekly"}, "unknown stored schedule type 'weekly'"),
        ({}, "unknown stored schedule type None"),
        ({"type": "interval"}, "stored interval schedule is incomplete"),
        ({"type": "solar", "event": "sunrise"}, "stored solar schedule is incomplete"),
        ({"type": "crontab", "hour": "99"}, "crontab field 'hour' got '99'"),
    ],
)
def test_from_dict_errors(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        BaseSchedule.from_dict(data)


def test_celery_import_path_shim() -> None:
    assert shim.crontab is crontab
    assert shim.schedule is schedule
    assert shim.solar is solar
    assert shim.maybe_schedule is maybe_schedule


def test_utcnow_is_aware_utc() -> None:
    now = utcnow()
    assert now.tzinfo is UTC
    assert abs(now - datetime.now(UTC)) < timedelta(seconds=5)
