"""The ``celeriac`` click group, its global options and ``load_app``."""

from __future__ import annotations

import os
from typing import Any

import click

from celeriac.cli._loader import find_app
from celeriac.config.settings import BROKER_URL_ENV, RESULT_BACKEND_ENV
from celeriac.errors import CeleriacError

__all__ = ["cli", "load_app"]


class AppGroup(click.Group):
    """Turns celeriac's configuration errors into one clear line and exit code 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CeleriacError as exc:
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(2)


@click.group(cls=AppGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-A", "--app", "app_spec", envvar=["CELERIAC_APP", "CELERY_APP"],
              help="The app: module, module:attr or package (e.g. -A proj).")
@click.option("-b", "--broker", default=None, help="Broker URL (overrides the app's).")
@click.option("--result-backend", default=None, help="Result backend URL (overrides the app's).")
@click.version_option(package_name="celeriac")
@click.pass_context
def cli(ctx: click.Context, app_spec: str | None, broker: str | None,
        result_backend: str | None) -> None:
    """celeriac: a distributed task queue, wire-compatible with Celery."""
    ctx.ensure_object(dict)
    ctx.obj["app_spec"] = app_spec
    ctx.obj["broker"] = broker
    ctx.obj["result_backend"] = result_backend


def load_app(ctx: click.Context) -> Any:
    """The app from ``-A`` (or given by ``app.start()``) with ``--broker``/``--result-backend``
    applied."""
    spec = ctx.obj.get("app_spec")
    given = ctx.obj.get("app")
    if not spec and given is None:
        raise click.UsageError("no app given: pass -A/--app module (e.g. celeriac -A tasks worker)")
    # As in Celery, -b/--result-backend also set the environment variables that
    # override the app's URLs, so they win over an inherited CELERY_BROKER_URL
    # and reach every process this one starts.
    if ctx.obj.get("broker"):
        os.environ[BROKER_URL_ENV] = ctx.obj["broker"]
    if ctx.obj.get("result_backend"):
        os.environ[RESULT_BACKEND_ENV] = ctx.obj["result_backend"]
    app = find_app(spec) if spec else given
    if ctx.obj.get("broker"):
        app.conf.broker_url = ctx.obj["broker"]
    if ctx.obj.get("result_backend"):
        app.conf.result_backend = ctx.obj["result_backend"]
    return app
