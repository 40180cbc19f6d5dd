"""What ``inspect``, ``control`` and ``status`` share: options, the call, the printout.

Output follows Celery's: one ``->  node: OK`` line per worker with its answer
indented below (``ERROR`` and the message when the command failed there), then
``N node(s) online.``; ``--json`` prints the merged ``{node: answer}`` instead.
No reply within ``--timeout`` is one error line and exit code 69 (EX_UNAVAILABLE),
as in Celery.
"""

from __future__ import annotations

import json
import pprint
from collections.abc import Callable
from typing import Any

import click

from celeriac.cli._group import load_app
from celeriac.protocol.control import is_error
from celeriac.protocol.pidbox import merge_replies

__all__ = ["EX_UNAVAILABLE", "print_replies", "remote_options", "send"]

#: Celery's exit code when no worker answered (sysexits' EX_UNAVAILABLE).
EX_UNAVAILABLE = 69


def remote_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--timeout``, ``--destination`` and ``--json``, named as in Celery."""
    fn = click.option("-j", "--json", "as_json", is_flag=True,
                      help="Print the replies as JSON.")(fn)
    fn = click.option("-d", "--destination", default=None,
                      help="Comma-separated node names to address (default: all).")(fn)
    fn = click.option("-t", "--timeout", type=float, default=1.0, show_default=True,
                      help="Seconds to wait for replies.")(fn)
    return fn


def send(ctx: click.Context, method: str, arguments: dict[str, Any], *, timeout: float,
         destination: str | None) -> dict[str, Any]:
    """Broadcast ``method`` and return ``{node: answer}``; exits 69 when nobody answered."""
    app = load_app(ctx)
    dest = [d.strip() for d in destination.split(",") if d.strip()] if destination else None
    replies = app.control.broadcast(method, arguments, dest, reply=True, timeout=timeout)
    if not replies:
        click.echo(f"Error: No nodes replied within time constraint ({timeout:g}s).", err=True)
        ctx.exit(EX_UNAVAILABLE)
    merged: dict[str, Any] = merge_replies(replies)
    return merged


def _body(answer: Any) -> str:
    if isinstance(answer, dict) and set(answer) <= {"ok", "error"}:
        text = answer.get("ok", answer.get("error"))
        return text if isinstance(text, str) else pprint.pformat(text)
    if isinstance(answer, list) and not answer:
        return "- empty -"
    return pprint.pformat(answer, width=90)


def print_replies(merged: dict[str, Any], *, as_json: bool, quiet_body: bool = False) -> bool:
    """Print ``merged`` as Celery does; whether any node answered with an error."""
    failed = any(is_error(answer) for answer in merged.values())
    if as_json:
        click.echo(json.dumps(merged, default=repr))
        return failed
    for node, answer in sorted(merged.items()):
        status = "ERROR" if is_error(answer) else "OK"
        click.echo(f"->  {node}: {status}")
        if not quiet_body:
            for line in _body(answer).splitlines():
                click.echo(f"        {line}")
    count = len(merged)
    click.echo(f"\n{count} {'node' if count == 1 else 'nodes'} online.")
    return failed
