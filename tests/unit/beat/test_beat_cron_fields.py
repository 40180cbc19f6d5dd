"""Parsing of crontab fields: Celery's syntax, ranges, names, and error messages."""

from __future__ import annotations

import pytest

from celeriac.beat._cron import parse_field
from celeriac.errors import ConfigurationError
from celeriac.schedules import crontab

ALL_MINUTES = set(range(60))

VALID = [
    ("minute", "*", ALL_MINUTES),
    ("minute", "*/15", {0, 15, 30, 45}),
    ("minute", "0-5", {0, 1, 2, 3, 4, 5}),
    ("minute", "1-10/2", {1, 3, 5, 7, 9}),
    ("minute", "0,30", {0, 30}),
    ("minute", " 1 , 2 ", {1, 2}),
    ("minute", "10/20", {10, 30, 50}),
    ("minute", "58-2", {58, 59, 0, 1, 2}),
    ("minute", "0-59/30,7", {0, 30, 7}),
    ("minute", 0, {0}),
    ("minute", 59, {59}),
    ("minute", {1, 2}, {1, 2}),
    ("minute", [5, 10], {5, 10}),
    ("minute", range(0, 60, 20), {0, 20, 40}),
    ("hour", "*/6", {0, 6, 12, 18}),
    ("hour", "23", {23}),
    ("hour", "9-17", set(range(9, 18))),
    ("day_of_week", "*", set(range(7))),
    ("day_of_week", "sun", {0}),
    ("day_of_week", "sunday", {0}),
    ("day_of_week", "SUNDAY", {0}),
    ("day_of_week", "mon-fri", {1, 2, 3, 4, 5}),
    ("day_of_week", "fri-mon", {5, 6, 0, 1}),
    ("day_of_week", "sat,sun", {6, 0}),
    ("day_of_week", "sat-sun", {6, 0}),
    ("day_of_week", "*/2", {0, 2, 4, 6}),
    ("day_of_week", "7", {0}),
    ("day_of_week", 7, {0}),
    ("day_of_week", "5-7", {5, 6, 0}),
    ("day_of_week", "0-7", set(range(7))),
    ("day_of_week", "1,thursday", {1, 4}),
    ("day_of_month", "*", set(range(1, 32))),
    ("day_of_month", "*/10", {1, 11, 21, 31}),
    ("day_of_month", "1-31/10", {1, 11, 21, 31}),
    ("day_of_month", "15", {15}),
    ("month_of_year", "*", set(range(1, 13))),
    ("month_of_year", "*/3", {1, 4, 7, 10}),
    ("month_of_year", "jan", {1}),
    ("month_of_year", "jan-mar", {1, 2, 3}),
    ("month_of_year", "december", {12}),
    ("month_of_year", "nov-feb", {11, 12, 1, 2}),
    ("month_of_year", "1-12/3", {1, 4, 7, 10}),
]


@pytest.mark.parametrize(("name", "spec", "expected"), VALID)
def test_valid_fields(name: str, spec: object, expected: set[int]) -> None:
    assert parse_field(name, spec) == expected


INVALID = [
    ("hour", "25", "crontab field 'hour' got '25': values must be 0-23"),
    ("hour", 25, "crontab field 'hour' got 25: values must be 0-23"),
    ("hour", [1, 70], "crontab field 'hour' got [1, 70]: values must be 0-23"),
    ("minute", "60", "crontab field 'minute' got '60': values must be 0-59"),
    ("minute", "0-60", "crontab field 'minute' got '0-60': values must be 0-59"),
    ("minute", "*/0", "crontab field 'minute' got '*/0': step '0' must be a positive integer"),
    ("minute", "*/x", "crontab field 'minute' got '*/x': step 'x' must be a positive integer"),
    ("minute", "a", "crontab field 'minute' got 'a': 'a' is not a number; values must be 0-59"),
    ("minute", "-1", "crontab field 'minute' got '-1': negative values are not allowed; values"),
    ("minute", "3-", "crontab field 'minute' got '3-': a range needs a value on each side"),
    ("minute", "1,,2", "crontab field 'minute' got '1,,2': empty part in the list"),
    ("minute", "", "crontab field 'minute' got '': empty part in the list"),
    ("minute", "?", "crontab field 'minute' got '?': '?' is not a number; values must be 0-59"),
    ("minute", True, "crontab field 'minute' got True: expected a string, an int"),
    ("minute", 1.5, "crontab field 'minute' got 1.5: expected a string, an int or a set of ints"),
    ("minute", set(), "crontab field 'minute' got set(): no values given"),
    ("minute", ["1"], "crontab field 'minute' got ['1']: '1' is not an int"),
    ("day_of_month", "0", "crontab field 'day_of_month' got '0': values must be 1-31"),
    ("day_of_month", "32", "crontab field 'day_of_month' got '32': values must be 1-31"),
    ("day_of_week", "8", "crontab field 'day_of_week' got '8': values must be 0-6 (0 and 7"),
    ("day_of_week", "funday", "crontab field 'day_of_week' got 'funday': 'funday' is not a"),
    ("month_of_year", "0", "crontab field 'month_of_year' got '0': values must be 1-12"),
    ("month_of_year", "13", "crontab field 'month_of_year' got '13': values must be 1-12"),
    ("month_of_year", "sun", "crontab field 'month_of_year' got 'sun': 'sun' is not a number"),
    ("hour", "mon", "crontab field 'hour' got 'mon': 'mon' is not a number; values must be 0-23"),
]


@pytest.mark.parametrize(("name", "spec", "message"), INVALID)
def test_invalid_fields_name_field_and_value(name: str, spec: object, message: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        parse_field(name, spec)
    assert str(info.value).startswith(message)


def test_crontab_raises_for_bad_field() -> None:
    with pytest.raises(ConfigurationError, match="crontab field 'hour' got '25'"):
        crontab(hour="25")


def test_crontab_that_never_fires_is_rejected() -> None:
    with pytest.raises(ConfigurationError, match="never occurs"):
        crontab(0, 0, day_of_month=30, month_of_year="feb")


def test_february_29_is_allowed() -> None:
    assert crontab(0, 0, day_of_month=29, month_of_year=2).day_of_month == {29}


def test_positional_minute_hour_and_attributes() -> None:
    c = crontab(0, 0, day_of_week="sunday")
    assert c.minute == {0}
    assert c.hour == {0}
    assert c.day_of_week == {0}
    assert c.day_of_month == set(range(1, 32))
    assert c.month_of_year == set(range(1, 13))
    assert repr(c) == "<crontab: 0 0 * * sunday (m/h/dM/MY/d)>"


def test_equality_compares_parsed_values() -> None:
    assert crontab(minute="0,30") == crontab(minute={30, 0})
    assert crontab(day_of_week="sun") == crontab(day_of_week=7)
    assert crontab(hour="*") == crontab(hour="0-23")
    assert crontab(0) != crontab(1)
    assert crontab(0) != crontab(0).with_tz("Europe/Berlin")
    assert hash(crontab(minute="0,30")) == hash(crontab(minute={30, 0}))
