"""Next-run tables for crontab, in UTC and in zones with and without DST.

Every expected instant is written out by hand (local time with its offset),
never computed by the code under test. 2024 facts used: Europe/Berlin springs
forward 2024-03-31 02:00 CET -> 03:00 CEST and falls back 2024-10-27 03:00 CEST
-> 02:00 CET; America/New_York springs forward 2024-03-10 02:00 EST -> 03:00
EDT and falls back 2024-11-03 02:00 EDT -> 01:00 EST; Asia/Shanghai is +08:00
all year. 2024-01-01 is a Monday.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from celeriac.schedules import crontab


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


Row = tuple[dict[str, Any], str, str]

UTC_ROWS: list[Row] = [
    ({}, "2024-01-01T00:00:00+00:00", "2024-01-01T00:01:00+00:00"),
    ({}, "2024-01-01T00:00:30+00:00", "2024-01-01T00:01:00+00:00"),
    ({"minute": "*/15"}, "2024-01-01T10:07:00+00:00", "2024-01-01T10:15:00+00:00"),
    ({"minute": "*/15"}, "2024-01-01T10:45:00+00:00", "2024-01-01T11:00:00+00:00"),
    ({"minute": "*/15"}, "2024-01-01T10:44:59+00:00", "2024-01-01T10:45:00+00:00"),
    ({"minute": 0, "hour": 0}, "2024-01-01T00:00:00+00:00", "2024-01-02T00:00:00+00:00"),
    ({"minute": 0, "hour": "*/6"}, "2024-01-01T05:59:00+00:00", "2024-01-01T06:00:00+00:00"),
    ({"minute": 0, "hour": "*/6"}, "2024-01-01T18:00:00+00:00", "2024-01-02T00:00:00+00:00"),
    (
        {"minute": 0, "hour": 0, "day_of_week": "sunday"},
        "2024-01-01T00:00:00+00:00",
        "2024-01-07T00:00:00+00:00",
    ),
    (
        {"minute": 0, "hour": 12, "day_of_week": 7},
        "2024-01-06T12:00:00+00:00",
        "2024-01-07T12:00:00+00:00",
    ),
    (
        {"minute": 30, "hour": 9, "day_of_week": "mon-fri"},
        "2024-01-05T09:30:00+00:00",
        "2024-01-08T09:30:00+00:00",
    ),
    (
        {"minute": 0, "hour": 0, "day_of_month": 1},
        "2024-01-31T12:00:00+00:00",
        "2024-02-01T00:00:00+00:00",
    ),
    (
        {"minute": 0, "hour": 0, "day_of_month": 31},
        "2024-01-31T00:00:00+00:00",
        "2024-03-31T00:00:00+00:00",
    ),
    (
        {"minute": 0, "hour": 0, "day_of_month": 29, "month_of_year": 2},
        "2024-02-29T00:00:00+00:00",
        "2028-02-29T00:00:00+00:00",
    ),
    (
        {"minute": 0, "hour": 0, "day_of_month": 1, "month_of_year": "jan"},
        "2024-01-01T00:00:00+00:00",
        "2025-01-01T00:00:00+00:00",
    ),
    (
        {"minute": 59, "hour": 23, "day_of_month": 31, "month_of_year": 12},
        "2024-06-01T00:00:00+00:00",
        "2024-12-31T23:59:00+00:00",
    ),
    # Celery's rule: both day fields restricted -> both must match (Friday the 13th).
    (
        {"minute": 0, "hour": 0, "day_of_month": 13, "day_of_week": "fri"},
        "2024-01-01T00:00:00+00:00",
        "2024-09-13T00:00:00+00:00",
    ),
    (
        {"minute": 0, "hour": 0, "day_of_month": 13, "day_of_week": "fri"},
        "2024-09-13T00:00:00+00:00",
        "2024-12-13T00:00:00+00:00",
    ),
    (
        {"minute": "0,30", "hour": "9-17", "day_of_week": "mon-fri"},
        "2024-01-05T17:30:00+00:00",
        "2024-01-08T09:00:00+00:00",
    ),
]

SHANGHAI_ROWS: list[Row] = [
    ({"minute": 0, "hour": 9}, "2024-01-01T09:00:00+08:00", "2024-01-02T09:00:00+08:00"),
    ({"minute": 0, "hour": 9}, "2024-01-01T00:30:00+00:00", "2024-01-01T09:00:00+08:00"),
    ({"minute": 0, "hour": 0}, "2024-01-01T00:00:00+08:00", "2024-01-01T16:00:00+00:00"),
    (
        {"minute": 30, "hour": 23, "day_of_week": "sun"},
        "2024-01-01T00:00:00+08:00",
        "2024-01-07T23:30:00+08:00",
    ),
    # In UTC it is still January 31, in Shanghai it is already February 1.
    (
        {"minute": 0, "hour": 7, "day_of_month": 1},
        "2024-01-31T23:30:00+00:00",
        "2024-03-01T07:00:00+08:00",
    ),
    (
        {"minute": 0, "hour": 7, "day_of_month": 1},
        "2024-01-31T22:30:00+00:00",
        "2024-02-01T07:00:00+08:00",
    ),
    ({"minute": "*/30"}, "2024-01-01T10:10:00+08:00", "2024-01-01T10:30:00+08:00"),
]

BERLIN_ROWS: list[Row] = [
    # spring forward: 02:00-02:59 does not exist on 2024-03-31
    ({"minute": 30, "hour": 2}, "2024-03-30T02:30:00+01:00", "2024-03-31T03:00:00+02:00"),
    ({"minute": 30, "hour": 2}, "2024-03-31T03:00:00+02:00", "2024-04-01T02:30:00+02:00"),
    ({"minute": 0, "hour": 2}, "2024-03-30T02:00:00+01:00", "2024-03-31T03:00:00+02:00"),
    ({"minute": 0, "hour": 3}, "2024-03-30T03:00:00+01:00", "2024-03-31T03:00:00+02:00"),
    ({"minute": "0,30", "hour": "2,3"}, "2024-03-31T01:00:00+01:00", "2024-03-31T03:00:00+02:00"),
    ({"minute": "0,30", "hour": "2,3"}, "2024-03-31T03:00:00+02:00", "2024-03-31T03:30:00+02:00"),
    ({"minute": 0}, "2024-03-31T01:00:00+01:00", "2024-03-31T03:00:00+02:00"),
    ({"minute": 30}, "2024-03-31T01:30:00+01:00", "2024-03-31T03:30:00+02:00"),
    ({"minute": "*/15"}, "2024-03-31T01:45:00+01:00", "2024-03-31T03:00:00+02:00"),
    ({"minute": 0, "hour": 0}, "2024-03-30T00:00:00+01:00", "2024-03-31T00:00:00+01:00"),
    ({"minute": 0, "hour": 0}, "2024-03-31T00:00:00+01:00", "2024-04-01T00:00:00+02:00"),
    # fall back: 02:00-02:59 happens twice on 2024-10-27
    ({"minute": 30, "hour": 2}, "2024-10-26T02:30:00+02:00", "2024-10-27T02:30:00+02:00"),
    ({"minute": 30, "hour": 2}, "2024-10-27T02:30:00+02:00", "2024-10-28T02:30:00+01:00"),
    ({"minute": 30, "hour": 2}, "2024-10-27T02:45:00+01:00", "2024-10-28T02:30:00+01:00"),
    ({"minute": 0, "hour": "2,3"}, "2024-10-27T02:00:00+02:00", "2024-10-27T03:00:00+01:00"),
    ({"minute": 15, "hour": 1}, "2024-10-26T01:15:00+02:00", "2024-10-27T01:15:00+02:00"),
    ({"minute": 0}, "2024-10-27T02:00:00+02:00", "2024-10-27T02:00:00+01:00"),
    ({"minute": 0}, "2024-10-27T02:00:00+01:00", "2024-10-27T03:00:00+01:00"),
    ({"minute": 30}, "2024-10-27T02:30:00+02:00", "2024-10-27T02:30:00+01:00"),
    ({"minute": "*/15"}, "2024-10-27T02:45:00+02:00", "2024-10-27T02:00:00+01:00"),
    (
        {"minute": 0, "hour": 0, "day_of_week": "sun"},
        "2024-10-20T00:00:00+02:00",
        "2024-10-27T00:00:00+02:00",
    ),
    (
        {"minute": 0, "hour": 0, "day_of_week": "sun"},
        "2024-10-27T00:00:00+02:00",
        "2024-11-03T00:00:00+01:00",
    ),
]

NEW_YORK_ROWS: list[Row] = [
    # spring forward: 02:00-02:59 does not exist on 2024-03-10
    ({"minute": 30, "hour": 2}, "2024-03-09T02:30:00-05:00", "2024-03-10T03:00:00-04:00"),
    ({"minute": 0}, "2024-03-10T01:00:00-05:00", "2024-03-10T03:00:00-04:00"),
    ({"minute": 0, "hour": 0}, "2024-03-09T00:00:00-05:00", "2024-03-10T00:00:00-05:00"),
    ({"minute": 0, "hour": 0}, "2024-03-10T00:00:00-05:00", "2024-03-11T00:00:00-04:00"),
    # fall back: 01:00-01:59 happens twice on 2024-11-03
    ({"minute": 30, "hour": 1}, "2024-11-02T01:30:00-04:00", "2024-11-03T01:30:00-04:00"),
    ({"minute": 30, "hour": 1}, "2024-11-03T01:30:00-04:00", "2024-11-04T01:30:00-05:00"),
    ({"minute": 0}, "2024-11-03T01:00:00-04:00", "2024-11-03T01:00:00-05:00"),
    ({"minute": 0}, "2024-11-03T01:00:00-05:00", "2024-11-03T02:00:00-05:00"),
    ({"minute": "*/20", "hour": 1}, "2024-11-03T01:40:00-04:00", "2024-11-04T01:00:00-05:00"),
    ({"minute": 0, "hour": 2}, "2024-11-02T02:00:00-04:00", "2024-11-03T02:00:00-05:00"),
]


def _check(zone: str, fields: dict[str, Any], last: str, expected: str) -> None:
    schedule = crontab(**fields).with_tz(zone)
    got = schedule.next_run_after(at(last), at(last))
    assert got == at(expected), f"{schedule!r} after {last}: {got.astimezone(schedule.tz)}"
    assert got.tzinfo is UTC


@pytest.mark.parametrize(("fields", "last", "expected"), UTC_ROWS)
def test_next_run_utc(fields: dict[str, Any], last: str, expected: str) -> None:
    _check("UTC", fields, last, expected)


@pytest.mark.parametrize(("fields", "last", "expected"), SHANGHAI_ROWS)
def test_next_run_shanghai(fields: dict[str, Any], last: str, expected: str) -> None:
    _check("Asia/Shanghai", fields, last, expected)


@pytest.mark.parametrize(("fields", "last", "expected"), BERLIN_ROWS)
def test_next_run_berlin(fields: dict[str, Any], last: str, expected: str) -> None:
    _check("Europe/Berlin", fields, last, expected)


@pytest.mark.parametrize(("fields", "last", "expected"), NEW_YORK_ROWS)
def test_next_run_new_york(fields: dict[str, Any], last: str, expected: str) -> None:
    _check("America/New_York", fields, last, expected)


def test_no_last_run_is_due_at_a_matching_now() -> None:
    daily = crontab(0, 9)
    assert daily.next_run_after(None, at("2024-01-01T09:00:00+00:00")) == at(
        "2024-01-01T09:00:00+00:00"
    )
    assert daily.is_due(None, at("2024-01-01T09:00:00+00:00")) == (True, 86400.0)
    # beat started 15 s after the time: that run is not made up, the next is tomorrow
    assert daily.next_run_after(None, at("2024-01-01T09:00:15+00:00")) == at(
        "2024-01-02T09:00:00+00:00"
    )


def test_is_due_and_remaining() -> None:
    hourly = crontab(0)
    last = at("2024-01-01T10:00:00+00:00")
    assert hourly.is_due(last, at("2024-01-01T10:30:00+00:00")) == (False, 1800.0)
    assert hourly.is_due(last, at("2024-01-01T11:00:10+00:00")) == (True, 3590.0)
    # a long outage makes the task due once, not once per missed hour
    assert hourly.is_due(last, at("2024-01-03T07:20:00+00:00")) == (True, 2400.0)
    assert hourly.remaining_estimate(last, at("2024-01-01T10:45:00+00:00")).total_seconds() == 900
    assert hourly.remaining_estimate(last, at("2024-01-01T12:00:00+00:00")).total_seconds() == 0


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        crontab().next_run_after(datetime(2024, 1, 1), datetime(2024, 1, 1))
