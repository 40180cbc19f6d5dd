"""``celeriac beat``: run the periodic task scheduler, or edit its dynamic entries.

* ``celeriac -A proj beat [-l INFO] [-s FILE] [--store KIND] [--catch-up once|all|skip]``
* ``celeriac -A proj beat list``
* ``celeriac -A proj beat add NAME --task T (--every S | --crontab 'm h dom mon dow')
  [--args JSON] [--kwargs JSON] [--queue Q]``
* ``celeriac -A proj beat remove NAME``
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import click

from celeriac import __version__
from celeriac.beat.api import BeatSchedule
from celeriac.beat.entries import crontab_from_string
from celeriac.beat.scheduler import CATCH_UP_POLICIES, Scheduler
from celeriac.beat.stores import STORE_KINDS, BeatStore, open_store
from celeriac.cli._group import cli, load_app
from celeriac.config.urls import mask_url
from celeriac.errors import ConfigurationError
from celeriac.worker.logs import parse_level, setup_logging

__all__ = ["banner", "beat"]

F = TypeVar("F", bound=Callable[..., Any])


def _store_options(fn: F) -> F:
    fn = click.option(
        "-s",
        "--schedule",
        "schedule_path",
        default=None,
        help="State file (chooses the file store; default: beat_schedule_filename).",
    )(fn)
    fn = click.option(
        "--store",
        "store_kind",
        type=click.Choice(STORE_KINDS),
        default=None,
        help="Where beat keeps state: auto (Redis or SQLite broker, else the file).",
    )(fn)
    return fn


def _open(ctx: click.Context, app: Any, store_kind: str | None, path: str | None) -> BeatStore:
    parent = ctx.find_object(dict) or {}
    kind = store_kind or parent.get("beat_store") or "auto"
    return open_store(app, kind=kind, path=path or parent.get("beat_schedule_path"))


def banner(scheduler: Scheduler, loglevel: str, logfile: str | None) -> str:
    """The start-up banner, in Celery's shape."""
    s = scheduler.app.conf.settings
    interval = scheduler.max_interval
    return "\n".join(
        [
            f"celeriac beat v{__version__} is starting.",
            f"LocalTime -> {datetime.now().replace(microsecond=0)}",
            "Configuration ->",
            f"    . broker -> {mask_url(s.effective_broker_url())}",
            "    . scheduler -> celeriac.beat.Scheduler",
            f"    . store -> {scheduler.store.describe()}",
            f"    . timezone -> {scheduler.tz.key or scheduler.tz}",
            f"    . logfile -> [{logfile or 'stderr'}]@%{loglevel.upper()}",
            f"    . maxinterval -> {interval / 60:.2f} minutes ({interval:.0f}s)",
            f"    . leader lease -> {scheduler.leadership.lease_seconds:g}s"
            f" (catch-up: {scheduler.catch_up})",
            f"    . entries -> {len(scheduler.entries)}",
            "",
        ]
    )


@cli.group("beat", invoke_without_command=True)
@click.option(
    "-l",
    "--loglevel",
    default="WARNING",
    show_default=True,
    help="Logging level: debug, info, warning, error, critical.",
)
@click.option("-f", "--logfile", default=None, help="Log to this file instead of stderr.")
@_store_options
@click.option(
    "--max-interval",
    type=float,
    default=None,
    help="Longest sleep between checks, seconds (beat_max_loop_interval).",
)
@click.option(
    "--catch-up",
    type=click.Choice(CATCH_UP_POLICIES),
    default="once",
    show_default=True,
    help="Runs missed while no beat ran: once, all or skip.",
)
@click.option(
    "--lease", type=float, default=None, help="Leader lease, seconds (beat_lease_seconds)."
)
@click.pass_context
def beat(
    ctx: click.Context,
    /,
    loglevel: str,
    logfile: str | None,
    schedule_path: str | None,
    store_kind: str | None,
    max_interval: float | None,
    catch_up: str,
    lease: float | None,
) -> None:
    """Run the periodic task scheduler (or: beat list | add | remove)."""
    ctx.ensure_object(dict)
    ctx.obj["beat_store"] = store_kind
    ctx.obj["beat_schedule_path"] = schedule_path
    if ctx.invoked_subcommand is not None:
        return
    try:
        parse_level(loglevel)
    except ConfigurationError as exc:
        raise click.BadParameter(str(exc), param_hint="--loglevel") from None
    app = load_app(ctx)
    setup_logging(loglevel, logfile)
    store = _open(ctx, app, store_kind, schedule_path)
    scheduler = Scheduler(
        app, store, catch_up=catch_up, max_interval=max_interval, lease_seconds=lease
    )
    click.echo(banner(scheduler, loglevel, logfile), err=True)
    asyncio.run(_run(scheduler))


