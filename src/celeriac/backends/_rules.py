"""Rules every result backend applies the same way (kept in one place)."""

from __future__ import annotations

from celeriac import errors
from celeriac.protocol.states import READY_STATES, may_overwrite

__all__ = ["may_replace", "wait_timeout"]


def may_replace(current: str | None, new: str) -> bool:
    """Whether a stored ``current`` state may be replaced by ``new``.

    A ready state (SUCCESS, FAILURE, REVOKED) is never replaced by a non-ready
    one: a late STARTED or RETRY, e.g. from a redelivered message, must not make
    a finished task look unfinished. SUCCESS is only replaced by SUCCESS.
    """
    if current is None:
        return True
    if current in READY_STATES and new not in READY_STATES:
        return False
    return may_overwrite(current, new)


def wait_timeout(task_id: str, timeout: float | None) -> errors.TimeoutError:
    """The error ``wait`` raises when ``task_id`` is not ready within ``timeout``."""
    return errors.TimeoutError(f"the result of task {task_id} was not ready within {timeout} s")
