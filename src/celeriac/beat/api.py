"""Dynamic periodic tasks: add, change and remove beat entries at run time.

::

    from celeriac.beat.api import BeatSchedule
    from celeriac.schedules import crontab

    with BeatSchedule(app) as beat:
        beat.add_entry("report", "tasks.report", crontab(minute=0, hour=7), args=[1])
        beat.add_entry("poll", tasks.poll, 30.0, options={"queue": "polls"})
        beat.remove_entry("old-job")
        for entry in beat.list_entries():
            print(entry.describe())

Entries are written to the app's beat store (the one ``celeriac beat`` uses:
Redis or the SQLite broker file when the broker is one of those, else the
schedule file), so every running beat sees them within its refresh interval
(at most 5 s by default). Adding an entry under an existing dynamic name
changes it; a dynamic entry with the name of a ``beat_schedule`` entry
overrides that entry until removed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

from celeriac.beat.entries import Entry, app_timezone, entries_from_config
from celeriac.beat.stores import BeatStore, open_store

__all__ = ["BeatSchedule"]


class BeatSchedule:
    """The entries of an app's beat: its ``beat_schedule`` plus the dynamic ones in ``store``."""

    def __init__(self, app: Any, store: BeatStore | None = None) -> None:
        self.app = app
        self.store = store if store is not None else open_store(app)
        self._owns_store = store is None
        self.tz = app_timezone(app.conf.settings)

    def add_entry(
        self,
        name: str,
        task: Any,
        schedule: Any,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
        *,
        relative: bool = False,
    ) -> Entry:
        """Add or replace dynamic entry ``name``; ``task`` is a name or a task object.

        ``schedule`` is anything ``beat_schedule`` accepts (seconds, timedelta,
        ``schedule``, ``crontab``, ``solar``) or a ``'m h dom mon dow'`` string.
        Arguments and options must be JSON-serialisable. Raises
        :class:`~celeriac.errors.ConfigurationError` naming the field if bad.
        """
        spec = {
            "task": getattr(task, "name", task),
            "schedule": schedule,
            "args": tuple(args),
            "kwargs": dict(kwargs or {}),
            "options": dict(options or {}),
            "relative": relative,
        }
        entry = Entry.from_config(name, spec, self.tz, dynamic=True)
        self.store.put_entry(name, entry.to_dict())
        return entry

    def remove_entry(self, name: str) -> bool:
        """Remove dynamic entry ``name``; False if there is none (``beat_schedule``
        entries live in the configuration and cannot be removed here)."""
        return self.store.remove_entry(name)

    def dynamic_entries(self) -> dict[str, Entry]:
        """The entries added at run time (bad stored ones are left out)."""
        entries: dict[str, Entry] = {}
        for name, data in self.store.entries().items():
            try:
                entries[name] = Entry.from_dict(name, data, self.tz)
            except ValueError:
                continue
        return entries

    def list_entries(self) -> list[Entry]:
        """Every entry a beat would run now, sorted by name (dynamic ones override)."""
        self.app.finalize()
        merged = {
            **entries_from_config(self.app.conf.settings.beat_schedule, self.tz),
            **self.dynamic_entries(),
        }
        return [merged[name] for name in sorted(merged)]

    def close(self) -> None:
        """Close the store if this object opened it."""
        if self._owns_store:
            self.store.close()

    def __enter__(self) -> BeatSchedule:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
