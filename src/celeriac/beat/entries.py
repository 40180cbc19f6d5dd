"""Beat entries: one periodic task each, read from ``beat_schedule`` or a store.

An :class:`Entry` is a value: name, task name, schedule (with the app's time
zone applied), arguments and send options. :func:`entries_from_config` reads
``app.conf.beat_schedule`` (Celery's shape, also reached through the old name
``CELERYBEAT_SCHEDULE``); :meth:`Entry.to_dict`/:meth:`Entry.from_dict` are the
JSON form kept in beat stores for dynamic entries. Every error is one
:class:`~celeriac.errors.ConfigurationError` line that names the entry and the
field: ``beat entry 'nightly': field 'schedule': crontab field 'hour' got
'25': values must be 0-23``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from celeriac.beat.schedules import BaseSchedule, crontab, maybe_schedule
from celeriac.errors import ConfigurationError

__all__ = [
    "Entry",
    "app_timezone",
    "crontab_from_string",
    "entries_from_config",
    "from_us",
    "to_us",
]

_UTC = ZoneInfo("UTC")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_KNOWN_FIELDS = frozenset({"task", "schedule", "args", "kwargs", "options", "relative"})


def to_us(instant: datetime) -> int:
    """An aware datetime as whole microseconds since the epoch (what stores keep)."""
    return (instant - _EPOCH) // _US


def from_us(value: int) -> datetime:
    """The aware UTC datetime of :func:`to_us` output."""
    return _EPOCH + timedelta(microseconds=int(value))


def _local_zone() -> ZoneInfo:
    name = os.environ.get("TZ", "").lstrip(":")
    try:
        if name:
            return ZoneInfo(name)
        with open("/etc/localtime", "rb") as fh:
            return ZoneInfo.from_file(fh, key="localtime")
    except (OSError, ValueError, ZoneInfoNotFoundError):
        return _UTC


def app_timezone(settings: Any) -> ZoneInfo:
    """The zone wall-clock schedules use: ``timezone``, else UTC (or the host's zone
    when ``enable_utc`` is off, as Celery)."""
    if settings.timezone:
        try:
            return ZoneInfo(settings.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigurationError(f"unknown timezone {settings.timezone!r}") from exc
    return _UTC if settings.enable_utc else _local_zone()


def _fail(name: str, what: str, message: str) -> ConfigurationError:
    return ConfigurationError(f"beat entry {name!r}: field {what!r}: {message}")


def crontab_from_string(text: str, tz: ZoneInfo | None = None) -> crontab:
    """``'m h dom mon dow'`` (cron's order) as a :class:`crontab`."""
    parts = text.split()
    if len(parts) != 5:
        raise ConfigurationError(
            f"crontab {text!r} must have 5 fields: minute hour day_of_month month_of_year "
            f"day_of_week, got {len(parts)}"
        )
    minute, hour, dom, month, dow = parts
    return crontab(minute, hour, day_of_week=dow, day_of_month=dom, month_of_year=month, tz=tz)


def _schedule_of(name: str, value: Any, relative: bool, tz: ZoneInfo) -> BaseSchedule:
    try:
        if isinstance(value, Mapping):
            sched = BaseSchedule.from_dict(value)
        elif isinstance(value, str):
            sched = crontab_from_string(value)
        else:
            sched = maybe_schedule(value, relative=relative)
    except ConfigurationError as exc:
        raise _fail(name, "schedule", str(exc)) from None
    # A schedule built without a zone (UTC, the default) follows the app's zone.
    return sched.with_tz(tz) if sched.tz == _UTC and tz != _UTC else sched


def _json_ready(name: str, what: str, value: Any) -> None:
    try:
        json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise _fail(name, what, f"must be JSON-serialisable to be stored: {exc}") from None


@dataclass(frozen=True, slots=True)
class Entry:
    """One periodic task: send ``task`` with ``args``/``kwargs``/``options`` on ``schedule``."""

    name: str
    task: str
    schedule: BaseSchedule
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)
    relative: bool = False
    #: True for entries added at run time (kept in a beat store), False for beat_schedule.
    dynamic: bool = False

    @classmethod
    def from_config(
        cls, name: str, spec: Any, tz: ZoneInfo = _UTC, *, dynamic: bool = False
    ) -> Entry:
        """An entry from Celery's dict shape; raises one line naming the entry and field."""
        if not isinstance(spec, Mapping):
            raise ConfigurationError(
                f"beat entry {name!r} must be a dict with 'task' and 'schedule', "
                f"not {type(spec).__name__}"
            )
        unknown = sorted(set(spec) - _KNOWN_FIELDS)
        if unknown:
            known = ", ".join(sorted(_KNOWN_FIELDS))
            raise _fail(name, unknown[0], f"unknown field (known: {known})")
        for required in ("task", "schedule"):
            if required not in spec or spec[required] is None:
                raise _fail(name, required, "is missing")
        task = spec["task"]
        task = getattr(task, "name", task)
        if not isinstance(task, str) or not task:
            raise _fail(name, "task", f"must be a task name, not {task!r}")
        relative = spec.get("relative", False)
        if not isinstance(relative, bool):
            raise _fail(name, "relative", f"must be True or False, not {relative!r}")
        args = spec.get("args") or ()
        if isinstance(args, (str, bytes, Mapping)) or not hasattr(args, "__iter__"):
            raise _fail(name, "args", f"must be a list or tuple, not {type(args).__name__}")
        kwargs = spec.get("kwargs") or {}
        options = spec.get("options") or {}
        for what, value in (("kwargs", kwargs), ("options", options)):
            if not isinstance(value, Mapping):
                raise _fail(name, what, f"must be a dict, not {type(value).__name__}")
        return cls(
            name=name,
            task=task,
            schedule=_schedule_of(name, spec["schedule"], relative, tz),
            args=tuple(args),
            kwargs=dict(kwargs),
            options=dict(options),
            relative=relative,
            dynamic=dynamic,
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able form kept in beat stores (the schedule as ``to_dict()``)."""
        data = {
            "task": self.task,
            "schedule": self.schedule.to_dict(),
            "args": list(self.args),
            "kwargs": dict(self.kwargs),
            "options": dict(self.options),
            "relative": self.relative,
        }
        for what in ("args", "kwargs", "options"):
            _json_ready(self.name, what, data[what])
        return data

    @classmethod
    def from_dict(cls, name: str, data: Mapping[str, Any], tz: ZoneInfo = _UTC) -> Entry:
        """Rebuild a stored entry (raises ConfigurationError naming the entry if bad)."""
        return cls.from_config(name, data, tz, dynamic=True)

    def describe(self) -> str:
        """``name: task every/at ... args kwargs`` for ``beat list`` and logs."""
        parts = [f"{self.name}: {self.task} {self.schedule!r}"]
        if self.args:
            parts.append(f"args={list(self.args)!r}")
        if self.kwargs:
            parts.append(f"kwargs={dict(self.kwargs)!r}")
        if self.options:
            parts.append(f"options={dict(self.options)!r}")
        if self.dynamic:
            parts.append("(dynamic)")
        return " ".join(parts)


def entries_from_config(table: Mapping[str, Any] | None, tz: ZoneInfo = _UTC) -> dict[str, Entry]:
    """All entries of a ``beat_schedule`` mapping, validated (the first bad one raises)."""
    entries: dict[str, Entry] = {}
    for name, spec in (table or {}).items():
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"beat_schedule keys must be entry names, got {name!r}")
        entries[name] = Entry.from_config(name, spec, tz)
    return entries
