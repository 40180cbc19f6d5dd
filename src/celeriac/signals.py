"""Signals: named hooks that user code connects to, as in Celery.

``Signal.connect`` works as a decorator (``@task_prerun.connect``) or a call,
optionally restricted to one ``sender``. ``send`` calls every receiver with
``sender`` and keyword arguments and returns ``[(receiver, result), ...]``; a
receiver that raises is logged and does not stop the others (use
``send_robust=False`` semantics via :meth:`Signal.send_strict` where a failure
must propagate).
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable
from typing import Any, TypeVar, overload

__all__ = [
    "Signal",
    "after_setup_logger",
    "after_task_publish",
    "beat_init",
    "before_task_publish",
    "celeryd_after_setup",
    "celeryd_init",
    "import_modules",
    "setup_logging",
    "task_failure",
    "task_internal_error",
    "task_postrun",
    "task_prerun",
    "task_received",
    "task_rejected",
    "task_retry",
    "task_revoked",
    "task_success",
    "task_unknown",
    "worker_init",
    "worker_process_init",
    "worker_process_shutdown",
    "worker_ready",
    "worker_shutdown",
    "worker_shutting_down",
]

logger = logging.getLogger("celeriac.signals")

F = TypeVar("F", bound=Callable[..., Any])
_ANY = object()


class Signal:
    """A named hook; receivers are held weakly unless ``weak=False``."""

    def __init__(self, name: str, providing_args: tuple[str, ...] = ()) -> None:
        self.name = name
        self.providing_args = providing_args
        self._lock = threading.Lock()
        self._receivers: list[tuple[Any, object, Callable[[], Callable[..., Any] | None]]] = []

    def __repr__(self) -> str:
        return f"<Signal: {self.name}>"

    @overload
    def connect(self, receiver: F, *, sender: Any = ..., weak: bool = ...) -> F: ...

    @overload
    def connect(
        self, receiver: None = None, *, sender: Any = ..., weak: bool = ...
    ) -> Callable[[F], F]: ...

    def connect(
        self, receiver: F | None = None, *, sender: Any = _ANY, weak: bool = True
    ) -> F | Callable[[F], F]:
        """Connect ``receiver`` (or decorate one) to this signal."""
        if receiver is None:

            def decorator(func: F) -> F:
                self.connect(func, sender=sender, weak=weak)
                return func

            return decorator
        ref: Callable[[], Callable[..., Any] | None]
        if weak:
            try:
                ref = weakref.WeakMethod(receiver) if hasattr(receiver, "__self__") else (
                    weakref.ref(receiver)
                )
            except TypeError:
                ref = _strong(receiver)
        else:
            ref = _strong(receiver)
        key = _key(receiver)
        with self._lock:
            if not any(k == key and s is sender for k, s, _ in self._receivers):
                self._receivers.append((key, sender, ref))
        return receiver

    def disconnect(self, receiver: Callable[..., Any], *, sender: Any = _ANY) -> bool:
        """Remove ``receiver``; returns whether it was connected."""
        key = _key(receiver)
        with self._lock:
            before = len(self._receivers)
            self._receivers = [
                r for r in self._receivers if not (r[0] == key and r[1] is sender)
            ]
            return len(self._receivers) != before

    @property
    def connected(self) -> bool:
        """Whether any receiver was connected (one test, for hot paths that would
        otherwise build a signal's arguments for nobody)."""
        return bool(self._receivers)

    @property
    def receivers(self) -> list[Callable[..., Any]]:
        """The live receivers, in connection order."""
        return [f for _, _, ref in self._receivers if (f := ref()) is not None]

    def _live(self, sender: Any) -> list[Callable[..., Any]]:
        out = []
        for _, wanted, ref in self._receivers:
            func = ref()
            if func is not None and (wanted is _ANY or wanted is sender or wanted == sender):
                out.append(func)
        return out

    def send(self, sender: Any = None, **named: Any) -> list[tuple[Callable[..., Any], Any]]:
        """Call every receiver; a receiver's exception is logged and returned."""
        if not self._receivers:
            return []
        results: list[tuple[Callable[..., Any], Any]] = []
        for func in self._live(sender):
            try:
                results.append((func, func(sender=sender, signal=self, **named)))
            except Exception as exc:
                logger.exception("Signal handler %r for %s raised: %r", func, self.name, exc)
                results.append((func, exc))
        return results

    def send_strict(self, sender: Any = None, **named: Any) -> list[tuple[Callable[..., Any], Any]]:
        """Like :meth:`send`, but a receiver's exception propagates."""
        return [
            (func, func(sender=sender, signal=self, **named)) for func in self._live(sender)
        ]


def _strong(func: Callable[..., Any]) -> Callable[[], Callable[..., Any]]:
    return lambda: func


def _key(func: Callable[..., Any]) -> Any:
    if hasattr(func, "__self__") and hasattr(func, "__func__"):
        return (id(func.__self__), id(func.__func__))
    return id(func)


before_task_publish = Signal("before_task_publish")
after_task_publish = Signal("after_task_publish")
task_received = Signal("task_received")
task_prerun = Signal("task_prerun")
task_postrun = Signal("task_postrun")
task_success = Signal("task_success")
task_retry = Signal("task_retry")
task_failure = Signal("task_failure")
task_internal_error = Signal("task_internal_error")
task_revoked = Signal("task_revoked")
task_unknown = Signal("task_unknown")
task_rejected = Signal("task_rejected")
celeryd_init = Signal("celeryd_init")
celeryd_after_setup = Signal("celeryd_after_setup")
import_modules = Signal("import_modules")
worker_init = Signal("worker_init")
worker_process_init = Signal("worker_process_init")
worker_process_shutdown = Signal("worker_process_shutdown")
worker_ready = Signal("worker_ready")
worker_shutting_down = Signal("worker_shutting_down")
worker_shutdown = Signal("worker_shutdown")
setup_logging = Signal("setup_logging")
after_setup_logger = Signal("after_setup_logger")
beat_init = Signal("beat_init")
