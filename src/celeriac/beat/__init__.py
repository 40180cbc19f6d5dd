"""celeriac.beat: periodic tasks.

``schedules`` holds the pure schedule maths (``schedule``, ``crontab``,
``solar``, ``maybe_schedule``); ``_cron`` and ``_solar`` are its helpers.
On top of them: ``entries`` (``beat_schedule`` entries as values),
``stores`` (run marks, the leader lease and dynamic entries in memory, a
file, Redis or the SQLite broker), ``leader`` (the lease loop), ``scheduler``
(the asyncio loop that sends due tasks) and ``api`` (``BeatSchedule``: add,
change and remove entries at run time). This package imports nothing at
import time, so ``from celeriac.schedules import crontab`` stays light. May
import: worker and below, errors, config, the standard library.
"""
