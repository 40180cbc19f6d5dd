"""The worker surface that rooms beside it (remote control) may use.

:class:`WorkerHandle` wraps one running :class:`~celeriac.worker.worker.Worker`
and offers plain facts (:class:`TaskView` for a task it holds, counters,
queues) and the changes a remote-control command may make (rate and time
limits, pool size, queues consumed, shutdown). Rooms never reach past it into
the consumer or the pool.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from celeriac.app.queues import queue_spec
from celeriac.errors import ContentDisallowed, DecodeError
from celeriac.protocol.clock import LamportClock
from celeriac.protocol.message import parse_task_envelope
from celeriac.protocol.pidbox import ControlRequest
from celeriac.worker.events import NoEvents

if TYPE_CHECKING:
    from celeriac.worker.request import Request
    from celeriac.worker.worker import Worker

__all__ = ["TaskView", "WorkerHandle"]


@dataclass(frozen=True, slots=True)
class TaskView:
    """One task the worker holds: running, reserved (prefetched) or scheduled (ETA)."""

    id: str
    name: str
    args: Any
    kwargs: Any
    time_start: float | None
    acknowledged: bool
    delivery_info: dict[str, Any]
    eta: datetime | None
    priority: int | None
    #: The process running it (a prefork child, else the worker); None until it runs.
    worker_pid: int | None = None


class WorkerHandle:
    """What remote control may see and change in one worker."""

    def __init__(self, worker: Worker) -> None:
        self._worker = worker
        self._started = time.monotonic()

    # -- identity --------------------------------------------------------------------
    @property
    def hostname(self) -> str:
        """The node name (``celery@host``) requests are addressed to."""
        return self._worker.hostname

    @property
    def pid(self) -> int:
        """The worker's main process id."""
        return self._worker.pid

    @property
    def app(self) -> Any:
        """The worker's app (its settings and task registry)."""
        return self._worker.app

    @property
    def clock(self) -> LamportClock:
        """The app's Lamport clock (control messages and events carry it)."""
        clock: LamportClock = self._worker.app.clock
        return clock

    def on_request(self, handler: Callable[[ControlRequest], Awaitable[None]]) -> None:
        """Have ``handler`` called with every pidbox request addressed to this node
        (after a ``revoke`` is applied; expired requests never reach it)."""
        self._worker.revokes.on_request = handler

    async def reply(self, envelope: Any) -> None:
        """Publish a control reply on the worker's broker connection."""
        await self._worker.transport.publish_reply(envelope)

    async def revoke(self, task_ids: list[str], *, terminate: bool = False,
                     signum: int = 15) -> None:
        """Mark ``task_ids`` revoked here and, with ``terminate``, stop those running."""
        await self._worker.revokes.apply(task_ids, terminate=terminate, signum=signum)

    # -- tasks held ----------------------------------------------------------------
    def _view(self, request: Request, worker_pid: int | None = None) -> TaskView:
        env = request.delivery.envelope
        started = request.started
        start_wall = time.time() - (time.monotonic() - started) if started is not None else None
        acks_late = getattr(request.task, "acks_late", None)
        if acks_late is None:
            acks_late = bool(self._worker.app.conf.settings.task_acks_late)
        return TaskView(
            id=request.id, name=request.name, args=list(request.message.args),
            kwargs=dict(request.message.kwargs), time_start=start_wall,
            acknowledged=started is not None and not acks_late,
            delivery_info={"exchange": env.exchange, "routing_key": env.routing_key,
                           "priority": env.priority,
                           "redelivered": request.delivery.redelivered},
            eta=request.message.eta, priority=env.priority, worker_pid=worker_pid,
        )

    def active(self) -> list[TaskView]:
        """Tasks running now, each with the pid of the process running it (its
        prefork child; the worker's own pid on in-process pools)."""
        consumer = self._worker.consumer
        if consumer is None:
            return []
        children = self._worker.pool.worker_pids()
        main = self._worker.pid
        return [self._view(r, children.get(r.id, main)) for r in consumer.active()
                if r.started is not None]

    def reserved(self) -> list[TaskView]:
        """Tasks received and waiting for a pool slot or a rate-limit token."""
        consumer = self._worker.consumer
        if consumer is None:
            return []
        return [self._view(r) for r in consumer.active() if r.started is None]

    def scheduled(self) -> list[TaskView]:
        """ETA tasks held in memory until due."""
        consumer = self._worker.consumer
        return [self._view(r) for r in consumer.scheduled()] if consumer is not None else []

    async def broker_scheduled(self, limit: int) -> list[TaskView]:
        """ETA tasks of this worker's queues that the broker holds until due (Redis,
        SQLite, memory), earliest first, at most ``limit`` (a bounded read)."""
        worker = self._worker
        accept = tuple(worker.app.conf.settings.accept_content)
        views = []
        for queue, eta, env in await worker.transport.delayed(list(worker.queues), limit):
            try:
                message = parse_task_envelope(env, accept)
            except (DecodeError, ContentDisallowed):
                continue  # not a task this worker could run: it is not scheduled here
            views.append(TaskView(
                id=message.id, name=message.task, args=list(message.args),
                kwargs=dict(message.kwargs), time_start=None, acknowledged=False,
                delivery_info={"exchange": env.exchange, "routing_key": env.routing_key or queue,
                               "priority": env.priority, "redelivered": False},
                eta=message.eta or datetime.fromtimestamp(eta, UTC), priority=env.priority))
        return views

    def revoked(self) -> list[str]:
        """Ids revoked here whose mark has not expired."""
        state = self._worker.state
        return sorted(task_id for task_id in list(state.revoked) if state.is_revoked(task_id))

    def task_names(self) -> list[str]:
        """Every task name registered in the worker's app."""
        return sorted(self._worker.app.tasks)

    def task(self, name: str) -> Any | None:
        """The registered task ``name`` (``None`` if unknown)."""
        return self._worker.app.tasks.get(name)

    # -- counters ------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """Counters and facts in the shape of Celery's ``inspect stats``."""
        worker = self._worker
        usage = resource.getrusage(resource.RUSAGE_SELF)
        consumer = worker.consumer
        return {
            "total": dict(worker.state.total),
            "pid": worker.pid,
            "clock": str(self.clock.value),
            "uptime": int(time.monotonic() - self._started),
            "pool": worker.pool.info(),
            "broker": {"transport": worker.transport.describe()},
            "prefetch_count": worker.prefetch_window,
            "rusage": {"utime": usage.ru_utime, "stime": usage.ru_stime,
                       "maxrss": usage.ru_maxrss},
            "processed": consumer.processed if consumer is not None else 0,
            "loadavg": list(os.getloadavg()),
            "sw_ident": "celeriac",
        }

    def pool_size(self) -> int:
        """How many tasks the pool runs at once now."""
        return self._worker.pool.limit

    def pool_info(self) -> dict[str, Any]:
        """The pool's facts (``processes`` lists the prefork children's pids)."""
        return self._worker.pool.info()

    # -- changes ---------------------------------------------------------------------
    def set_rate_limit(self, task_name: str, rate: str | float | None) -> None:
        """Change ``task_name``'s rate limit now (``None``/0 removes it); the task's
        ``rate_limit`` attribute follows, so ``registered`` shows it as Celery does."""
        self._worker.set_rate_limit(task_name, rate)
        task = self.task(task_name)
        if task is not None:
            task.rate_limit = rate or None

    def rate_limit(self, task_name: str) -> float | None:
        """``task_name``'s rate in tasks per second here (``None``: unlimited)."""
        return self._worker.rate_limits.rate(task_name)

    def set_time_limit(self, task_name: str, soft: float | None, hard: float | None) -> None:
        """Set ``task_name``'s soft and hard time limits for tasks started from now."""
        task = self._worker.app.tasks[task_name]
        task.soft_time_limit = soft
        task.time_limit = hard

    async def grow(self, n: int) -> None:
        """Add ``n`` pool slots."""
        await self._worker.pool.grow(n)

    async def shrink(self, n: int) -> None:
        """Remove ``n`` pool slots."""
        await self._worker.pool.shrink(n)

    def queues(self) -> list[str]:
        """Names of the queues consumed now."""
        return list(self._worker.queues)

    def queue_facts(self, name: str) -> tuple[str, str, str, bool, bool]:
        """(exchange, type, routing key, durable, auto_delete) of queue ``name``."""
        spec = queue_spec(self._worker.app.router.queues.get(name, name),
                          self._worker.app.conf.settings.task_queue_max_priority)
        return spec.exchange, spec.exchange_type, spec.routing_key, spec.durable, spec.auto_delete

    async def add_queue(self, name: str, exchange: str | None = None,
                        exchange_type: str | None = None, routing_key: str | None = None) -> bool:
        """Declare and start consuming ``name``; ``False`` if already consumed."""
        worker = self._worker
        if name in worker.queues:
            return False
        spec = queue_spec(worker.app.router.queues.get(name, name),
                          worker.app.conf.settings.task_queue_max_priority)
        if exchange is not None or routing_key is not None:
            spec = replace(spec, exchange=exchange if exchange is not None else spec.exchange,
                           exchange_type=exchange_type or spec.exchange_type,
                           routing_key=routing_key if routing_key is not None else name)
        await worker.transport.declare([spec])
        worker.queues.append(name)  # the consumer reads this list on every fetch
        return True

    def cancel_queue(self, name: str) -> bool:
        """Stop consuming ``name`` (from the next fetch on); ``False`` if not consumed.

        Raises ValueError for the last queue: a worker consuming nothing would
        only idle (stop it with ``shutdown`` instead)."""
        worker = self._worker
        if name not in worker.queues:
            return False
        if len(worker.queues) == 1:
            raise ValueError(f"{name!r} is the last queue this worker consumes")
        worker.queues.remove(name)
        return True

    def events_enabled(self) -> bool:
        """Whether this worker sends task events."""
        return bool(self._worker.events.task_events)

    def set_task_events(self, enabled: bool) -> bool:
        """Switch task events on or off; False when this worker has no event
        dispatcher to switch (events disabled altogether)."""
        if isinstance(self._worker.events, NoEvents):
            return False
        self._worker.events.set_task_events(enabled)
        return True

    def shutdown(self) -> None:
        """Begin a warm shutdown: stop fetching, finish and ack running tasks, exit."""
        self._worker.stop()
