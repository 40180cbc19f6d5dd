"""Exceptions on the wire: Celery's ``{"exc_type", "exc_message", "exc_module"}`` dict.

A failed task's result (and a RETRY/REVOKED state's) is the exception in this
form; ``exc_message`` is the exception's ``args`` as a list.

**Reading one back is a security boundary**: the dict comes from whoever can
write to the broker or result store. :func:`exception_from_wire` therefore
never imports anything and never looks up anything but an exception class:

1. Celery's own task-outcome exceptions (``celery.exceptions`` /
   ``billiard.exceptions`` names such as ``TimeLimitExceeded``) and names in
   ``celeriac.errors`` map to :mod:`celeriac.errors` classes.
2. ``builtins`` names resolve to builtin classes.
3. Any other module is used only if it is *already imported* (present in
   ``sys.modules``), and the name must be a plain identifier naming a class.
4. In every case the class must be a subclass of :class:`Exception` (so not
   ``SystemExit``/``KeyboardInterrupt``, and never a function such as
   ``os.system``); anything else becomes
   :class:`~celeriac.errors.RemoteTaskError`, which keeps the original names
   and arguments and is written back to the wire unchanged.

Writing maps celeriac's outcome exceptions to the ``celery.exceptions`` names
so Celery clients rebuild their own classes.
"""

from __future__ import annotations

import builtins
import sys
from collections.abc import Mapping
from typing import Any

from celeriac import errors

__all__ = ["exception_from_wire", "exception_to_wire", "is_wire_exception", "result_exception"]

CELERY_EXCEPTIONS_MODULE = "celery.exceptions"

# Celery's exception name -> ours. Celery re-exports billiard's time-limit and
# worker-lost errors, so Celery workers write ``billiard.exceptions`` for them.
_CELERY_TO_OURS: dict[str, type[BaseException]] = {
    "TaskRevokedError": errors.TaskRevokedError,
    "TimeLimitExceeded": errors.TimeLimitExceeded,
    "SoftTimeLimitExceeded": errors.SoftTimeLimitExceeded,
    "WorkerLostError": errors.WorkerLostError,
    "MaxRetriesExceededError": errors.MaxRetriesExceededError,
    "ChordError": errors.ChordError,
    "Retry": errors.Retry,
    "Ignore": errors.Ignore,
    "Reject": errors.Reject,
    "NotRegistered": errors.NotRegistered,
    "TimeoutError": errors.TimeoutError,
}
_OURS_TO_CELERY = {cls: name for name, cls in _CELERY_TO_OURS.items()}
_CELERY_MODULES = frozenset({CELERY_EXCEPTIONS_MODULE, "billiard.exceptions"})
_OUR_MODULES = frozenset({"celeriac.errors", "celeriac.exceptions"})

_JSON_SCALARS = (str, int, float, bool, type(None))


def _wire_safe(value: Any) -> Any:
    """``value`` if it is plain JSON data, else its ``repr()`` (args can be anything)."""
    if isinstance(value, _JSON_SCALARS):
        return value
    if isinstance(value, (list, tuple)):
        return [_wire_safe(item) for item in value]
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        return {key: _wire_safe(item) for key, item in value.items()}
    try:
        return repr(value)
    except Exception:
        return f"<unrepresentable {type(value).__name__}>"


def exception_to_wire(exc: BaseException) -> dict[str, Any]:
    """Describe ``exc`` as Celery stores it: ``exc_type``, ``exc_message``, ``exc_module``.

    Arguments that are not plain JSON data are replaced by their ``repr()``.
    A :class:`~celeriac.errors.RemoteTaskError` is written as the exception it
    stands for.
    """
    if isinstance(exc, errors.RemoteTaskError):
        message = exc.exc_message
        args = message if isinstance(message, list) else [message]
        return {
            "exc_type": exc.exc_type,
            "exc_message": _wire_safe(args),
            "exc_module": exc.exc_module,
        }
    cls = type(exc)
    celery_name = _OURS_TO_CELERY.get(cls)
    if celery_name is not None:
        return {
            "exc_type": celery_name,
            "exc_message": _wire_safe(list(exc.args)),
            "exc_module": CELERY_EXCEPTIONS_MODULE,
        }
    return {
        "exc_type": cls.__name__,
        "exc_message": _wire_safe(list(exc.args)),
        "exc_module": cls.__module__,
    }


def is_wire_exception(value: Any) -> bool:
    """Whether ``value`` looks like a serialized exception dict."""
    return isinstance(value, Mapping) and isinstance(value.get("exc_type"), str)


def _resolve(exc_type: str, exc_module: str | None) -> type[Exception] | None:
    if not exc_type.isidentifier():
        return None
    found: Any = None
    if exc_module in _CELERY_MODULES or exc_module in _OUR_MODULES:
        found = _CELERY_TO_OURS.get(exc_type)
        if found is None and exc_module in _OUR_MODULES:
            found = vars(errors).get(exc_type)
    elif exc_module in (None, "", "builtins", "exceptions"):
        found = vars(builtins).get(exc_type)
    else:
        module = sys.modules.get(exc_module)  # never import: importing runs code
        if module is not None:
            # vars(), not getattr(): a module-level __getattr__ could run code.
            found = vars(module).get(exc_type)
    if isinstance(found, type) and issubclass(found, Exception):
        return found
    return None


def _remote(exc_type: str, exc_module: str | None, args: list[Any]) -> errors.RemoteTaskError:
    single = len(args) == 1 and not isinstance(args[0], list)
    return errors.RemoteTaskError(exc_type, exc_module, args[0] if single else args)


def exception_from_wire(d: Mapping[str, Any]) -> BaseException:
    """Rebuild an exception from its wire dict, safely (see the module docstring)."""
    exc_type = d.get("exc_type")
    exc_module = d.get("exc_module")
    message = d.get("exc_message")
    if not isinstance(exc_type, str) or not exc_type:
        return errors.RemoteTaskError("UnknownError", None, message)
    if exc_module is not None and not isinstance(exc_module, str):
        exc_module = str(exc_module)
    if message is None:
        args: list[Any] = []
    elif isinstance(message, (list, tuple)):
        args = list(message)
    else:  # very old Celery stored a string
        args = [message]
    cls = _resolve(exc_type, exc_module)
    if cls is None:
        return _remote(exc_type, exc_module, args)
    try:
        return cls(*args)
    except Exception:  # a constructor that wants other arguments
        return _remote(exc_type, exc_module, args)


def result_exception(value: Any) -> BaseException:
    """The exception held in a stored result: a wire dict, or (pickle) the object."""
    if isinstance(value, BaseException):
        return value
    if isinstance(value, Mapping):
        return exception_from_wire(value)
    return errors.RemoteTaskError("UnknownError", None, value)
