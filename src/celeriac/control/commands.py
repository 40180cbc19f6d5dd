"""The worker side of Celery's remote-control commands, one function each.

Every command takes the :class:`~celeriac.worker.api.WorkerHandle` of the
worker it runs in and the request's arguments (Celery's names) and returns the
reply value (``{"ok": ...}``, ``{"error": ...}`` or the data asked for).
``COMMANDS`` maps method names to them; ``NO_REPLY`` names those whose answer
is never sent even when asked for (``shutdown`` answers by going away, as in
Celery).
"""

from __future__ import annotations

import platform
import sys
from collections.abc import Awaitable, Callable, Mapping
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from celeriac.protocol.control import (
    clock_info,
    error,
    ok,
    queue_info,
    safe_conf,
    scheduled_info,
    task_info,
)
from celeriac.protocol.pidbox import ControlRequest
from celeriac.protocol.revoke import revoke_order
from celeriac.worker.api import TaskView, WorkerHandle

__all__ = ["COMMANDS", "NO_REPLY", "SCHEDULED_LIMIT", "Command"]

Command = Callable[[WorkerHandle, Mapping[str, Any]], Awaitable[Any]]


#: Most ETA tasks one ``scheduled`` reply lists from the broker's delayed store.
SCHEDULED_LIMIT = 1_000


def _info(handle: WorkerHandle, view: TaskView) -> dict[str, Any]:
    return task_info(task_id=view.id, name=view.name, args=view.args, kwargs=view.kwargs,
                     hostname=handle.hostname, time_start=view.time_start,
                     acknowledged=view.acknowledged, delivery_info=view.delivery_info,
                     worker_pid=view.worker_pid)


def _celeriac_version() -> str:
    try:
        return version("celeriac")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


# -- inspect -----------------------------------------------------------------------------
async def ping(handle: WorkerHandle, args: Mapping[str, Any]) -> Any:
    """``{"ok": "pong"}``."""
    return ok("pong")


async def active(handle: WorkerHandle, args: Mapping[str, Any]) -> Any:
    """The tasks running now."""
    return [_info(handle, view) for view in handle.active()]


async def reserved(handle: WorkerHandle, args: Mapping[str, Any]) -> Any:
    """The tasks received and waiting for a slot (or a rate-limit token)."""
    return [_info(handle, view) for view in handle.reserved()]


async def scheduled(handle: WorkerHandle, args: Mapping[str, Any]) -> Any:
    """The ETA tasks waiting until due for this worker: those it holds in memory
    (brokers that cannot delay, RabbitMQ), then those of its queues the broker
    holds (Redis, SQLite), earliest first, at most ``SCHEDULED_LIMIT`` of those."""
    views = handle.scheduled()
    held = {view.id for view in views}
    views += [view for view in await handle.broker_scheduled(SCHEDULED_LIMIT)
              if view.id not in held]
    return [scheduled_info(view.eta, view.priority, _info(handle, view)) for view in views]


async def clock(handle: WorkerHandle, args: Mapping[str, Any]) -> Any:
    """The worker's Lamport clock: ``{"clock": n}``."""
    return clock_info(handle.clock.value)


async def registered(handle: WorkerHandle, args: Mapping[str, Any]) -> Any:
    """Task names, Celery's builtins (``celery.*``) left out, with any rate or time limit
    in Celery's ``name [rate_limit=...]`` form."""
    out = []
    for name in handle.task_names():
        if name.startswith("celery."):
            continue
        task = handle.task(name)
        extras = [f"{attr}={getattr(task, attr)}"
                  for attr in ("rate_limit", "time_limit", "soft_time_limit")
                  if getattr(task, attr, None) is not None]
        out.append(f"{name} [{' '.join(extras)}]" if extras else name)
    return out


async def stats(handle: WorkerHandle, args: Mapping[str, Any]) -> Any:
    """Counters and facts (Celery's ``inspect stats`` shape, reduced)."""
    return handle.stats()


async def revoked(handle: WorkerHandle, args: Mapping[str, Any]) -> Any:
    """Revoked ids this worker remembers."""
    return handle.revoked()


async def active_queues(handle: WorkerHandle, args: Mapping[str, Any]) -> Any:
    """The queues consumed, as kombu describes queues."""
    out = []
    for name in handle.queues():
        exchange, kind, routing_key, durable, auto_delete = handle.queue_facts(name)
        out.append(queue_info(name, exchange, kind, routing_key, durable=durable,
                              auto_delete=auto_delete))
    return out


async def conf(handle: WorkerHandle, args: Mapping[str, Any]) -> Any:
    """The worker's settings, secrets left out and passwords masked."""
    settings = handle.app.conf.settings
    fields = getattr(settings, "__dataclass_fields__", None) or {}
    values = {name: getattr(settings, name) for name in fields}
    return safe_conf(values)


async def report(handle: WorkerHandle, args: Mapping[str, Any]) -> Any:
    """A short bug-report text: versions, platform, pool, broker."""
    info = handle.stats()
    lines = [
        f"software -> celeriac:{_celeriac_version()} "
        f"{platform.python_implementation()}:{platform.python_version()}",
        f"platform -> system:{platform.system()} arch:{platform.machine()}",
        f"python -> {sys.version.split()[0]}",
        f"pool -> {info['pool'].get('implementation')} x{info['pool'].get('max-concurrency')}",
        f"broker -> {info['broker']['transport']}",
    ]
    return ok("\n".join(lines))


# -- control -------------------------------------------------------------------------------
async def revoke(handle: WorkerHandle, args: Mapping[str, Any]) -> Any:
    """The listener already marked the ids (and terminated them): only the reply is left."""
    order = revoke_order(ControlRequest(method="revoke", arguments=dict(args)))
    return ok(_flagged(order.task_ids))


