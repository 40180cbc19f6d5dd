"""``Request``: one received task message, as the worker tracks it until acked."""

from __future__ import annotations

import asyncio
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
        hard, soft = self.limits(default_hard, default_soft)
        env = self.delivery.envelope
        ctx = Context(
            id=m.id, task=m.task, args=tuple(m.args), kwargs=dict(m.kwargs), retries=m.retries,
            is_eager=False, called_directly=False, hostname=hostname,
            delivery_info={
                "exchange": env.exchange, "routing_key": env.routing_key,
                "priority": env.priority, "redelivered": self.delivery.redelivered,
            },
            eta=m.eta, expires=m.expires, group=m.group, group_index=m.group_index,
            root_id=m.root_id, parent_id=m.parent_id, reply_to=m.reply_to,
            correlation_id=m.id, origin=m.origin, timelimit=(hard, soft),
            callbacks=m.callbacks, errbacks=m.errbacks, chain=m.chain, chord=m.chord,
            headers=dict(m.extra_headers), priority=m.priority, ignore_result=m.ignore_result,
        )
        return Job(m.task, ctx, time_limit=hard, soft_time_limit=soft)
