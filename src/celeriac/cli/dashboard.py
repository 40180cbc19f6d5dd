"""``celeriac dashboard`` (also ``celeriac flower``): serve the web dashboard.

``celeriac -A proj dashboard [--address 127.0.0.1] [--port 5555]
[--basic-auth user:password]``. Flower's command line works too: ``celeriac
-A proj flower --port=5555 --address=0.0.0.0 --basic-auth=user:pw``. A
non-loopback address without ``--basic-auth`` is refused (DESIGN.md principle
6). The "listening" line names the real port, so ``--port 0`` picks a free one.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import socket
from typing import Any

import click

from celeriac.cli._group import cli, load_app

__all__ = ["dashboard"]

_EXTRA_HINT = "pip install 'celeriac[dashboard]'"


def _import(module: str) -> Any:
    """An optional dependency of the dashboard, or one clear line naming the extra."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise click.ClickException(
            f"the dashboard needs the [dashboard] extra ({exc.name or exc} is missing): "
            f"{_EXTRA_HINT}") from None


def _listen(address: str, port: int) -> socket.socket:
    try:
        family, kind, proto, _, where = socket.getaddrinfo(
            address, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(where)
        sock.listen(128)
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {address}:{port}: {exc}") from None
    sock.setblocking(False)
    return sock


@click.command("dashboard")
@click.option("--address", default="127.0.0.1", show_default=True,
              help="Address to listen on (not loopback: --basic-auth is required).")
@click.option("--port", type=int, default=5555, show_default=True,
              help="Port to listen on (0: a free one, printed at start).")
@click.option("--basic-auth", "basic_auth", envvar=["CELERIAC_DASHBOARD_BASIC_AUTH",
                                                     "FLOWER_BASIC_AUTH"],
              default=None, help="Login(s): user:password[,user2:password2].")
@click.option("-l", "--loglevel", default="WARNING", show_default=True,
              help="Log level of the web server (INFO shows each request).")
@click.pass_context
def dashboard(ctx: click.Context, address: str, port: int, basic_auth: str | None,
              loglevel: str) -> None:
    """Serve the web dashboard: live workers, tasks, queues, charts, /metrics, JSON API."""
    for module in ("starlette", "uvicorn", "jinja2", "prometheus_client"):
        _import(module)
    auth = _import("celeriac.dashboard.auth")
    try:
        users = auth.parse_basic_auth(basic_auth)
    except auth.AuthError as exc:
        raise click.ClickException(str(exc)) from None
    if not users and not auth.is_loopback(address):
        raise click.ClickException(
            f"refusing to serve the dashboard on {address} without a login: add "
            "--basic-auth user:password, or bind to a loopback address (127.0.0.1)")
    app = load_app(ctx)
    uvicorn = _import("uvicorn")
    web = _import("celeriac.dashboard.app").create_app(app, users=users)
    sock = _listen(address, port)
    host, real_port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    login = "basic auth" if users else "no login (loopback only)"
    click.echo(f"-> celeriac dashboard: listening on http://{shown}:{real_port}/ "
               f"({login}; broker {app.new_transport().describe()})", err=True)
    config = uvicorn.Config(web, log_level=loglevel.lower(), lifespan="on",
                            timeout_graceful_shutdown=2,
                            access_log=loglevel.upper() in ("DEBUG", "INFO"))
    server = uvicorn.Server(config)
    try:
        asyncio.run(server.serve(sockets=[sock]))
    except KeyboardInterrupt:
        pass
    finally:
        with contextlib.suppress(OSError):
            sock.close()


cli.add_command(dashboard, "dashboard")
cli.add_command(dashboard, "flower")
