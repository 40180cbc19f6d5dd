"""What the consumer reads from an outcome and a task's options after a run."""

from __future__ import annotations

from typing import Any

from celeriac import signals
from celeriac.app.trace import Outcome
from celeriac.worker.request import Request

__all__ = ["ack_on_failure", "exc_type", "is_worker_lost", "reject_on_worker_lost",
           "send_revoked"]


def exc_type(out: Outcome) -> str | None:
    """The wire name of the outcome's exception type, if any."""
    value = out.exc_wire.get("exc_type") if out.exc_wire else None
    return value if isinstance(value, str) else None


def is_worker_lost(out: Outcome) -> bool:
    """Whether the process running the job died (prefork)."""
    return exc_type(out) == "WorkerLostError"


def send_revoked(request: Request, *, terminated: bool, signum: int | None,
                 expired: bool) -> None:
    """The ``task_revoked`` signal, when anyone listens."""
    if signals.task_revoked.receivers:
        signals.task_revoked.send(sender=request.task, request=request, terminated=terminated,
                                  signum=signum, expired=expired)


def reject_on_worker_lost(app: Any, request: Request) -> bool:
    """The task's ``reject_on_worker_lost``, else the app's setting."""
    value = getattr(request.task, "reject_on_worker_lost", None)
    return bool(app.conf.settings.task_reject_on_worker_lost if value is None else value)


def ack_on_failure(app: Any, request: Request) -> bool:
    """The task's ``acks_on_failure_or_timeout``, else the app's setting."""
    value = getattr(request.task, "acks_on_failure_or_timeout", None)
    return bool(app.conf.settings.task_acks_on_failure_or_timeout if value is None else value)
