"""The dashboard's ASGI app: routes, static files, the login guard and the monitor's
lifetime. ``create_app(celery_app)`` returns a Starlette app to serve with uvicorn
(``celeriac -A proj dashboard`` does that)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from celeriac.dashboard.api import api_routes
from celeriac.dashboard.auth import GuardMiddleware
from celeriac.dashboard.metrics import CONTENT_TYPE_LATEST
from celeriac.dashboard.monitor import Monitor
from celeriac.dashboard.sse import sse_routes
from celeriac.dashboard.views import view_routes

if TYPE_CHECKING:
    from celeriac.facade import Celery

__all__ = ["create_app"]

STATIC = Path(__file__).with_name("static")


async def metrics(request: Request) -> Response:
    """Prometheus exposition of the dashboard's metrics."""
    monitor: Monitor = request.app.state.monitor
    return Response(monitor.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


def create_app(app: Celery, *, users: Mapping[str, str] | None = None,
               monitor: Monitor | None = None, watch: bool = True) -> Starlette:
    """The dashboard of ``app``.

    ``users``: ``{user: password}`` for basic auth (none: loopback host names
    only). ``monitor``: the cluster view to show (default: a new one).
    ``watch``: capture events and inspect workers while the app runs (tests of
    the views pass ``False`` and feed the monitor themselves).
    """
    mon = monitor if monitor is not None else Monitor(app)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        runner = asyncio.ensure_future(mon.run()) if watch else None
        try:
            yield
        finally:
            if runner is not None:
                runner.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await runner

    routes = [
        *view_routes(),
        *api_routes(),
        *sse_routes(),
        Route("/metrics", metrics),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    web = Starlette(routes=routes, lifespan=lifespan,
                    middleware=[Middleware(GuardMiddleware, users=dict(users or {}))])
    web.state.monitor = mon
    return web
