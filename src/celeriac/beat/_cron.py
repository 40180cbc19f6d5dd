"""Cron field parsing and wall-clock matching, with the DST rules of ``crontab``.

Pure code: no I/O, no clock. ``CronSpec`` holds the five parsed fields;
``CronSpec.next_fire`` finds the next firing instant after a given instant in a
time zone. The rules across daylight-saving changes (see
``docs/decisions-beat.md``):

* A spec whose hour field is every hour (``hour='*'``) follows real time: it
  fires at each real instant whose local wall time matches. In the repeated
  hour of a fall-back it fires at both occurrences; wall times that a
  spring-forward skips do not exist, so nothing fires for them.
* A spec that names its hours (``hour=2``, ``hour='8-18'``) is about a time of
  day: every matching wall time fires exactly once. A repeated wall time fires
  at its first occurrence only; a skipped wall time fires once at the first
  real instant after the gap (several skipped times fold into that one run).

Day fields follow Celery, not Vixie cron: when both ``day_of_month`` and
``day_of_week`` are restricted, a day must match both.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from celeriac.errors import ConfigurationError

__all__ = ["FIELD_RANGES", "CronSpec", "parse_field"]

#: Inclusive bounds of each field, in Celery's argument order.
FIELD_RANGES: dict[str, tuple[int, int]] = {
    "minute": (0, 59),
    "hour": (0, 23),
    "day_of_week": (0, 6),
    "day_of_month": (1, 31),
    "month_of_year": (1, 12),
}

_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_DAY_FULL = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTH_FULL = (
    "january", "february", "march", "april", "may", "june", "july",
    "august", "september", "october", "november", "december",
)  # fmt: skip

_NAMES: dict[str, dict[str, int]] = {
    "day_of_week": {
        **{n: i for i, n in enumerate(_DAY_NAMES)},
        **{n: i for i, n in enumerate(_DAY_FULL)},
    },
    "month_of_year": {
        **{n: i + 1 for i, n in enumerate(_MONTH_NAMES)},
        **{n: i + 1 for i, n in enumerate(_MONTH_FULL)},
    },
}

# February counts 29 days: a spec for Feb 29 is valid, it fires in leap years.
_MAX_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)

# Any valid (month, day) pair falls on every weekday within a 28-year cycle.
_SEARCH_DAYS = 366 * 29


def _error(name: str, spec: object, why: str) -> ConfigurationError:
    return ConfigurationError(f"crontab field {name!r} got {spec!r}: {why}")


def _range_text(name: str) -> str:
    lo, hi = FIELD_RANGES[name]
    if name == "day_of_week":
        return "values must be 0-6 (0 and 7 are Sunday) or day names (sun, mon, ...)"
    if name == "month_of_year":
        return "values must be 1-12 or month names (jan, feb, ...)"
    return f"values must be {lo}-{hi}"


def _check(name: str, spec: object, value: int) -> int:
    lo, hi = FIELD_RANGES[name]
    if name == "day_of_week" and value == 7:
        return 0  # cron's other spelling of Sunday
    if not lo <= value <= hi:
        raise _error(name, spec, _range_text(name))
    return value


def _atom(name: str, spec: object, text: str) -> int:
    text = text.strip().lower()
    if not text:
        raise _error(name, spec, "a range needs a value on each side of '-'")
    if text.isdigit():
        return int(text)
    names = _NAMES.get(name)
    if names is not None and text in names:
        return names[text]
    if names is not None:
        raise _error(name, spec, f"{text!r} is not a number or a name; {_range_text(name)}")
    raise _error(name, spec, f"{text!r} is not a number; {_range_text(name)}")


def _part(name: str, spec: object, part: str) -> set[int]:
    lo, hi = FIELD_RANGES[name]
    # day_of_week accepts 7 for Sunday inside ranges too ('5-7'), so parse up to 7.
    top = 7 if name == "day_of_week" else hi
    body, slash, step_text = part.partition("/")
    step = 1
    if slash:
        step_text = step_text.strip()
        if not step_text.isdigit() or int(step_text) == 0:
            raise _error(name, spec, f"step {step_text!r} must be a positive integer")
        step = int(step_text)
    body = body.strip()
    if body.startswith("-"):
        raise _error(name, spec, f"negative values are not allowed; {_range_text(name)}")
    if body == "*":
        start, end = lo, hi
    elif "-" in body:
        first, _, last = body.partition("-")
        start, end = _atom(name, spec, first), _atom(name, spec, last)
    else:
        start = _atom(name, spec, body)
        # 'a/step' counts from a to the top; a bare 'a' is the one value.
        end = top if slash else start
    for value in (start, end):
        if not lo <= value <= top:
            raise _error(name, spec, _range_text(name))
    if start <= end:
        sequence = list(range(start, end + 1))
    else:  # a range that wraps around, as 'fri-mon' or minutes '50-10'
        sequence = list(range(start, top + 1)) + list(range(lo, end + 1))
    return {_check(name, spec, v) for v in sequence[::step]}


def parse_field(name: str, spec: object) -> frozenset[int]:
    """Parse one crontab field (str, int or iterable of ints) into the set of its values.

    Raises ``ConfigurationError`` naming the field and the value on any error.
    """
    if name not in FIELD_RANGES:
        raise ConfigurationError(f"unknown crontab field {name!r}")
    if isinstance(spec, bool):
        raise _error(name, spec, "expected a string, an int or a set of ints, not a bool")
    if isinstance(spec, int):
        return frozenset({_check(name, spec, spec)})
    if isinstance(spec, str):
        values: set[int] = set()
        for part in spec.split(","):
            if not part.strip():
                raise _error(name, spec, "empty part in the list")
            values |= _part(name, spec, part)
        return frozenset(values)
    if isinstance(spec, Iterable):
        items = list(spec)
        if not items:
            raise _error(name, spec, "no values given")
        for item in items:
            if isinstance(item, bool) or not isinstance(item, int):
                raise _error(name, spec, f"{item!r} is not an int")
        return frozenset(_check(name, spec, item) for item in items)
    raise _error(
        name, spec, f"expected a string, an int or a set of ints, not {type(spec).__name__}"
    )


def weekday(day: date) -> int:
    """Day of week with Celery's numbering: 0 is Sunday, 6 is Saturday."""
    return (day.weekday() + 1) % 7


