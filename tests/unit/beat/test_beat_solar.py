"""solar schedules against reference sun times, within a minute.

Reference times (UTC) are from PyEphem 4.2.1, an ephemeris independent of
NOAA's equations, with Celery's horizons (sunrise/sunset: upper limb at -0:34,
twilights: centre at -6/-12/-18 degrees) and no atmospheric model; they agree
with published almanac values, e.g. New York on 2024-06-21: sunrise 05:25
EDT, sunset 20:31 EDT.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from celeriac.errors import ConfigurationError
from celeriac.schedules import solar

NEW_YORK = (40.7128, -74.0060)
LONDON = (51.5074, -0.1278)
SYDNEY = (-33.8688, 151.2093)
SHANGHAI = (31.2304, 121.4737)
QUITO = (-0.1807, -78.4678)
TROMSO = (69.6492, 18.9553)

TOLERANCE = timedelta(seconds=60)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


ROWS: list[tuple[str, tuple[float, float], str, str]] = [
    # London, March equinox: all nine events
    ("dawn_astronomical", LONDON, "2024-03-20T00:00:00+00:00", "2024-03-20T04:08:45+00:00"),
    ("dawn_nautical", LONDON, "2024-03-20T00:00:00+00:00", "2024-03-20T04:49:42+00:00"),
    ("dawn_civil", LONDON, "2024-03-20T00:00:00+00:00", "2024-03-20T05:29:02+00:00"),
    ("sunrise", LONDON, "2024-03-20T00:00:00+00:00", "2024-03-20T06:02:18+00:00"),
    ("solar_noon", LONDON, "2024-03-20T00:00:00+00:00", "2024-03-20T12:07:49+00:00"),
    ("sunset", LONDON, "2024-03-20T00:00:00+00:00", "2024-03-20T18:14:20+00:00"),
    ("dusk_civil", LONDON, "2024-03-20T00:00:00+00:00", "2024-03-20T18:47:42+00:00"),
    ("dusk_nautical", LONDON, "2024-03-20T00:00:00+00:00", "2024-03-20T19:27:12+00:00"),
    ("dusk_astronomical", LONDON, "2024-03-20T00:00:00+00:00", "2024-03-20T20:08:24+00:00"),
    # New York, June solstice
    ("dawn_astronomical", NEW_YORK, "2024-06-21T05:00:00+00:00", "2024-06-21T07:18:37+00:00"),
    ("dawn_nautical", NEW_YORK, "2024-06-21T05:00:00+00:00", "2024-06-21T08:09:02+00:00"),
    ("dawn_civil", NEW_YORK, "2024-06-21T05:00:00+00:00", "2024-06-21T08:51:42+00:00"),
    ("sunrise", NEW_YORK, "2024-06-21T05:00:00+00:00", "2024-06-21T09:25:09+00:00"),
    ("solar_noon", NEW_YORK, "2024-06-21T05:00:00+00:00", "2024-06-21T16:57:59+00:00"),
    ("sunset", NEW_YORK, "2024-06-21T05:00:00+00:00", "2024-06-22T00:30:48+00:00"),
    ("dusk_civil", NEW_YORK, "2024-06-21T05:00:00+00:00", "2024-06-22T01:04:15+00:00"),
    ("dusk_nautical", NEW_YORK, "2024-06-21T05:00:00+00:00", "2024-06-22T01:46:54+00:00"),
    ("dusk_astronomical", NEW_YORK, "2024-06-21T05:00:00+00:00", "2024-06-22T02:37:18+00:00"),
    # New York, December solstice
    ("sunrise", NEW_YORK, "2024-12-21T05:00:00+00:00", "2024-12-21T12:16:47+00:00"),
    ("sunset", NEW_YORK, "2024-12-21T05:00:00+00:00", "2024-12-21T21:32:03+00:00"),
    # southern hemisphere summer, east of Greenwich: the local day starts the UTC day before
    ("sunrise", SYDNEY, "2024-01-14T12:00:00+00:00", "2024-01-14T18:58:59+00:00"),
    ("solar_noon", SYDNEY, "2024-01-14T12:00:00+00:00", "2024-01-15T02:04:14+00:00"),
    ("sunset", SYDNEY, "2024-01-14T12:00:00+00:00", "2024-01-15T09:09:08+00:00"),
    ("sunrise", SHANGHAI, "2024-06-30T16:00:00+00:00", "2024-06-30T20:53:39+00:00"),
    ("solar_noon", SHANGHAI, "2024-06-30T16:00:00+00:00", "2024-07-01T03:58:01+00:00"),
    ("sunset", SHANGHAI, "2024-06-30T16:00:00+00:00", "2024-07-01T11:02:15+00:00"),
    # on the equator
    ("sunrise", QUITO, "2024-09-22T05:00:00+00:00", "2024-09-22T11:03:05+00:00"),
    ("solar_noon", QUITO, "2024-09-22T05:00:00+00:00", "2024-09-22T17:06:19+00:00"),
    ("sunset", QUITO, "2024-09-22T05:00:00+00:00", "2024-09-22T23:09:33+00:00"),
    # no astronomical darkness in London in midsummer: the next night that has it
    ("dusk_astronomical", LONDON, "2024-06-21T00:00:00+00:00", "2024-07-21T23:38:12+00:00"),
    ("dawn_astronomical", LONDON, "2024-06-21T00:00:00+00:00", "2024-07-21T00:22:59+00:00"),
    # polar night in Tromso: the sun is next up on 15 January
    ("sunrise", TROMSO, "2024-12-10T00:00:00+00:00", "2025-01-15T10:24:29+00:00"),
]


@pytest.mark.parametrize(("event", "place", "start", "expected"), ROWS)
def test_solar_event_times(
    event: str, place: tuple[float, float], start: str, expected: str
) -> None:
    got = solar(event, *place).next_run_after(None, at(start))
    assert abs(got - at(expected)) <= TOLERANCE, got


def test_next_run_is_the_following_day_after_a_run() -> None:
    sunrise = solar("sunrise", *LONDON)
    first = sunrise.next_run_after(None, at("2024-03-20T00:00:00+00:00"))
    second = sunrise.next_run_after(first, first)
    assert timedelta(hours=23, minutes=55) < second - first < timedelta(hours=24)
    assert sunrise.is_due(first, first + timedelta(hours=1)) == (
        False,
        (second - first - timedelta(hours=1)).total_seconds(),
    )
    due, wait = sunrise.is_due(first, second + timedelta(seconds=10))
    assert due
    assert timedelta(hours=23) < timedelta(seconds=wait) < timedelta(hours=24)


def test_bad_event_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigurationError) as info:
        solar("moonrise", 0, 0)
    message = str(info.value)
    assert "'moonrise'" in message
    for event in ("dawn_astronomical", "sunrise", "solar_noon", "sunset", "dusk_civil"):
        assert event in message


@pytest.mark.parametrize(
    ("lat", "lon", "message"),
    [
        (91, 0, "solar lat 91 is out of range: must be -90 to 90"),
        (-90.5, 0, "solar lat -90.5 is out of range"),
        (0, 181, "solar lon 181 is out of range: must be -180 to 180"),
        ("north", 0, "solar lat must be a number of degrees, not str"),
        (0, True, "solar lon must be a number of degrees, not bool"),
    ],
)
def test_bad_coordinates(lat: object, lon: object, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        solar("sunrise", lat, lon)  # type: ignore[arg-type]


def test_poles_are_accepted_and_solar_noon_always_happens() -> None:
    noon = solar("solar_noon", 90, 0).next_run_after(None, at("2024-06-21T00:00:00+00:00"))
    assert abs(noon - at("2024-06-21T12:00:00+00:00")) < timedelta(minutes=5)
    rise = solar("sunrise", -90, 0).next_run_after(None, at("2024-06-21T00:00:00+00:00"))
    assert at("2024-09-01T00:00:00+00:00") < rise < at("2024-10-15T00:00:00+00:00")


def test_repr_and_equality() -> None:
    assert repr(solar("sunset", 10, 20)) == "<solar: sunset at latitude 10.0, longitude: 20.0>"
    assert solar("sunset", 10, 20) == solar("sunset", 10.0, 20.0)
    assert solar("sunset", 10, 20) != solar("sunrise", 10, 20)
