"""The ``revoke`` remote-control command, in Celery's pidbox shape.

``celery control revoke`` and ``AsyncResult.revoke()`` broadcast a pidbox
request (see :mod:`celeriac.protocol.pidbox`) whose method is ``revoke`` and
whose arguments are ``{"task_id": <id or [ids]>, "terminate": bool,
"signal": "SIGTERM"}``. Workers mark the ids revoked and, with ``terminate``,
stop them if they are running.
"""

from __future__ import annotations

import signal as signal_module
import time
from collections.abc import Sequence

from celeriac.errors import DecodeError
from celeriac.protocol.pidbox import ControlRequest

__all__ = ["REVOKE_METHOD", "RevokeOrder", "revoke_order", "revoke_request", "signal_number"]

REVOKE_METHOD = "revoke"


def revoke_request(
    task_ids: str | Sequence[str],
    *,
    terminate: bool = False,
    signal: str | int = "SIGTERM",
    destination: Sequence[str] | None = None,
    ttl: float | None = None,
) -> ControlRequest:
    """A broadcast ``revoke`` request for one id or several (no reply wanted)."""
    ids: str | list[str] = task_ids if isinstance(task_ids, str) else list(task_ids)
    return ControlRequest(
        method=REVOKE_METHOD,
        arguments={"task_id": ids, "terminate": bool(terminate), "signal": signal},
        destination=list(destination) if destination is not None else None,
        expires=time.time() + ttl if ttl else None,
    )


class RevokeOrder:
    """A decoded ``revoke`` request: which ids, whether to terminate, with which signal."""

    __slots__ = ("signum", "task_ids", "terminate")

    def __init__(self, task_ids: list[str], terminate: bool, signum: int) -> None:
        self.task_ids = task_ids
        self.terminate = terminate
        self.signum = signum


def signal_number(value: str | int | None) -> int:
    """``'SIGTERM'``/``'TERM'``/``15`` -> 15; raises DecodeError for unknown names."""
    if value is None:
        return int(signal_module.SIGTERM)
    if isinstance(value, int):
        return value
    name = value.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    try:
        return int(getattr(signal_module, name))
    except AttributeError:
        raise DecodeError(f"revoke names an unknown signal {value!r}") from None


def revoke_order(request: ControlRequest) -> RevokeOrder:
    """Read a ``revoke`` request's arguments; raises DecodeError when malformed."""
    args = request.arguments
    raw = args.get("task_id")
    ids = [raw] if isinstance(raw, str) else raw
    if not isinstance(ids, list | tuple) or not all(isinstance(i, str) for i in ids):
        raise DecodeError("revoke 'task_id' must be a task id or a list of them")
    return RevokeOrder(list(ids), bool(args.get("terminate")), signal_number(args.get("signal")))
