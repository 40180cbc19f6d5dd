"""Properties of crontab.next_run_after, checked by hypothesis against a brute-force scan."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from celeriac.beat._cron import weekday
from celeriac.errors import ConfigurationError
from celeriac.schedules import crontab

ZONES = [
    "UTC",
    "Asia/Shanghai",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",  # DST of 30 minutes
    "America/Santiago",  # changes at midnight
    "Asia/Kolkata",  # +05:30, no DST
]


def field(lo: int, hi: int, star_weight: int = 1) -> st.SearchStrategy[Any]:
    subset = st.frozensets(st.integers(lo, hi), min_size=1, max_size=6)
    return st.one_of(*[st.just("*")] * star_weight, subset)


specs = st.fixed_dictionaries(
    {
        "minute": field(0, 59),
        "hour": field(0, 23),
        "day_of_week": field(0, 6, star_weight=3),
        "day_of_month": field(1, 31, star_weight=4),
        "month_of_year": field(1, 12, star_weight=4),
    }
)
instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2037, 12, 31), timezones=st.just(UTC)
)
# Instants near the 2024 transitions of the zones above, where bugs would hide.
near_transitions = st.sampled_from(
    [
        datetime(2024, 3, 31, 0, 30, tzinfo=UTC),
        datetime(2024, 10, 27, 0, 15, tzinfo=UTC),
        datetime(2024, 3, 10, 6, 20, tzinfo=UTC),
        datetime(2024, 11, 3, 5, 10, tzinfo=UTC),
        datetime(2024, 4, 6, 14, 45, tzinfo=UTC),  # Lord Howe back
        datetime(2024, 10, 5, 15, 5, tzinfo=UTC),  # Lord Howe forward
        datetime(2024, 4, 7, 2, 30, tzinfo=UTC),  # Santiago back
        datetime(2024, 9, 8, 3, 30, tzinfo=UTC),  # Santiago forward
    ]
).flatmap(lambda t: st.integers(-7200, 7200).map(lambda s: t + timedelta(seconds=s)))


def build(fields: dict[str, Any], zone: str) -> crontab:
    try:
        return crontab(**fields).with_tz(zone)
    except ConfigurationError:
        assume(False)
        raise


def wall_matches(c: crontab, instant: datetime) -> bool:
    local = instant.astimezone(c.tz)
    return (
        local.minute in c.minute
        and local.hour in c.hour
        and local.day in c.day_of_month
        and local.month in c.month_of_year
        and weekday(local.date()) in c.day_of_week
    )


def should_fire(c: crontab, instant: datetime) -> bool:
    """Brute-force oracle for an instant on a whole minute, gap rule aside."""
    if not wall_matches(c, instant):
        return False
    local = instant.astimezone(c.tz)
    if len(c.hour) == 24 or local.fold == 0:
        return True
    # a named-hour schedule runs a repeated wall time at its first occurrence only
    return local.replace(fold=0).astimezone(UTC) == instant


def is_gap_end(c: crontab, instant: datetime) -> bool:
    before = (instant - timedelta(seconds=1)).astimezone(c.tz).utcoffset()
    after = instant.astimezone(c.tz).utcoffset()
    assert before is not None and after is not None
    return after > before


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(fields=specs, zone=st.sampled_from(ZONES), start=st.one_of(instants, near_transitions))
def test_next_run_is_later_matches_and_misses_nothing(
    fields: dict[str, Any], zone: str, start: datetime
) -> None:
    c = build(fields, zone)
    nxt = c.next_run_after(start, start)
    assert nxt > start
    assert nxt.tzinfo is UTC
    assert nxt.second == 0 or is_gap_end(c, nxt)
    if not should_fire(c, nxt):
        # only a skipped wall time of a named-hour schedule runs off its wall time
        assert len(c.hour) < 24
        assert is_gap_end(c, nxt)
    following = c.next_run_after(nxt, nxt)
    assert following > nxt
    if nxt - start <= timedelta(days=1):
        minute = start.replace(second=0, microsecond=0) + timedelta(minutes=1)
        while minute < nxt:
            assert not should_fire(c, minute), f"{c!r} skipped {minute.astimezone(c.tz)}"
            minute += timedelta(minutes=1)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(fields=specs, zone=st.sampled_from(ZONES), start=st.one_of(instants, near_transitions))
def test_a_run_is_never_repeated(fields: dict[str, Any], zone: str, start: datetime) -> None:
    c = build(fields, zone)
    runs = [c.next_run_after(start, start)]
    for _ in range(20):
        runs.append(c.next_run_after(runs[-1], runs[-1]))
    assert all(a < b for a, b in itertools.pairwise(runs))
    if len(c.hour) < 24:
        walls = [r.astimezone(c.tz).replace(tzinfo=None) for r in runs]
        assert len(set(walls)) == len(walls)


@given(zone=st.sampled_from(ZONES), start=st.one_of(instants, near_transitions))
def test_every_minute_is_the_next_whole_minute(zone: str, start: datetime) -> None:
    c = crontab().with_tz(zone)
    expected = start.replace(second=0, microsecond=0) + timedelta(minutes=1)
    assert c.next_run_after(start, start) == expected
    assert c.tz == ZoneInfo(zone)
