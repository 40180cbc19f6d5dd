"""Times of solar events from NOAA's sun position equations (no ephemeris library).

The equations are those of NOAA's solar calculator (after Meeus, "Astronomical
Algorithms"): good to about a minute between latitudes 72°S and 72°N, and
within a few minutes nearer the poles. An event that does not happen on a day
(the sun never rises in polar night) yields ``None`` for that day.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

__all__ = ["EVENTS", "event_time"]

# Zenith angle of the sun's centre at each event, in degrees; None for the
# meridian transit. Sunrise and sunset count 34' of refraction and 16' of the
# sun's radius (the upper limb touches the horizon).
EVENTS: dict[str, tuple[float | None, int]] = {
    "dawn_astronomical": (108.0, -1),
    "dawn_nautical": (102.0, -1),
    "dawn_civil": (96.0, -1),
    "sunrise": (90.833, -1),
    "solar_noon": (None, 0),
    "sunset": (90.833, 1),
    "dusk_civil": (96.0, 1),
    "dusk_nautical": (102.0, 1),
    "dusk_astronomical": (108.0, 1),
}

_J2000 = 2451545.0
_UNIX_EPOCH_JD = 2440587.5
# Events are computed once per day; nearer a pole than this, the days on which
# an event exists can be fewer than one (the declination moves 0.4 degrees a
# day) and a daily search would miss the season's first sunrise entirely.
_MAX_LAT = 89.5


def _sun(jd: float) -> tuple[float, float]:
    """Declination (degrees) and equation of time (minutes) at Julian day ``jd``."""
    t = (jd - _J2000) / 36525.0
    mean_long = math.radians((280.46646 + t * (36000.76983 + t * 0.0003032)) % 360.0)
    mean_anom = math.radians(357.52911 + t * (35999.05029 - 0.0001537 * t))
    ecc = 0.016708634 - t * (0.000042037 + 0.0000001267 * t)
    centre = (
        math.sin(mean_anom) * (1.914602 - t * (0.004817 + 0.000014 * t))
        + math.sin(2 * mean_anom) * (0.019993 - 0.000101 * t)
        + math.sin(3 * mean_anom) * 0.000289
    )
    true_long = math.degrees(mean_long) + centre
    omega = math.radians(125.04 - 1934.136 * t)
    apparent_long = math.radians(true_long - 0.00569 - 0.00478 * math.sin(omega))
    seconds = 21.448 - t * (46.815 + t * (0.00059 - t * 0.001813))
    mean_obliquity = 23.0 + (26.0 + seconds / 60.0) / 60.0
    obliquity = math.radians(mean_obliquity + 0.00256 * math.cos(omega))
    declination = math.asin(math.sin(obliquity) * math.sin(apparent_long))
    y = math.tan(obliquity / 2) ** 2
    eq_time = 4 * math.degrees(
        y * math.sin(2 * mean_long)
        - 2 * ecc * math.sin(mean_anom)
        + 4 * ecc * y * math.sin(mean_anom) * math.cos(2 * mean_long)
        - 0.5 * y * y * math.sin(4 * mean_long)
        - 1.25 * ecc * ecc * math.sin(2 * mean_anom)
    )
    return math.degrees(declination), eq_time


def _minutes(
    day_jd: float, zenith: float | None, side: int, lat: float, lon: float
) -> float | None:
    """Minutes after 0h UTC of the day starting at ``day_jd`` at which the event happens."""
    minutes = 720.0 - 4.0 * lon
    for _ in range(3):  # re-evaluate the sun at the estimate; converges in two rounds
        declination, eq_time = _sun(day_jd + minutes / 1440.0)
        noon = 720.0 - 4.0 * lon - eq_time
        if zenith is None:
            minutes = noon
            continue
        phi, delta = math.radians(lat), math.radians(declination)
        cos_ha = math.cos(math.radians(zenith)) / (math.cos(phi) * math.cos(delta)) - math.tan(
            phi
        ) * math.tan(delta)
        if not -1.0 <= cos_ha <= 1.0:
            return None
        minutes = noon + side * 4.0 * math.degrees(math.acos(cos_ha))
    return minutes


def event_time(event: str, day: date, lat: float, lon: float) -> datetime | None:
    """UTC instant of ``event`` on the solar day nearest the UTC date ``day``, or None.

    ``lat`` is north-positive, ``lon`` east-positive, both in degrees.
    """
    zenith, side = EVENTS[event]
    lat = max(-_MAX_LAT, min(_MAX_LAT, lat))
    day_jd = _UNIX_EPOCH_JD + (day - date(1970, 1, 1)).days
    minutes = _minutes(day_jd, zenith, side, lat, lon)
    if minutes is None:
        return None
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return (start + timedelta(minutes=minutes)).replace(microsecond=0)
