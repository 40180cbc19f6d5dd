"""``celeriac inspect <command>``: ask the workers (Celery's ``celery inspect``)."""

from __future__ import annotations

import click

from celeriac.cli._group import cli
from celeriac.cli._remote import print_replies, remote_options, send
from celeriac.protocol.control import INSPECT_COMMANDS

__all__ = ["inspect"]


@cli.command("inspect")
@click.argument("command")
@remote_options
@click.pass_context
def inspect(ctx: click.Context, command: str, timeout: float, destination: str | None,
            as_json: bool) -> None:
    """Ask the workers COMMAND: one of active, active_queues, clock, conf, ping, registered,
    report, reserved, revoked, scheduled, stats."""
    if command not in INSPECT_COMMANDS:
        raise click.UsageError(
            f"unknown inspect command {command!r}; valid: {', '.join(INSPECT_COMMANDS)}")
    merged = send(ctx, command, {}, timeout=timeout, destination=destination)
    if print_replies(merged, as_json=as_json):
        ctx.exit(1)
