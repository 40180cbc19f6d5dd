"""Celery-compatible import path for schedules: ``from celeriac.schedules import crontab``.

The implementation lives in ``celeriac.beat.schedules``.
"""

from celeriac.beat.schedules import BaseSchedule, crontab, maybe_schedule, schedule, solar

__all__ = ["BaseSchedule", "crontab", "maybe_schedule", "schedule", "solar"]
