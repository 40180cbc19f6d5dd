"""When periodic tasks are due: ``schedule`` (interval), ``crontab`` and ``solar``.

Pure schedule maths, no I/O and no clock of its own: every method takes ``now``
(an aware datetime) from the caller, so a scheduler or a test drives time.
``utcnow()`` is the one place that reads the real clock.

The names and arguments are Celery's (``from celeriac.schedules import
crontab`` works as ``from celery.schedules import crontab``). The rules:

* ``next_run_after(last_run_at, now)`` is the earliest due time strictly after
  the last run. With no last run it is the first due time at or after ``now``;
  for a plain interval that is ``now`` itself (the first run happens at start).
* A run that was missed (the scheduler was down) is due once, not once per
  missed time: ``is_due`` says "due" and the caller records ``now`` as the run.
* Cron and solar times are computed in the schedule's time zone ``tz`` (the
  app's ``timezone`` setting, UTC by default); results are aware UTC datetimes.
  The daylight-saving rules are in ``celeriac.beat._cron`` and
  ``docs/decisions-beat.md``.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from celeriac.beat._cron import FIELD_RANGES, CronSpec, parse_field
from celeriac.beat._solar import EVENTS, event_time
from celeriac.errors import ConfigurationError

__all__ = ["BaseSchedule", "crontab", "maybe_schedule", "schedule", "solar", "utcnow"]

_UTC = ZoneInfo("UTC")
_TICK = timedelta(microseconds=1)
# Solar events in polar regions can pause for months; a year and a bit always
# contains the next one unless the event never happens at that place.
_SOLAR_SEARCH_DAYS = 3 * 366


def utcnow() -> datetime:
    """The current time as an aware UTC datetime (the only clock read in this module)."""
    return datetime.now(UTC)


def _zone(tz: ZoneInfo | str | None) -> ZoneInfo:
    if tz is None:
        return _UTC
    if isinstance(tz, ZoneInfo):
        return tz
    if isinstance(tz, str):
        try:
            return ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigurationError(f"unknown time zone {tz!r}") from exc
    raise ConfigurationError(f"time zone must be a ZoneInfo or a name, not {type(tz).__name__}")


def _zone_name(tz: ZoneInfo) -> str:
    return tz.key if tz.key is not None else str(tz)


def _aware(name: str, value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got naive {value!r}")
    return value.astimezone(UTC)


class BaseSchedule(ABC):
    """A rule that says when a periodic task is due next.

    Subclasses implement ``next_run_after``, ``to_dict`` and ``_key``; the
    rest is derived. ``tz`` is the time zone that wall-clock rules use.
    """

    #: The ``type`` value in ``to_dict()`` output; ``from_dict`` dispatches on it.
    kind: ClassVar[str]
    tz: ZoneInfo

    @abstractmethod
    def next_run_after(self, last_run_at: datetime | None, now: datetime) -> datetime:
        """Earliest due time strictly after ``last_run_at`` (aware UTC).

        Without a last run: the first due time at or after ``now``.
        """

    @abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict that ``BaseSchedule.from_dict`` turns back into an equal schedule."""

    @abstractmethod
    def _key(self) -> tuple[Any, ...]:
        """What equality and hashing compare."""

    def is_due(self, last_run_at: datetime | None, now: datetime) -> tuple[bool, float]:
        """``(due, seconds)`` as Celery's ``is_due``.

        When due, ``seconds`` is the wait until the following run, counting
        the run the caller is about to make at ``now``; otherwise it is the
        wait until the next due time.
        """
        now = _aware("now", now)
        due_at = self.next_run_after(last_run_at, now)
        if due_at <= now:
            following = self.next_run_after(now, now)
            return True, max((following - now).total_seconds(), 0.0)
        return False, (due_at - now).total_seconds()

    def remaining_estimate(self, last_run_at: datetime | None, now: datetime) -> timedelta:
        """Time left until the next due time; zero when it is already due."""
        now = _aware("now", now)
        return max(self.next_run_after(last_run_at, now) - now, timedelta(0))

    def with_tz(self, tz: ZoneInfo | str) -> Self:
        """A copy of this schedule that computes wall-clock times in ``tz``."""
        clone = copy.copy(self)
        clone.tz = _zone(tz)
        return clone

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> BaseSchedule:
        """Rebuild a schedule from ``to_dict()`` output (raises ConfigurationError if bad)."""
        kind = data.get("type")
        try:
            if kind == schedule.kind:
                return schedule(
                    float(data["every"]), relative=bool(data.get("relative")), tz=data.get("tz")
                )
            if kind == crontab.kind:
                return crontab(
                    **{name: data.get(name, "*") for name in FIELD_RANGES}, tz=data.get("tz")
                )
            if kind == solar.kind:
                return solar(data["event"], data["lat"], data["lon"], tz=data.get("tz"))
        except (KeyError, TypeError) as exc:
            raise ConfigurationError(f"stored {kind} schedule is incomplete: {data!r}") from exc
        raise ConfigurationError(f"unknown stored schedule type {kind!r} in {data!r}")

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, BaseSchedule)
        return self._key() == other._key() and self.tz == other.tz

    def __hash__(self) -> int:
        return hash((type(self), self._key(), _zone_name(self.tz)))

    def _tz_suffix(self) -> str:
        return "" if self.tz == _UTC else f" {_zone_name(self.tz)}"


