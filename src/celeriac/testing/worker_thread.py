"""Run a real worker in a background thread: for users' tests and ours.

``with run_worker(app, pool="threads") as worker: ...`` starts a
:class:`~celeriac.worker.worker.Worker` on its own event loop in a daemon
thread, returns once it is consuming, and on exit performs a warm shutdown and
waits for the thread. Exceptions inside the worker are re-raised on exit.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from celeriac.app.core import App
from celeriac.events import worker_dispatcher
from celeriac.worker.worker import Worker, WorkerOptions

__all__ = ["run_worker"]


@contextmanager
def run_worker(app: App, *, pool: str = "threads", concurrency: int = 2,
               timeout: float = 30.0, **options: Any) -> Iterator[Worker]:
    """Start a worker for ``app`` in a thread; stop it (warm) when the block ends."""
    started = threading.Event()
    box: dict[str, Any] = {}

    async def main() -> None:
        opts = WorkerOptions(pool=pool, concurrency=concurrency, **options)
        worker = Worker(app, opts, events=worker_dispatcher(app, opts.send_events))
        box["worker"] = worker
        box["loop"] = asyncio.get_running_loop()
        runner = asyncio.ensure_future(worker.run())
        ready = asyncio.ensure_future(worker.ready.wait())
        await asyncio.wait({runner, ready}, return_when=asyncio.FIRST_COMPLETED)
        started.set()
        box["code"] = await runner

    def target() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # handed to the caller
            box["error"] = exc
        finally:
            started.set()

    thread = threading.Thread(target=target, name="celeriac-test-worker", daemon=True)
    thread.start()
    if not started.wait(timeout):
        raise TimeoutError(f"the worker did not start within {timeout}s")
    if "error" in box:
        raise box["error"]
    worker: Worker = box["worker"]
    try:
        yield worker
    finally:
        loop: asyncio.AbstractEventLoop = box["loop"]
        if not loop.is_closed():
            loop.call_soon_threadsafe(worker.stop)
        thread.join(timeout)
        if thread.is_alive():
            raise TimeoutError(f"the worker did not stop within {timeout}s")
        if "error" in box:
            raise box["error"]
