"""Celery's exception names, for ``from celeriac.exceptions import SoftTimeLimitExceeded``."""

from celeriac.errors import (
    ChordError,
    Ignore,
    ImproperlyConfigured,
    MaxRetriesExceededError,
    NotRegistered,
    Reject,
    Retry,
    SoftTimeLimitExceeded,
    TaskRevokedError,
    TimeLimitExceeded,
    TimeoutError,  # noqa: A004 - Celery's name
    WorkerLostError,
)

__all__ = [
    "ChordError",
    "Ignore",
    "ImproperlyConfigured",
    "MaxRetriesExceededError",
    "NotRegistered",
    "Reject",
    "Retry",
    "SoftTimeLimitExceeded",
    "TaskRevokedError",
    "TimeLimitExceeded",
    "TimeoutError",
    "WorkerLostError",
]
