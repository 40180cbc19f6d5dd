"""``celeriac worker``: run a worker for the app."""

from __future__ import annotations

import asyncio
import os
import platform
import sys
from typing import Any

import click

from celeriac import __version__
from celeriac.beat.scheduler import Scheduler
from celeriac.beat.stores import open_store
from celeriac.cli._group import cli, load_app
from celeriac.errors import ConfigurationError
from celeriac.events import worker_dispatcher
from celeriac.worker.logs import parse_level, setup_logging
from celeriac.worker.worker import POOLS, Worker, WorkerOptions

__all__ = ["banner", "worker"]


def _autoscale(value: str | None) -> tuple[int, int] | None:
    if not value:
        return None
    try:
        parts = [int(p) for p in value.split(",")]
    except ValueError:
        raise click.BadParameter(f"--autoscale takes MAX,MIN integers, got {value!r}") from None
    high = parts[0]
    low = parts[1] if len(parts) > 1 else 0
    return (max(high, low), min(high, low))


#: Celery pools celeriac does not have, and what to use instead.
_POOL_INSTEAD = {
    "gevent": "-P asyncio with async def tasks (or -P threads for blocking I/O)",
    "eventlet": "-P asyncio with async def tasks (or -P threads for blocking I/O)",
}


def _pool(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Check ``--pool``; Celery's green-thread pools get the celeriac equivalent named."""
    if value is None or value in POOLS:
        return value
    instead = _POOL_INSTEAD.get(value)
    if instead:
        raise click.BadParameter(
            f"celeriac has no {value!r} pool (no monkey-patching); use {instead}.")
    raise click.BadParameter(f"{value!r} is not a pool; choose one of {', '.join(sorted(POOLS))}.")


def _split(values: tuple[str, ...]) -> list[str]:
    return [q.strip() for v in values for q in v.split(",") if q.strip()]


def banner(w: Worker) -> str:
    """The start-up banner, in Celery's shape (passwords masked)."""
    info = w.info()
    tasks = sorted(n for n in w.app.tasks if not n.startswith("celery."))
    lines = [
        "",
        f" -------------- {w.hostname} v{__version__} (celeriac)",
        f"--- ***** ----- {platform.platform()} {platform.python_version()}",
        "-- ******* ---- ",
        "- *** --- * --- ",
        "- ** ---------- [config]",
        f"- ** ---------- .> app:         {w.app.main or '__main__'}:{id(w.app):#x}",
        f"- ** ---------- .> transport:   {info['transport']}",
        f"- ** ---------- .> results:     {info['results']}",
        f"- *** --- * --- .> concurrency: {w.concurrency} ({w.pool.name})",
        "-- ******* ---- .> task events: "
        + ("ON" if w.events.task_events
           else "OFF (enable -E to monitor tasks in this worker)"),
        "--- ***** ----- ",
        " -------------- [queues]",
    ]
    for q in w.queues:
        lines.append(f"                .> {q:<15} exchange={q}(direct) key={q}")
    lines += ["", "[tasks]"]
    lines += [f"  . {name}" for name in tasks]
    lines.append("")
    return "\n".join(lines)


@cli.command("worker")
@click.option("-l", "--loglevel", default="WARNING", show_default=True,
              help="Logging level: debug, info, warning, error, critical.")
@click.option("-f", "--logfile", default=None, help="Log to this file instead of stderr.")
@click.option("-c", "--concurrency", type=int, default=None,
              help="Number of child processes/threads (default: CPU count; asyncio: 100).")
@click.option("-P", "--pool", default=None, callback=_pool,
              help=f"Pool implementation: {', '.join(sorted(POOLS))} (default: prefork).")
@click.option("-Q", "--queues", multiple=True, help="Comma-separated queues to consume.")
@click.option("-X", "--exclude-queues", multiple=True, help="Comma-separated queues to skip.")
@click.option("-n", "--hostname", default=None, help="Node name, e.g. w1@%h.")
@click.option("--max-tasks-per-child", type=int, default=None)
@click.option("--max-memory-per-child", type=int, default=None, help="KiB.")
@click.option("--time-limit", type=float, default=None, help="Hard time limit (s).")
@click.option("--soft-time-limit", type=float, default=None, help="Soft time limit (s).")
@click.option("--prefetch-multiplier", type=int, default=None)
@click.option("--autoscale", default=None, help="MAX,MIN processes.")
@click.option("-O", "optimization", type=click.Choice(["default", "fair"]), default=None)
@click.option("-S", "--statedb", default=None, help="File that keeps revoked ids across restarts.")
@click.option("-E", "--task-events", "send_events", is_flag=True, help="Send task events.")
@click.option("-B", "--beat", is_flag=True, help="Also run the periodic task scheduler.")
@click.pass_context
def worker(ctx: click.Context, /, loglevel: str, logfile: str | None, **kw: Any) -> None:
    """Start a worker that runs the app's tasks."""
    try:
        parse_level(loglevel)
    except ConfigurationError as exc:
        raise click.BadParameter(str(exc), param_hint="--loglevel") from None
    app = load_app(ctx)
    setup_logging(loglevel, logfile)
    app.finalize()
    options = WorkerOptions(
        hostname=kw["hostname"], concurrency=kw["concurrency"], pool=kw["pool"],
        queues=_split(kw["queues"]) or None, exclude_queues=_split(kw["exclude_queues"]),
        max_tasks_per_child=kw["max_tasks_per_child"],
        max_memory_per_child=kw["max_memory_per_child"], time_limit=kw["time_limit"],
        soft_time_limit=kw["soft_time_limit"], prefetch_multiplier=kw["prefetch_multiplier"],
        autoscale=_autoscale(kw["autoscale"]), statedb=kw["statedb"],
        optimization=kw["optimization"], send_events=kw["send_events"], beat=kw["beat"],
    )
    beat_store = open_store(app) if options.beat else None
    code = asyncio.run(_run(app, options, beat_store))
    sys.stdout.flush()
    os._exit(code) if code else ctx.exit(0)


async def _run(app: Any, options: WorkerOptions, beat_store: Any) -> int:
    services: list[Any] = []
    if beat_store is not None:
        # -B: the beat scheduler runs as one more service in the worker's TaskGroup.
        services.append(Scheduler(app, beat_store).run)
    w = Worker(app, options, events=worker_dispatcher(app, options.send_events),
               services=services)
    w.install_signal_handlers()
    click.echo(banner(w), err=True)
    return await w.run()