async def terminate(handle: WorkerHandle, args: Mapping[str, Any]) -> Any:
    """Revoke ``task_id`` and stop it where it runs, with ``signal`` (SIGTERM)."""
    order = revoke_order(ControlRequest(method="revoke", arguments=dict(args)))
    await handle.revoke(order.task_ids, terminate=True, signum=order.signum)
    return ok(_flagged(order.task_ids))


def _flagged(task_ids: list[str]) -> str:
    ids = ", ".join(f"'{i}'" for i in task_ids)
    return f"tasks {{{ids}}} flagged as revoked"


async def rate_limit(handle: WorkerHandle, args: Mapping[str, Any]) -> Any:
    """Set ``task_name``'s ``rate_limit`` (``"10/m"``; 0/None removes it)."""
    name = args.get("task_name")
    if not isinstance(name, str) or handle.task(name) is None:
        return error("unknown task")
    rate = args.get("rate_limit")
    try:
        handle.set_rate_limit(name, rate or None)
    except (ValueError, TypeError) as exc:
        return error(f"Invalid rate limit string: {exc!r}")
    if not rate:
        return ok("rate limit disabled successfully")
    return ok("new rate limit set successfully")


async def time_limit(handle: WorkerHandle, args: Mapping[str, Any]) -> Any:
    """Set ``task_name``'s ``soft`` and ``hard`` time limits (seconds)."""
    name = args.get("task_name")
    if not isinstance(name, str) or handle.task(name) is None:
        return error("unknown task")
    try:
        soft = float(args["soft"]) if args.get("soft") is not None else None
        hard = float(args["hard"]) if args.get("hard") is not None else None
    except (TypeError, ValueError):
        return error("time limits must be numbers of seconds")
    handle.set_time_limit(name, soft, hard)
    return ok("time limits set successfully")


async def shutdown(handle: WorkerHandle, args: Mapping[str, Any]) -> Any:
    """Warm shutdown: running tasks finish and are acked, then the worker exits."""
    handle.shutdown()
    return ok("shutting down")


def _count(args: Mapping[str, Any]) -> int:
    value = args.get("n", 1)
    return int(value) if value is not None else 1


async def pool_grow(handle: WorkerHandle, args: Mapping[str, Any]) -> Any:
    """Add ``n`` pool slots (prefork: fork ``n`` children)."""
    try:
        n = _count(args)
    except (TypeError, ValueError):
        return error("pool_grow needs a whole number n")
    before = handle.pool_size()
    await handle.grow(n)
    if handle.pool_size() == before and n > 0:
        return error(f"the {handle.pool_info().get('implementation')} pool cannot grow")
    return ok("pool will grow")


async def pool_shrink(handle: WorkerHandle, args: Mapping[str, Any]) -> Any:
    """Remove ``n`` pool slots (prefork: retire ``n`` children once idle)."""
    try:
        n = _count(args)
    except (TypeError, ValueError):
        return error("pool_shrink needs a whole number n")
    before = handle.pool_size()
    await handle.shrink(n)
    if handle.pool_size() == before and n > 0:
        return error(f"the {handle.pool_info().get('implementation')} pool cannot shrink")
    return ok("pool will shrink")


async def add_consumer(handle: WorkerHandle, args: Mapping[str, Any]) -> Any:
    """Start consuming ``queue`` (declared with ``exchange``/``routing_key`` if given)."""
    queue = args.get("queue")
    if not isinstance(queue, str) or not queue:
        return error("add_consumer needs a queue name")
    exchange = args.get("exchange")
    if await handle.add_queue(queue, exchange if isinstance(exchange, str) else None,
                              args.get("exchange_type"), args.get("routing_key")):
        return ok(f"add consumer {queue}")
    return ok(f"already consuming from {queue!r}")


async def cancel_consumer(handle: WorkerHandle, args: Mapping[str, Any]) -> Any:
    """Stop consuming ``queue``."""
    queue = args.get("queue")
    if not isinstance(queue, str):
        return error("cancel_consumer needs a queue name")
    try:
        if not handle.cancel_queue(queue):
            return error(f"not consuming from {queue!r}")
    except ValueError as exc:
        return error(str(exc))
    return ok(f"no longer consuming from {queue!r}")


async def enable_events(handle: WorkerHandle, args: Mapping[str, Any]) -> Any:
    """Switch task events on (``-E`` at run time)."""
    if handle.events_enabled():
        return ok("task events already enabled")
    if not handle.set_task_events(True):
        return error("this worker has no event dispatcher: start it with -E")
    return ok("task events enabled")


async def disable_events(handle: WorkerHandle, args: Mapping[str, Any]) -> Any:
    """Switch task events off; worker heartbeats go on."""
    if not handle.events_enabled():
        return ok("task events already disabled")
    handle.set_task_events(False)
    return ok("task events disabled")


COMMANDS: dict[str, Command] = {
    "ping": ping, "clock": clock, "active": active, "reserved": reserved, "scheduled": scheduled,
    "registered": registered, "stats": stats, "revoked": revoked,
    "active_queues": active_queues, "conf": conf, "report": report,
    "revoke": revoke, "terminate": terminate, "rate_limit": rate_limit, "time_limit": time_limit,
    "shutdown": shutdown, "pool_grow": pool_grow, "pool_shrink": pool_shrink,
    "add_consumer": add_consumer, "cancel_consumer": cancel_consumer,
    "enable_events": enable_events, "disable_events": disable_events,
}
#: Commands whose reply is never sent.
NO_REPLY = frozenset({"shutdown"})
