"""The request context a running task sees as ``self.request``.

A :class:`Context` is built by the worker's executor (or by eager ``apply``)
from the task message and pushed for the duration of the call. It lives in a
:class:`contextvars.ContextVar`, so it is right in threads, in asyncio tasks and
in prefork children alike.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["Context", "current_request", "push_request", "reset_request", "set_request"]


@dataclass(slots=True)
class Context:
    """What a task knows about the call that is running it (Celery's ``Task.request``)."""

    id: str | None = None
    task: str | None = None
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    retries: int = 0
    is_eager: bool = False
    called_directly: bool = True
    hostname: str | None = None
    delivery_info: dict[str, Any] = field(default_factory=dict)
    eta: datetime | None = None
    expires: datetime | None = None
    group: str | None = None
    group_index: int | None = None
    root_id: str | None = None
    parent_id: str | None = None
    reply_to: str | None = None
    correlation_id: str | None = None
    origin: str | None = None
    timelimit: tuple[float | None, float | None] = (None, None)
    callbacks: list[dict[str, Any]] | None = None
    errbacks: list[dict[str, Any]] | None = None
    chain: list[dict[str, Any]] | None = None
    chord: dict[str, Any] | None = None
    headers: dict[str, Any] = field(default_factory=dict)
    priority: int | None = None
    ignore_result: bool = False

    def get(self, key: str, default: Any = None) -> Any:
        """Dict-style access, as Celery's request allows."""
        return getattr(self, key, default)


_DIRECT = Context()
_current: contextvars.ContextVar[Context] = contextvars.ContextVar(
    "celeriac_request", default=_DIRECT
)


def current_request() -> Context:
    """The context of the task running in this thread/asyncio task."""
    return _current.get()


def set_request(ctx: Context) -> contextvars.Token[Context]:
    """Make ``ctx`` the current request until :func:`reset_request` of the token."""
    return _current.set(ctx)


def reset_request(token: contextvars.Token[Context]) -> None:
    """Restore the request that was current before :func:`set_request`."""
    _current.reset(token)


@contextmanager
def push_request(ctx: Context) -> Iterator[Context]:
    """Make ``ctx`` the current request for the duration of the block."""
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)
