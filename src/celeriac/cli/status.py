"""``celeriac status``: which workers are online (Celery's ``celery status``)."""

from __future__ import annotations

import click

from celeriac.cli._group import cli
from celeriac.cli._remote import print_replies, remote_options, send

__all__ = ["status"]


@cli.command("status")
@remote_options
@click.pass_context
def status(ctx: click.Context, timeout: float, destination: str | None, as_json: bool) -> None:
    """One line per worker that answers a ping; exit code 69 when none does."""
    merged = send(ctx, "ping", {}, timeout=timeout, destination=destination)
    print_replies(merged, as_json=as_json, quiet_body=True)
