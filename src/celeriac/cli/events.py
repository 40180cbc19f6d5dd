"""``celeriac events``: print the cluster's events as they arrive, one line each.

As ``celery events --dump``: ``<hostname> [<time UTC>] <type> uuid=<id> k=v ...``.
``--dump`` is accepted for Celery's command line (dumping is the only mode).
The "listening" line is printed once the subscription is live (a probe event
came back), so events published after it are shown. Ctrl-C ends it.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Any

import click

from celeriac.cli._group import cli, load_app
from celeriac.events import EventReceiver
from celeriac.protocol.events import one_line

__all__ = ["events"]


@cli.command("events")
@click.option("-d", "--dump", is_flag=True, help="Print events as they arrive (the default).")
@click.option("--workers-only", is_flag=True, help="Only worker-* events.")
@click.option("--limit", type=int, default=None, help="Exit after this many events.")
@click.option("--timeout", type=float, default=None, help="Exit after this many seconds.")
@click.pass_context
def events(ctx: click.Context, dump: bool, workers_only: bool, limit: int | None,
           timeout: float | None) -> None:
    """Print task and worker events as they arrive (workers need -E for task events)."""
    app = load_app(ctx)

    def show(event: dict[str, Any]) -> None:
        click.echo(one_line(event))

    keys = ("worker.#",) if workers_only else ("#",)
    receiver = EventReceiver(app, {"*": show}, binding_keys=keys)
    transport = app.new_transport()
    try:
        asyncio.run(_capture(receiver, transport, limit, timeout))
    except KeyboardInterrupt:
        pass
    except TypeError as exc:  # a transport without broadcast support
        raise click.ClickException(f"this broker cannot carry events: {exc}") from None
    except OSError as exc:
        raise click.ClickException(f"cannot reach the broker: {exc}") from None


async def _capture(receiver: EventReceiver, transport: Any, limit: int | None,
                   timeout: float | None) -> None:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, receiver.stop)
    await transport.connect()
    try:
        capture = asyncio.ensure_future(receiver.acapture(limit, timeout, transport=transport))
        ready = asyncio.ensure_future(receiver.wait_ready(transport=transport))
        await asyncio.wait({capture, ready}, return_when=asyncio.FIRST_COMPLETED)
        if ready.done() and ready.exception() is None:
            click.echo(f"-> celeriac events: listening on {transport.describe()} "
                       "(Ctrl-C to stop)", err=True)
        else:
            ready.cancel()
        await capture
    finally:
        with contextlib.suppress(Exception):
            await transport.close()
