"""``celeriac control <command> [args]``: change the workers (Celery's ``celery control``).

Arguments are positional, as in Celery::

    control rate_limit TASK RATE         control time_limit TASK SOFT [HARD]
    control pool_grow [N]                control pool_shrink [N]
    control add_consumer QUEUE [EXCHANGE [TYPE [ROUTING_KEY]]]
    control cancel_consumer QUEUE        control revoke ID...
    control terminate SIGNAL ID...       control shutdown
    control enable_events                control disable_events
"""

from __future__ import annotations

from typing import Any

import click

from celeriac.cli._group import cli, load_app
from celeriac.cli._remote import print_replies, remote_options, send
from celeriac.protocol.control import CONTROL_COMMANDS

__all__ = ["control"]

#: command -> (required positional names, optional positional names, repeated last?)
_SIGNATURES: dict[str, tuple[tuple[str, ...], tuple[str, ...], bool]] = {
    "rate_limit": (("task_name", "rate_limit"), (), False),
    "time_limit": (("task_name", "soft"), ("hard",), False),
    "pool_grow": ((), ("n",), False),
    "pool_shrink": ((), ("n",), False),
    "add_consumer": (("queue",), ("exchange", "exchange_type", "routing_key"), False),
    "cancel_consumer": (("queue",), (), False),
    "revoke": (("task_id",), (), True),
    "terminate": (("signal", "task_id"), (), True),
    "shutdown": ((), (), False),
    "enable_events": ((), (), False),
    "disable_events": ((), (), False),
}
_NUMBERS = {"n": int, "soft": float, "hard": float}


def _usage(command: str) -> str:
    required, optional, repeated = _SIGNATURES[command]
    parts = [n.upper() + ("..." if repeated and n == required[-1] else "") for n in required]
    parts += [f"[{n.upper()}]" for n in optional]
    return f"control {command} {' '.join(parts)}".rstrip()


def arguments_for(command: str, values: tuple[str, ...]) -> dict[str, Any]:
    """The request arguments of ``command`` from its positional ``values``."""
    required, optional, repeated = _SIGNATURES[command]
    if len(values) < len(required) or (
            not repeated and len(values) > len(required) + len(optional)):
        raise click.UsageError(f"usage: {_usage(command)}")
    out: dict[str, Any] = {}
    names = required + optional
    for index, name in enumerate(names):
        if repeated and name == required[-1]:
            out[name] = list(values[index:])
            break
        if index < len(values):
            try:
                out[name] = _NUMBERS.get(name, str)(values[index])
            except ValueError:
                raise click.UsageError(f"{name.upper()} must be a number: {values[index]!r}"
                                       ) from None
    if command == "terminate":
        out["terminate"] = True
    if command == "revoke":
        out.update(terminate=False, signal="SIGTERM")
    if command == "rate_limit" and out["rate_limit"] in ("0", "none", "None"):
        out["rate_limit"] = None
    return out


@cli.command("control")
@click.argument("command")
@click.argument("args", nargs=-1)
@remote_options
@click.pass_context
def control(ctx: click.Context, command: str, args: tuple[str, ...], timeout: float,
            destination: str | None, as_json: bool) -> None:
    """Send COMMAND (with ARGS) to the workers: add_consumer, cancel_consumer,
    disable_events, enable_events, pool_grow, pool_shrink, rate_limit, revoke,
    shutdown, terminate, time_limit."""
    if command not in CONTROL_COMMANDS:
        raise click.UsageError(
            f"unknown control command {command!r}; valid: {', '.join(CONTROL_COMMANDS)}")
    arguments = arguments_for(command, args)
    if command == "shutdown":
        # A worker going away sends no reply (as in Celery): ask who is there first.
        online = send(ctx, "ping", {}, timeout=timeout, destination=destination)
        load_app(ctx).control.broadcast("shutdown", {}, sorted(online), reply=False)
        print_replies({node: {"ok": "shutdown requested"} for node in online}, as_json=as_json)
        return
    merged = send(ctx, command, arguments, timeout=timeout, destination=destination)
    if print_replies(merged, as_json=as_json):
        ctx.exit(1)
