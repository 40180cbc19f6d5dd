"""The HTML pages: workers, tasks (filters and search), task detail, queues, charts.

Pages are rendered on the server from the monitor's state with Jinja2 and
autoescaping on, so task arguments, results and tracebacks (user data) are
shown as text, never as markup. ``static/dashboard.js`` then keeps them live
from ``/events/stream``.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from celeriac.dashboard.api import workers_payload
from celeriac.dashboard.monitor import Monitor
from celeriac.dashboard.shapes import TaskFilter, task_dict, task_names, timeline
from celeriac.protocol import states

__all__ = ["view_routes"]

TEMPLATES = Path(__file__).with_name("templates")


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return ""
    return datetime.fromtimestamp(float(timestamp), UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _templates() -> Jinja2Templates:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined)
    env.filters["when"] = _when
    return Jinja2Templates(env=env)


templates = _templates()


def _monitor(request: Request) -> Monitor:
    monitor: Monitor = request.app.state.monitor
    return monitor


def _render(request: Request, name: str, page: str, **context: Any) -> Response:
    context.update(page=page, flash=request.query_params.get("flash"),
                   live=_monitor(request).live.is_set())
    return templates.TemplateResponse(request, name, context)


async def index(request: Request) -> Response:
    """``/``: the workers page."""
    return RedirectResponse("/workers", status_code=307)


async def workers_page(request: Request) -> Response:
    """Every worker seen: alive or offline, counters, pool, queues."""
    return _render(request, "workers.html", "workers",
                   workers=list(workers_payload(_monitor(request)).values()))


async def tasks_page(request: Request) -> Response:
    """The task list with state/name/worker filters and a search box."""
    monitor = _monitor(request)
    chosen = TaskFilter.from_query(request.query_params)
    rows = [task_dict(t) for t in chosen.apply(monitor.state.tasks.values())]
    return _render(request, "tasks.html", "tasks", tasks=rows, filter=chosen,
                   states=sorted(states.ALL_STATES), names=task_names(monitor.state),
                   workers=sorted(monitor.state.workers))


async def task_page(request: Request) -> Response:
    """One task: arguments, result or exception, traceback, timeline, buttons."""
    task_id = request.path_params["task_id"]
    info = _monitor(request).state.tasks.get(task_id)
    if info is None:
        return _render(request, "missing.html", "task", task_id=task_id)
    return _render(request, "task.html", "task", task=task_dict(info),
                   timeline=timeline(info), done=info.state in states.READY_STATES)


async def queues_page(request: Request) -> Response:
    """Queues and how many messages wait in each."""
    return _render(request, "queues.html", "queues",
                   queues=await _monitor(request).queue_lengths(), now=time.time())


async def charts_page(request: Request) -> Response:
    """Throughput and latency charts (drawn by dashboard.js from ``/api/charts``)."""
    return _render(request, "charts.html", "charts")


def view_routes() -> list[Route]:
    """The pages' routes."""
    return [
        Route("/", index),
        Route("/workers", workers_page),
        Route("/tasks", tasks_page),
        Route("/task/{task_id}", task_page),
        Route("/queues", queues_page),
        Route("/charts", charts_page),
    ]
