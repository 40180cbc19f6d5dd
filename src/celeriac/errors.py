"""The whole celeriac exception tree, in one module.

Every exception that celeriac raises on purpose is defined here. Library errors
(``redis.ConnectionError``, ``aiormq`` errors, ``sqlite3.OperationalError``) are
translated at the boundary of the module that talks to the library, so callers
only ever catch these classes. The tree (kept true by
``tests/unit/test_errors.py``)::

    CeleriacError
    ├── ConfigurationError (ValueError)
    │   ├── ImproperlyConfigured
    │   ├── UnknownSettingError (KeyError)
    │   ├── BadURLError
    │   └── AppImportError (ImportError)
    ├── ProtocolError (ValueError)
    │   ├── DecodeError
    │   ├── EncodeError (TypeError)
    │   ├── ContentDisallowed
    │   └── SecurityError
    ├── OperationalError (ConnectionError)
    │   └── BrokerUnreachable
    ├── NotRegistered (KeyError)
    ├── TimeoutError (builtins.TimeoutError)
    ├── TaskError
    │   ├── TaskRevokedError
    │   ├── TimeLimitExceeded
    │   ├── WorkerLostError
    │   ├── MaxRetriesExceededError
    │   ├── ChordError
    │   └── RemoteTaskError        (stand-in for an exception class we cannot import)
    ├── TaskPredicate               (control flow raised inside tasks)
    │   ├── Retry
    │   ├── Ignore
    │   └── Reject
    └── SoftTimeLimitExceeded (raised inside a task; not a CeleriacError subclass
                               of TaskError so that ``except Exception`` in user
                               code still sees it)
"""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Any

__all__ = [
    "AppImportError",
    "BadURLError",
    "BrokerUnreachable",
    "CeleriacError",
    "ChordError",
    "ConfigurationError",
    "ContentDisallowed",
    "DecodeError",
    "EncodeError",
    "Ignore",
    "ImproperlyConfigured",
    "MaxRetriesExceededError",
    "NotRegistered",
    "OperationalError",
    "ProtocolError",
    "Reject",
    "RemoteTaskError",
    "Retry",
    "SecurityError",
    "SoftTimeLimitExceeded",
    "TaskError",
    "TaskPredicate",
    "TaskRevokedError",
    "TimeLimitExceeded",
    "TimeoutError",
    "UnknownSettingError",
    "WorkerLostError",
]


class CeleriacError(Exception):
    """Base class of every error celeriac raises on purpose."""


# -- configuration -----------------------------------------------------------


class ConfigurationError(CeleriacError, ValueError):
    """A setting, URL or app reference is wrong; the message names it and the fix."""


class ImproperlyConfigured(ConfigurationError):
    """A combination of settings cannot work (Celery's name for it)."""


class UnknownSettingError(ConfigurationError, KeyError):
    """A setting name that celeriac does not know, with a 'did you mean' hint."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class BadURLError(ConfigurationError):
    """A broker or backend URL that cannot be parsed or has an unknown scheme."""


class AppImportError(ConfigurationError, ImportError):
    """``-A module[:attr]`` names something that cannot be imported or found."""


# -- protocol ----------------------------------------------------------------


class ProtocolError(CeleriacError, ValueError):
    """A message on the wire is not what the Celery protocol allows."""


class DecodeError(ProtocolError):
    """A body or envelope that cannot be decoded (bad JSON, bad base64, ...)."""


class EncodeError(ProtocolError, TypeError):
    """A value that the chosen serializer cannot encode (kombu's ``EncodeError``)."""


class ContentDisallowed(ProtocolError):
    """A content type that is not in ``accept_content`` (pickle unless accepted)."""


class SecurityError(ProtocolError):
    """A signed message whose signature is missing, invalid or untrusted."""


# -- connections -------------------------------------------------------------


class OperationalError(CeleriacError, ConnectionError):
    """Talking to a broker or result store failed (translated at the boundary)."""


class BrokerUnreachable(OperationalError):
    """The broker cannot be reached at all; the message names the (masked) URL."""


# -- lookups and waiting -----------------------------------------------------


class NotRegistered(CeleriacError, KeyError):
    """No task with this name is registered in the app."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class TimeoutError(CeleriacError, builtins.TimeoutError):  # noqa: A001 - Celery's name
    """Waiting for a result took longer than the given timeout."""


# -- task outcomes -----------------------------------------------------------


class TaskError(CeleriacError):
    """Base of errors that describe how a task ended."""


class TaskRevokedError(TaskError):
    """The task was revoked (or expired) and did not run to completion."""


class TimeLimitExceeded(TaskError):
    """The hard time limit was reached; the process running the task was replaced."""


class WorkerLostError(TaskError):
    """The process executing the task died before it finished."""


class MaxRetriesExceededError(TaskError):
    """``Task.retry`` was called more often than ``max_retries`` allows."""


class ChordError(TaskError):
    """A header task of a chord failed, so the chord body cannot run."""


class RemoteTaskError(TaskError):
    """Stand-in for a remote exception whose class cannot be imported here.

    ``exc_type`` and ``exc_module`` name the original class; ``str()`` shows
    ``module.Type: message``.
    """

    def __init__(self, exc_type: str, exc_module: str | None, message: Any) -> None:
        self.exc_type = exc_type
        self.exc_module = exc_module
        self.exc_message = message
        super().__init__(exc_type, exc_module, message)

    def __str__(self) -> str:
        qual = f"{self.exc_module}.{self.exc_type}" if self.exc_module else self.exc_type
        return f"{qual}: {self.exc_message}"


# -- control flow raised inside tasks ----------------------------------------


class TaskPredicate(CeleriacError):
    """Base of exceptions a task raises to steer the worker, not to fail."""


class Retry(TaskPredicate):
    """Raised by ``Task.retry``: the task is sent again and its state is RETRY."""

    def __init__(
        self,
        message: str | None = None,
        exc: BaseException | None = None,
        when: float | datetime | None = None,
        **kwargs: Any,
    ) -> None:
        self.message = message
        self.exc = exc
        self.when = when
        super().__init__(message, exc, when)

    def humanize(self) -> str:
        """Describe when the retry happens, as the worker logs it."""
        if isinstance(self.when, (int, float)):
            return f"in {self.when}s"
        if self.when is None:
            return "now"
        return f"at {self.when}"

    def __str__(self) -> str:
        if self.message:
            return self.message
        if self.exc is not None:
            return f"Retry {self.humanize()}: {self.exc!r}"
        return f"Retry {self.humanize()}"


class Ignore(TaskPredicate):
    """Raised by a task so that the worker neither stores a result nor acks as failed."""


class Reject(TaskPredicate):
    """Raised by a task to reject its message (requeue or dead-letter)."""

    def __init__(self, reason: Any = None, requeue: bool = False) -> None:
        self.reason = reason
        self.requeue = requeue
        super().__init__(reason, requeue)


class SoftTimeLimitExceeded(CeleriacError):
    """Raised inside a task when its soft time limit is reached, so it can clean up."""