async def _run(scheduler: Scheduler) -> None:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, scheduler.stop)
    try:
        await scheduler.run()
    finally:
        await scheduler.app.aclose()


@beat.command("list")
@_store_options
@click.pass_context
def list_(ctx: click.Context, store_kind: str | None, schedule_path: str | None) -> None:
    """List every entry (beat_schedule and dynamic) with its last run."""
    app = load_app(ctx)
    with BeatSchedule(app, _open(ctx, app, store_kind, schedule_path)) as entries:
        marks = entries.store.marks()
        listed = entries.list_entries()
        if not listed:
            click.echo("no periodic tasks")
        for entry in listed:
            last = marks.get(entry.name)
            when = last.isoformat() if last is not None else "never"
            click.echo(f"{entry.describe()} last run: {when}")


def _json(value: str | None, what: str, default: Any, kind: type) -> Any:
    if value is None:
        return default
    try:
        parsed = json.loads(value)
    except ValueError:
        raise click.BadParameter(f"must be JSON, got {value!r}", param_hint=what) from None
    if not isinstance(parsed, kind):
        raise click.BadParameter(f"must be a JSON {kind.__name__}, got {value!r}", param_hint=what)
    return parsed


@beat.command("add")
@click.argument("name")
@click.option("--task", required=True, help="Task name, e.g. proj.tasks.add.")
@click.option("--every", type=float, default=None, help="Run every SECONDS.")
@click.option("--crontab", "cron", default=None, help="Cron fields: 'm h dom mon dow'.")
@click.option("--args", "args_json", default=None, help='JSON list, e.g. "[2, 2]".')
@click.option("--kwargs", "kwargs_json", default=None, help="JSON object.")
@click.option("--queue", default=None, help="Queue to send to.")
@_store_options
@click.pass_context
def add(
    ctx: click.Context,
    name: str,
    task: str,
    every: float | None,
    cron: str | None,
    args_json: str | None,
    kwargs_json: str | None,
    queue: str | None,
    store_kind: str | None,
    schedule_path: str | None,
) -> None:
    """Add (or change) a dynamic entry; running beats pick it up."""
    if (every is None) == (cron is None):
        raise click.UsageError("give exactly one of --every SECONDS or --crontab 'm h dom mon dow'")
    args = _json(args_json, "--args", [], list)
    kwargs = _json(kwargs_json, "--kwargs", {}, dict)
    app = load_app(ctx)
    with BeatSchedule(app, _open(ctx, app, store_kind, schedule_path)) as entries:
        if cron is not None:
            try:
                schedule: Any = crontab_from_string(cron)
            except ConfigurationError as exc:
                raise ConfigurationError(f"beat entry {name!r}: field 'schedule': {exc}") from None
        else:
            schedule = every
        options = {"queue": queue} if queue else {}
        entry = entries.add_entry(name, task, schedule, args, kwargs, options)
        click.echo(f"added {entry.describe()}")


@beat.command("remove")
@click.argument("name")
@_store_options
@click.pass_context
def remove(
    ctx: click.Context, name: str, store_kind: str | None, schedule_path: str | None
) -> None:
    """Remove a dynamic entry."""
    app = load_app(ctx)
    with BeatSchedule(app, _open(ctx, app, store_kind, schedule_path)) as entries:
        if not entries.remove_entry(name):
            static = name in (app.conf.settings.beat_schedule or {})
            hint = " (it is in beat_schedule: edit the configuration)" if static else ""
            click.echo(f"Error: no dynamic entry {name!r}{hint}", err=True)
            ctx.exit(1)
        click.echo(f"removed {name}")