class schedule(BaseSchedule):
    """Run every ``run_every`` (seconds or a timedelta).

    With ``relative=False`` (the default) the next run is the last run plus
    the interval, and a schedule that never ran is due at once. With
    ``relative=True`` run times are rounded down to the interval's resolution
    (whole days, hours, minutes or seconds, in ``tz``), so ``schedule(3600,
    relative=True)`` runs on the hour; a schedule that never ran waits for the
    next such boundary.
    """

    kind = "interval"

    def __init__(
        self,
        run_every: float | timedelta,
        relative: bool = False,
        *,
        tz: ZoneInfo | str | None = None,
    ) -> None:
        if isinstance(run_every, bool) or not isinstance(run_every, (int, float, timedelta)):
            raise ConfigurationError(
                f"schedule run_every must be seconds or a timedelta, not {type(run_every).__name__}"
            )
        every = run_every if isinstance(run_every, timedelta) else timedelta(seconds=run_every)
        if every <= timedelta(0):
            raise ConfigurationError(f"schedule run_every must be positive, got {run_every!r}")
        self.run_every = every
        self.relative = relative
        self.tz = _zone(tz)

    @property
    def seconds(self) -> float:
        """The interval in seconds."""
        return self.run_every.total_seconds()

    def _unit(self) -> timedelta:
        if self.run_every >= timedelta(days=1):
            return timedelta(days=1)
        if self.run_every >= timedelta(hours=1):
            return timedelta(hours=1)
        if self.run_every >= timedelta(minutes=1):
            return timedelta(minutes=1)
        return timedelta(seconds=1)

    def _floor(self, instant: datetime) -> datetime:
        unit = self._unit()
        local = instant.astimezone(self.tz).replace(tzinfo=None)
        since_midnight = local - local.replace(hour=0, minute=0, second=0, microsecond=0)
        floored = local - since_midnight % unit
        return floored.replace(tzinfo=self.tz).astimezone(UTC)

    def next_run_after(self, last_run_at: datetime | None, now: datetime) -> datetime:
        """Last run plus the interval (rounded down if relative); ``now`` if it never ran."""
        now = _aware("now", now)
        if last_run_at is None:
            if not self.relative:
                return now
            floored = self._floor(now)
            # one and a half units on, then down: lands on the next boundary even across DST
            return now if floored == now else self._floor(floored + self._unit() * 1.5)
        last = _aware("last_run_at", last_run_at)
        if not self.relative:
            return last + self.run_every
        return max(self._floor(last + self.run_every), last + _TICK)

    def to_dict(self) -> dict[str, Any]:
        """``{'type': 'interval', 'every': seconds, 'relative': bool, 'tz': name}``."""
        return {
            "type": self.kind,
            "every": self.seconds,
            "relative": self.relative,
            "tz": _zone_name(self.tz),
        }

    def _key(self) -> tuple[Any, ...]:
        return (self.run_every, self.relative)

    def __repr__(self) -> str:
        seconds = self.seconds
        unit, size = next(
            (name, size)
            for name, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))
            if seconds >= size or size == 1
        )
        amount = seconds / size
        plural = "" if amount == 1 else "s"
        return f"<freq: {amount:.2f} {unit}{plural}{self._tz_suffix()}>"