def _gap_end(before: datetime, after: datetime, wall: datetime, tz: ZoneInfo) -> datetime:
    """First real instant in (before, after] whose wall time is not before ``wall``."""
    lo, hi = before, after
    while hi - lo > timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        if mid.astimezone(tz).replace(tzinfo=None) >= wall:
            hi = mid
        else:
            lo = mid
    return hi.replace(microsecond=0)


def resolve_wall(wall: datetime, tz: ZoneInfo, follow_real_time: bool) -> list[datetime]:
    """The UTC instants at which a matching naive wall time fires (0, 1 or 2 of them)."""
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    second = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    if first == second:
        return [first]
    if first < second:  # a repeated wall time (fall-back)
        return [first, second] if follow_real_time else [first]
    # A skipped wall time: zoneinfo maps fold=0 past the gap and fold=1 before it.
    if follow_real_time:
        return []
    return [_gap_end(second, first, wall, tz)]


@dataclass(frozen=True)
class CronSpec:
    """The parsed fields of a crontab; finds firing instants in a time zone."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days_of_week: frozenset[int]
    days_of_month: frozenset[int]
    months: frozenset[int]
    _times: tuple[timedelta, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        times = tuple(
            timedelta(hours=h, minutes=m) for h in sorted(self.hours) for m in sorted(self.minutes)
        )
        object.__setattr__(self, "_times", times)

    @property
    def every_hour(self) -> bool:
        """True when the hour field covers all 24 hours (the spec follows real time)."""
        return len(self.hours) == 24

    def can_fire(self) -> bool:
        """False when no calendar date matches (as day 30 of February)."""
        return any(d <= _MAX_DAYS[m - 1] for m in self.months for d in self.days_of_month)

    def day_matches(self, day: date) -> bool:
        """True when the date matches month, day of month and day of week (all of them)."""
        return (
            day.month in self.months
            and day.day in self.days_of_month
            and weekday(day) in self.days_of_week
        )

    def next_date(self, day: date) -> date:
        """The first matching date on or after ``day``."""
        for _ in range(_SEARCH_DAYS):
            if day.month not in self.months:
                # jump to the first of the next month instead of walking day by day
                day = date(day.year + day.month // 12, day.month % 12 + 1, 1)
                continue
            if self.day_matches(day):
                return day
            day += timedelta(days=1)
        raise ConfigurationError(f"crontab {self} matches no date")  # pragma: no cover

    def fires_on(self, day: date, tz: ZoneInfo) -> list[datetime]:
        """All firing instants (UTC, sorted) of the wall times of ``day``, DST rules applied."""
        midnight = datetime.combine(day, time())
        if self._offset_constant(day, tz):
            base = (midnight - _offset(midnight, tz)).replace(tzinfo=UTC)
            return [base + t for t in self._times]
        return list(_transition_day_fires(self, day, tz))

    def first_fire_after(self, day: date, tz: ZoneInfo, after: datetime) -> datetime | None:
        """The first instant of ``day``'s wall times strictly after ``after``, if any."""
        midnight = datetime.combine(day, time())
        if self._offset_constant(day, tz):
            # No transition today: wall time = instant + fixed offset; bisect the times.
            offset = _offset(midnight, tz)
            since_midnight = after.replace(tzinfo=None) + offset - midnight
            i = bisect.bisect_right(self._times, since_midnight)
            if i == len(self._times):
                return None
            return (midnight + self._times[i] - offset).replace(tzinfo=UTC)
        fires = _transition_day_fires(self, day, tz)
        i = bisect.bisect_right(fires, after)
        return fires[i] if i < len(fires) else None

    def next_fire(self, after: datetime, tz: ZoneInfo) -> datetime:
        """The first firing instant strictly after the aware instant ``after`` (UTC result)."""
        after = after.astimezone(UTC)
        day = after.astimezone(tz).date()
        if not self._offset_constant(day - timedelta(days=1), tz):
            # A repeated wall time of yesterday may come after ``after``.
            day -= timedelta(days=1)
        for _ in range(_SEARCH_DAYS):
            day = self.next_date(day)
            found = self.first_fire_after(day, tz, after)
            if found is not None:
                # A fall-back across midnight can put tomorrow's first run before
                # a repeat of today's last one.
                following = self.next_date(day + timedelta(days=1))
                if following - day == timedelta(days=1) and not self._offset_constant(day, tz):
                    other = self.first_fire_after(following, tz, after)
                    if other is not None and other < found:
                        return other
                return found
            day += timedelta(days=1)
        raise ConfigurationError(f"crontab {self} has no run after {after}")  # pragma: no cover

    @staticmethod
    def _offset_constant(day: date, tz: ZoneInfo) -> bool:
        # Two samples per day: a zone that changes its offset and changes it
        # back within the same day is not handled (no zone in tzdata does it).
        start = datetime.combine(day, time())
        return _offset(start, tz) == _offset(start + timedelta(days=1), tz)


# A scheduler asks about the same transition day on every tick of that day;
# resolving up to 1440 wall times each time would cost milliseconds.
@functools.lru_cache(maxsize=64)
def _transition_day_fires(spec: CronSpec, day: date, tz: ZoneInfo) -> tuple[datetime, ...]:
    midnight = datetime.combine(day, time())
    instants: set[datetime] = set()
    for t in spec._times:
        instants.update(resolve_wall(midnight + t, tz, spec.every_hour))
    return tuple(sorted(instants))


def _offset(wall: datetime, tz: ZoneInfo) -> timedelta:
    offset = tz.utcoffset(wall)
    assert offset is not None  # a ZoneInfo always has one
    return offset
