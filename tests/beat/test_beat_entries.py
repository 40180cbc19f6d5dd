"""beat_schedule entries: Celery's shapes accepted, bad ones named in one line."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from celeriac.beat.entries import Entry, app_timezone, crontab_from_string, entries_from_config
from celeriac.errors import ConfigurationError
from celeriac.schedules import crontab, schedule, solar

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_celery_shapes_become_entries_in_the_app_zone() -> None:
    entries = entries_from_config(
        {
            "add-every-30-seconds": {
                "task": "proj.tasks.add",
                "schedule": timedelta(seconds=30),
                "args": (16, 16),
            },
            "hourly": {"task": "t", "schedule": 3600.0, "relative": True},
            "monday": {
                "task": "t",
                "schedule": crontab(hour=7, minute=30, day_of_week=1),
                "kwargs": {"a": 1},
                "options": {"queue": "q", "expires": 30},
            },
            "dusk": {"task": "t", "schedule": solar("sunset", 31.2, 121.5)},
            "own-zone": {"task": "t", "schedule": crontab(minute=0, tz="Europe/Paris")},
        },
        SHANGHAI,
    )
    assert entries["add-every-30-seconds"].schedule == schedule(30, tz=SHANGHAI)
    assert entries["add-every-30-seconds"].args == (16, 16)
    assert entries["hourly"].schedule == schedule(3600, relative=True, tz=SHANGHAI)
    assert entries["monday"].schedule.tz == SHANGHAI
    assert entries["monday"].options == {"queue": "q", "expires": 30}
    assert entries["dusk"].schedule.tz == SHANGHAI
    assert entries["own-zone"].schedule.tz == ZoneInfo("Europe/Paris")


def test_stored_form_round_trips() -> None:
    entry = Entry.from_config(
        "e",
        {
            "task": "t",
            "schedule": crontab("*/15", "8-18", "mon-fri"),
            "args": [1],
            "kwargs": {"k": "v"},
        },
        SHANGHAI,
    )
    again = Entry.from_dict("e", entry.to_dict(), SHANGHAI)
    assert again.schedule == entry.schedule and again.args == (1,) and again.dynamic


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"schedule": 5}, "beat entry 'bad': field 'task': is missing"),
        ({"task": "t"}, "beat entry 'bad': field 'schedule': is missing"),
        ({"task": "t", "schedule": [5]}, "beat entry 'bad': field 'schedule': a schedule must be"),
        (
            {"task": "t", "schedule": {"type": "weekly"}},
            "beat entry 'bad': field 'schedule': unknown stored schedule type 'weekly'",
        ),
        (
            {"task": "t", "schedule": "0 25 * * *"},
            "beat entry 'bad': field 'schedule': crontab field 'hour' got '25'",
        ),
        (
            {"task": "t", "schedule": {"type": "crontab", "minute": "61"}},
            "beat entry 'bad': field 'schedule': crontab field 'minute' got '61'",
        ),
        (
            {"task": "t", "schedule": 5, "args": "ab"},
            "beat entry 'bad': field 'args': must be a list",
        ),
        (
            {"task": "t", "schedule": 5, "kwargs": [1]},
            "beat entry 'bad': field 'kwargs': must be a",
        ),
        ({"task": "t", "schedule": 5, "shedule": 1}, "beat entry 'bad': field 'shedule': unknown"),
        ({"task": "t", "schedule": -1}, "beat entry 'bad': field 'schedule': schedule run_every"),
    ],
)
def test_a_bad_entry_is_one_line_naming_entry_and_field(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        entries_from_config({"good": {"task": "t", "schedule": 1}, "bad": spec})
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_crontab_strings_use_cron_field_order() -> None:
    assert crontab_from_string("30 7 * * 1") == crontab(minute=30, hour=7, day_of_week=1)
    assert crontab_from_string("0 0 1 jan *") == crontab(0, 0, day_of_month=1, month_of_year=1)
    with pytest.raises(ConfigurationError, match="must have 5 fields"):
        crontab_from_string("* * *")


def test_app_timezone_follows_timezone_and_enable_utc() -> None:
    class S:
        timezone: str | None = "Asia/Shanghai"
        enable_utc = True

    assert app_timezone(S()) == SHANGHAI
    S.timezone = None
    assert app_timezone(S()) == ZoneInfo("UTC")
    S.timezone = "Mars/Olympus"
    with pytest.raises(ConfigurationError, match="unknown timezone 'Mars/Olympus'"):
        app_timezone(S())