def _spec_text(spec: object) -> str:
    """The user's field spelling, kept for repr and storage."""
    if isinstance(spec, str):
        return spec.strip()
    if isinstance(spec, int):
        return str(spec)
    return ",".join(str(v) for v in sorted(spec))  # type: ignore[call-overload]


class crontab(BaseSchedule):
    """Run at wall-clock times matching cron fields, in the schedule's time zone.

    Arguments and syntax are Celery's: ``'*'``, ``'*/15'``, ``'0-5'``,
    ``'1-10/2'``, lists ``'0,30'``, ints, sets of ints, day names
    (``'mon-fri'``, ``'sunday'``) and month names (``'jan'``). Day of week 0 is
    Sunday (7 is accepted as Sunday too). Ranges may wrap (``'fri-mon'``).
    When both ``day_of_month`` and ``day_of_week`` are restricted, a day must
    match both (Celery's rule; Vixie cron would run on either). The parsed
    fields are available as sets: ``minute``, ``hour``, ``day_of_week``,
    ``day_of_month``, ``month_of_year``.
    """

    kind = "crontab"

    def __init__(
        self,
        minute: str | int | frozenset[int] | set[int] | list[int] = "*",
        hour: str | int | frozenset[int] | set[int] | list[int] = "*",
        day_of_week: str | int | frozenset[int] | set[int] | list[int] = "*",
        day_of_month: str | int | frozenset[int] | set[int] | list[int] = "*",
        month_of_year: str | int | frozenset[int] | set[int] | list[int] = "*",
        *,
        tz: ZoneInfo | str | None = None,
    ) -> None:
        specs = {
            "minute": minute,
            "hour": hour,
            "day_of_week": day_of_week,
            "day_of_month": day_of_month,
            "month_of_year": month_of_year,
        }
        parsed = {name: parse_field(name, spec) for name, spec in specs.items()}
        self._texts = {name: _spec_text(spec) for name, spec in specs.items()}
        self.minute = parsed["minute"]
        self.hour = parsed["hour"]
        self.day_of_week = parsed["day_of_week"]
        self.day_of_month = parsed["day_of_month"]
        self.month_of_year = parsed["month_of_year"]
        self._spec = CronSpec(
            self.minute, self.hour, self.day_of_week, self.day_of_month, self.month_of_year
        )
        if not self._spec.can_fire():
            raise ConfigurationError(
                f"crontab day_of_month {self._texts['day_of_month']!r} never occurs in "
                f"month_of_year {self._texts['month_of_year']!r}"
            )
        self.tz = _zone(tz)
        self._memo: tuple[tuple[datetime, ZoneInfo], datetime] | None = None

    def next_run_after(self, last_run_at: datetime | None, now: datetime) -> datetime:
        """The first matching wall time (DST rules applied) strictly after the last run."""
        after = (
            _aware("now", now) - _TICK
            if last_run_at is None
            else _aware("last_run_at", last_run_at)
        )
        # Beat asks again on every tick with the same last run: remember one answer.
        key = (after, self.tz)
        memo = self._memo  # one read: another thread may replace it
        if memo is not None and memo[0] == key:
            return memo[1]
        found = self._spec.next_fire(after, self.tz)
        self._memo = (key, found)
        return found

    def to_dict(self) -> dict[str, Any]:
        """The five fields as the user spelled them, plus ``type`` and ``tz``."""
        return {"type": self.kind, **self._texts, "tz": _zone_name(self.tz)}

    def _key(self) -> tuple[Any, ...]:
        return (self.minute, self.hour, self.day_of_week, self.day_of_month, self.month_of_year)

    def __repr__(self) -> str:
        t = self._texts
        fields = " ".join(
            t[name] for name in ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")
        )
        return f"<crontab: {fields} (m/h/dM/MY/d){self._tz_suffix()}>"


