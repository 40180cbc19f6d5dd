"""``celeriac call``: send a task by name from the shell."""

from __future__ import annotations

import json
from typing import Any

import click

from celeriac.cli._group import cli, load_app

__all__ = ["call"]


def _json(value: str | None, what: str, default: Any) -> Any:
    if value is None:
        return default
    try:
        return json.loads(value)
    except ValueError:
        raise click.BadParameter(f"{what} must be JSON, got {value!r}") from None


@cli.command("call")
@click.argument("name")
@click.option("-a", "--args", "args_json", default=None, help='JSON list, e.g. "[2, 2]".')
@click.option("-k", "--kwargs", "kwargs_json", default=None, help="JSON object.")
@click.option("--countdown", type=float, default=None)
@click.option("--queue", default=None)
@click.option("--wait", type=float, default=None,
              help="Wait this long for the result and print it.")
@click.pass_context
def call(ctx: click.Context, name: str, args_json: str | None, kwargs_json: str | None,
         countdown: float | None, queue: str | None, wait: float | None) -> None:
    """Send task NAME and print its id (and result with --wait)."""
    app = load_app(ctx)
    args = _json(args_json, "--args", [])
    kwargs = _json(kwargs_json, "--kwargs", {})
    options = {k: v for k, v in (("countdown", countdown), ("queue", queue)) if v is not None}
    result = app.send_task(name, args, kwargs, **options)
    click.echo(result.id)
    if wait is not None:
        click.echo(json.dumps(result.get(timeout=wait)))
