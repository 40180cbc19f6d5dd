"""``Request``: one received task message, as the worker tracks it until acked."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from celeriac.app.context import Context
from celeriac.protocol.message import TaskMessage
from celeriac.transports.base import Delivery
from celeriac.worker.pools.base import Job

__all__ = ["Request"]


@dataclass(slots=True)
class Request:
    """A parsed task message plus its delivery (the handle to ack it)."""

    message: TaskMessage
    delivery: Delivery
    task: Any
    received: float = field(default_factory=time.monotonic)
    started: float | None = None
    #: The asyncio task running it, when it has one of its own (``Consumer._execute``).
    runner: asyncio.Task[None] | None = None

    @property
    def id(self) -> str:
        """The task id."""
        return self.message.id

    @property
    def name(self) -> str:
        """The task name (as the message names it)."""
        return self.message.task

    @property
    def display_name(self) -> str:
        """The name used in logs and events (``shadow`` if set)."""
        return self.message.shadow or self.message.task

    def eta_timestamp(self) -> float | None:
        """The ETA as unix time, or ``None``."""
        eta = self.message.eta
        return eta.timestamp() if eta is not None else None

    def expired(self, now: datetime | None = None) -> bool:
        """Whether ``expires`` has passed."""
        expires = self.message.expires
        if expires is None:
            return False
        return (now or datetime.now(UTC)) >= expires

    def limits(self, default_hard: float | None, default_soft: float | None) -> tuple[
        float | None, float | None
    ]:
        """Effective (hard, soft) limits: message, then task, then worker defaults."""
        hard, soft = self.message.timelimit
        if hard is None:
            hard = getattr(self.task, "time_limit", None) or default_hard
        if soft is None:
            soft = getattr(self.task, "soft_time_limit", None) or default_soft
        return hard, soft

    def to_job(self, hostname: str, default_hard: float | None, default_soft: float | None) -> Job:
        """The pool job for this request."""
        m = self.message
        hard, soft = m.timelimit
        if hard is None:
            hard = getattr(self.task, "time_limit", None) or default_hard
        if soft is None:
            soft = getattr(self.task, "soft_time_limit", None) or default_soft
        env = self.delivery.envelope
        ctx = _context(
            m.id, m.task, tuple(m.args), dict(m.kwargs), m.retries, hostname,
            {"exchange": env.exchange, "routing_key": env.routing_key,
             "priority": env.priority, "redelivered": self.delivery.redelivered},
            m.eta, m.expires, m.group, m.group_index, m.root_id, m.parent_id, m.reply_to,
            m.origin, (hard, soft), m.callbacks, m.errbacks, m.chain, m.chord,
            dict(m.extra_headers), m.priority, m.ignore_result,
        )
        return Job(m.task, ctx, hard, soft)


# The worker builds one Context per task run: positionally when its fields are in
# the order below (a keyword call of the 26-field dataclass costs ~0.9 us more),
# else with every field named.
_CONTEXT_FIELDS = (
    "id", "task", "args", "kwargs", "retries", "is_eager", "called_directly", "hostname",
    "delivery_info", "eta", "expires", "group", "group_index", "root_id", "parent_id",
    "reply_to", "correlation_id", "origin", "timelimit", "callbacks", "errbacks", "chain",
    "chord", "headers", "priority", "ignore_result",
)
_POSITIONAL_CONTEXT = tuple(f.name for f in dataclasses.fields(Context)) == _CONTEXT_FIELDS


def _context(
    task_id: str, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], retries: int,
    hostname: str, delivery_info: dict[str, Any], eta: datetime | None,
    expires: datetime | None, group: str | None, group_index: int | None,
    root_id: str | None, parent_id: str | None, reply_to: str | None, origin: str | None,
    timelimit: tuple[float | None, float | None], callbacks: list[dict[str, Any]] | None,
    errbacks: list[dict[str, Any]] | None, chain: list[dict[str, Any]] | None,
    chord: dict[str, Any] | None, headers: dict[str, Any], priority: int | None,
    ignore_result: bool,
) -> Context:
    """The request context of a task run by the worker (``correlation_id`` is its id)."""
    if _POSITIONAL_CONTEXT:
        return Context(
            task_id, name, args, kwargs, retries, False, False, hostname, delivery_info, eta,
            expires, group, group_index, root_id, parent_id, reply_to, task_id, origin,
            timelimit, callbacks, errbacks, chain, chord, headers, priority, ignore_result,
        )
    return Context(
        id=task_id, task=name, args=args, kwargs=kwargs, retries=retries, is_eager=False,
        called_directly=False, hostname=hostname, delivery_info=delivery_info, eta=eta,
        expires=expires, group=group, group_index=group_index, root_id=root_id,
        parent_id=parent_id, reply_to=reply_to, correlation_id=task_id, origin=origin,
        timelimit=timelimit, callbacks=callbacks, errbacks=errbacks, chain=chain, chord=chord,
        headers=headers, priority=priority, ignore_result=ignore_result,
    )