class solar(BaseSchedule):
    """Run at a solar event at a place: ``solar('sunset', -37.81, 144.96)``.

    Events (Celery's): dawn_astronomical, dawn_nautical, dawn_civil, sunrise,
    solar_noon, sunset, dusk_civil, dusk_nautical, dusk_astronomical. ``lat``
    is north-positive and ``lon`` east-positive, in degrees. Where the event
    does not happen on a day (polar day or night), the next day that has it
    is used. Times come from NOAA's equations, accurate to about a minute.
    """

    kind = "solar"

    def __init__(
        self, event: str, lat: float, lon: float, *, tz: ZoneInfo | str | None = None
    ) -> None:
        if event not in EVENTS:
            raise ConfigurationError(f"solar event {event!r} is not one of: {', '.join(EVENTS)}")
        for name, value, limit in (("lat", lat, 90), ("lon", lon, 180)):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigurationError(
                    f"solar {name} must be a number of degrees, not {type(value).__name__}"
                )
            if not -limit <= value <= limit:
                raise ConfigurationError(
                    f"solar {name} {value!r} is out of range: must be -{limit} to {limit}"
                )
        self.event = event
        self.lat = float(lat)
        self.lon = float(lon)
        self.tz = _zone(tz)

    def next_run_after(self, last_run_at: datetime | None, now: datetime) -> datetime:
        """The first occurrence of the event strictly after the last run."""
        after = (
            _aware("now", now) - _TICK
            if last_run_at is None
            else _aware("last_run_at", last_run_at)
        )
        day = after.date() - timedelta(days=1)
        for _ in range(_SOLAR_SEARCH_DAYS):
            instant = event_time(self.event, day, self.lat, self.lon)
            if instant is not None and instant > after:
                return instant
            day += timedelta(days=1)
        raise ConfigurationError(
            f"solar event {self.event!r} does not happen at latitude {self.lat}, "
            f"longitude {self.lon} within {_SOLAR_SEARCH_DAYS} days"
        )

    def to_dict(self) -> dict[str, Any]:
        """``{'type': 'solar', 'event', 'lat', 'lon', 'tz'}``."""
        return {
            "type": self.kind,
            "event": self.event,
            "lat": self.lat,
            "lon": self.lon,
            "tz": _zone_name(self.tz),
        }

    def _key(self) -> tuple[Any, ...]:
        return (self.event, self.lat, self.lon)

    def __repr__(self) -> str:
        return f"<solar: {self.event} at latitude {self.lat}, longitude: {self.lon}>"


def maybe_schedule(value: object, relative: bool = False) -> BaseSchedule:
    """Turn a beat entry's ``schedule`` value into a schedule.

    A number is seconds and a timedelta an interval (both ``schedule``); a
    ``BaseSchedule`` is returned as is; anything else raises ConfigurationError.
    """
    if isinstance(value, BaseSchedule):
        return value
    if isinstance(value, bool):
        raise ConfigurationError("a schedule must be seconds, a timedelta or a schedule, not bool")
    if isinstance(value, (int, float, timedelta)):
        return schedule(value, relative=relative)
    raise ConfigurationError(
        "a schedule must be seconds, a timedelta or a schedule "
        f"(schedule, crontab, solar), not {type(value).__name__}"
    )
