"""The JSON API (Flower's shapes where cheap) and the action endpoints.

GET ``/api/workers``, ``/api/tasks?state=&name=&worker=&search=&limit=``,
``/api/task/<id>`` (also Flower's ``/api/task/info/<id>``), ``/api/queues``,
``/api/task-names``, ``/api/charts``. POST ``/api/task/revoke/<id>``
(``terminate=1`` also stops it where it runs) and ``/api/task/rate-limit/<name>``
(``ratelimit=10/m``): each answers ``{"message": ...}``, or redirects back to
the page when posted by a form (``next`` field).
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from celeriac.dashboard.monitor import Monitor
from celeriac.dashboard.shapes import TaskFilter, task_dict, task_names, worker_dict

__all__ = ["api_routes"]

_TRUE = ("1", "true", "yes", "on")


def _monitor(request: Request) -> Monitor:
    monitor: Monitor = request.app.state.monitor
    return monitor


async def _form(request: Request) -> dict[str, str]:
    """The posted fields (urlencoded form or JSON object; no multipart parser needed)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if kind == "application/json" and body:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}
    return dict(parse_qsl(body.decode("utf-8", "replace")))


def workers_payload(monitor: Monitor) -> dict[str, Any]:
    """``{hostname: worker dict}`` for every worker seen."""
    now = time.time()
    return {host: worker_dict(worker, now, monitor.inspected.get(host))
            for host, worker in sorted(monitor.state.workers.items())}


async def workers(request: Request) -> Response:
    """Every worker seen: status, counters, pool and queues."""
    return JSONResponse(workers_payload(_monitor(request)))


async def tasks(request: Request) -> Response:
    """``{uuid: task dict}``, newest first, filtered by the query."""
    found = TaskFilter.from_query(request.query_params).apply(
        _monitor(request).state.tasks.values())
    return JSONResponse({task.uuid: task_dict(task) for task in found})


async def task(request: Request) -> Response:
    """One task, with its timeline; 404 when no event named it."""
    info = _monitor(request).state.tasks.get(request.path_params["task_id"])
    if info is None:
        return JSONResponse({"error": "unknown task"}, status_code=404)
    return JSONResponse(task_dict(info))


async def queues(request: Request) -> Response:
    """``{"active_queues": [{"name", "messages"}, ...]}`` (Flower's queue-length shape)."""
    return JSONResponse({"active_queues": await _monitor(request).queue_lengths()})


async def names(request: Request) -> Response:
    """Every task name seen."""
    return JSONResponse(task_names(_monitor(request).state))


async def charts(request: Request) -> Response:
    """Throughput, runtime and wait per time bucket."""
    return JSONResponse(_monitor(request).charts.series())


def _answer(request: Request, form: dict[str, str], message: str, status: int = 200) -> Response:
    target = str(form.get("next") or "")
    # only a path on this site: never an open redirect
    if target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        sep = "&" if "?" in target else "?"
        return RedirectResponse(f"{target}{sep}flash={'ok' if status == 200 else 'error'}",
                                status_code=303)
    return JSONResponse({"message": message}, status_code=status)


async def revoke(request: Request) -> Response:
    """Revoke a task (``terminate=1``: also stop it where it runs, with ``signal``)."""
    task_id = request.path_params["task_id"]
    form = await _form(request)
    terminate = str(form.get("terminate") or request.query_params.get("terminate") or "")
    signal = str(form.get("signal") or request.query_params.get("signal") or "SIGTERM")
    stop = terminate.lower() in _TRUE
    await _monitor(request).app.arevoke(task_id, terminate=stop, signal=signal)
    verb = "Terminated" if stop else "Revoked"
    return _answer(request, form, f"{verb} '{task_id}'")


async def rate_limit(request: Request) -> Response:
    """Set a task's rate limit on every worker (``ratelimit``: ``10/m``, ``0`` removes)."""
    name = request.path_params["task_name"]
    form = await _form(request)
    value = str(form.get("ratelimit") or request.query_params.get("ratelimit") or "").strip()
    if not value:
        return _answer(request, form, "ratelimit is required", status=400)
    monitor = _monitor(request)
    async with monitor.control_lock:
        replies = await monitor.app.control.abroadcast(
            "rate_limit", {"task_name": name, "rate_limit": value}, reply=True, timeout=1.0)
    return _answer(request, form,
                   f"rate limit of '{name}' set to {value} on {len(replies or [])} worker(s)")


def api_routes() -> list[Route]:
    """The API's routes."""
    return [
        Route("/api/workers", workers),
        Route("/api/tasks", tasks),
        Route("/api/task/info/{task_id}", task),
        Route("/api/task/revoke/{task_id}", revoke, methods=["POST"]),
        Route("/api/task/rate-limit/{task_name}", rate_limit, methods=["POST"]),
        Route("/api/task/{task_id}", task),
        Route("/api/queues", queues),
        Route("/api/queues/length", queues),
        Route("/api/task-names", names),
        Route("/api/charts", charts),
    ]
