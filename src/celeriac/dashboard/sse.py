"""``/events/stream``: live updates as Server-Sent Events.

Each message is one JSON object on a ``data:`` line: ``{"type": "task-started",
"task": {...}}`` or ``{"type": "worker-heartbeat", "worker": {...}}``, or
``{"type": "resync"}`` when this client fell too far behind (it reloads).
A comment line goes out every ``keepalive`` seconds so proxies keep the
connection open and a closed one is noticed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from celeriac.dashboard.monitor import Monitor

__all__ = ["sse_routes"]

KEEPALIVE = 15.0


async def _messages(monitor: Monitor) -> AsyncIterator[bytes]:
    queue = monitor.subscribe()
    try:
        yield b"retry: 2000\n: connected\n\n"
        while True:  # ends when the client goes away (the response cancels it)
            try:
                async with asyncio.timeout(KEEPALIVE):
                    message = await queue.get()
            except TimeoutError:
                yield b": keepalive\n\n"
                continue
            yield b"data: " + orjson.dumps(message) + b"\n\n"
    finally:
        monitor.unsubscribe(queue)


async def stream(request: Request) -> Response:
    """The live stream of task and worker updates."""
    monitor: Monitor = request.app.state.monitor
    return StreamingResponse(_messages(monitor), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def sse_routes() -> list[Route]:
    """The stream's route."""
    return [Route("/events/stream", stream)]
