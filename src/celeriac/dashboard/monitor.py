"""The dashboard's one view of the cluster: an event receiver feeding a ClusterState,
metrics, chart buckets and live subscribers, plus workers' inspect answers.

One :class:`Monitor` per dashboard process. :meth:`Monitor.run` (started by the
app's lifespan) captures events until cancelled, reconnecting after broker
errors, and asks the workers for ``stats`` and ``active_queues`` every few
seconds and whenever a new worker appears (pool and queues are not in events).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from celeriac.dashboard.metrics import DashboardMetrics
from celeriac.dashboard.shapes import task_dict, worker_dict
from celeriac.events import ClusterState, EventReceiver
from celeriac.protocol.pidbox import merge_replies

if TYPE_CHECKING:
    from celeriac.facade import Celery

__all__ = ["ChartBuckets", "Monitor"]

logger = logging.getLogger("celeriac.dashboard")

#: Events a slow live subscriber may lag behind before it is told to resync.
_SUBSCRIBER_BACKLOG = 1000
_RECONNECT_DELAY = 2.0


@dataclass(slots=True)
class _Bucket:
    start: float
    succeeded: int = 0
    failed: int = 0
    runtime_sum: float = 0.0
    runtime_max: float = 0.0
    wait_sum: float = 0.0
    waits: int = 0


class ChartBuckets:
    """Finished tasks, runtimes and waits in fixed time buckets (the charts' data)."""

    def __init__(self, width: float = 5.0, keep: int = 120) -> None:
        self.width = width
        self.buckets: deque[_Bucket] = deque(maxlen=keep)

    def _bucket(self, now: float) -> _Bucket:
        start = now - now % self.width
        if not self.buckets or self.buckets[-1].start < start:
            self.buckets.append(_Bucket(start))
        return self.buckets[-1]

    def observe(self, kind: str, event: dict[str, Any], wait: float | None, now: float) -> None:
        """Count one task event that arrived at ``now`` (``wait``: queued time of a start)."""
        bucket = self._bucket(now)
        if kind == "task-succeeded":
            bucket.succeeded += 1
            runtime = event.get("runtime")
            if isinstance(runtime, int | float):
                bucket.runtime_sum += float(runtime)
                bucket.runtime_max = max(bucket.runtime_max, float(runtime))
        elif kind == "task-failed":
            bucket.failed += 1
        elif kind == "task-started" and wait is not None:
            bucket.wait_sum += max(wait, 0.0)
            bucket.waits += 1

    def series(self) -> dict[str, Any]:
        """``{"width", "points": [{"t", "throughput", "failed", "runtime_avg",
        "runtime_max", "wait_avg"}, ...]}`` (throughput in tasks per second)."""
        points = [{
            "t": b.start,
            "throughput": (b.succeeded + b.failed) / self.width,
            "failed": b.failed,
            "runtime_avg": b.runtime_sum / b.succeeded if b.succeeded else None,
            "runtime_max": b.runtime_max if b.succeeded else None,
            "wait_avg": b.wait_sum / b.waits if b.waits else None,
        } for b in self.buckets]
        return {"width": self.width, "points": points}


class Monitor:
    """Cluster state, metrics, charts and live subscribers of one dashboard."""

    def __init__(self, app: Celery, state: ClusterState | None = None, *,
                 inspect_every: float = 10.0) -> None:
        self.app = app
        self.state = state if state is not None else ClusterState()
        self.metrics = DashboardMetrics(self.state)
        self.charts = ChartBuckets()
        self.inspect_every = inspect_every
        self.inspected: dict[str, dict[str, Any]] = {}
        """hostname -> {"stats": ..., "active_queues": [...]} from the last inspect."""
        self.receiver = EventReceiver(app, {"*": self.handle})
        self.live = asyncio.Event()
        self._subscribers: set[asyncio.Queue[dict[str, Any]]] = set()
        self._inspect_soon = asyncio.Event()
        self.control_lock = asyncio.Lock()
        """Held by each control call that waits for replies: calls of one app share its
        reply queue, and a call drops the replies that carry another call's ticket."""

    # -- events ---------------------------------------------------------------------
    def handle(self, event: dict[str, Any]) -> None:
        """Apply one event to the state, metrics and charts, and tell the subscribers."""
        kind = str(event.get("type", ""))
        hostname = str(event.get("hostname", ""))
        if kind.startswith("worker-") and hostname not in self.state.workers:
            self._inspect_soon.set()
        self.state.event(event)
        self.metrics.observe(event)
        now = float(event.get("local_received") or time.time())
        task = self.state.tasks.get(str(event.get("uuid"))) if kind.startswith("task-") else None
        if task is not None:
            wait = None
            if kind == "task-started":
                queued = task.timestamps.get("sent") or task.timestamps.get("received")
                started = task.timestamps.get("started")
                wait = started - queued if queued is not None and started is not None else None
            self.charts.observe(kind, event, wait, now)
        if not self._subscribers:
            return
        message: dict[str, Any] = {"type": kind}
        if task is not None:
            message["task"] = task_dict(task)
        elif kind.startswith("worker-") and hostname in self.state.workers:
            message["worker"] = worker_dict(self.state.workers[hostname], time.time(),
                                            self.inspected.get(hostname))
        else:
            return
        self.publish(message)

    def publish(self, message: dict[str, Any]) -> None:
        """Hand ``message`` to every live subscriber (a lagging one gets ``resync``)."""
        for queue in self._subscribers:
            try:
                queue.put_nowait(message)
            except asyncio.QueueFull:
                while not queue.empty():
                    queue.get_nowait()
                queue.put_nowait({"type": "resync"})

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        """A queue that receives every later live message until :meth:`unsubscribe`."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(_SUBSCRIBER_BACKLOG)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        """Stop feeding ``queue``."""
        self._subscribers.discard(queue)

    # -- running ---------------------------------------------------------------------
    async def run(self) -> None:
        """Capture events and refresh inspect answers until cancelled."""
        inspector = asyncio.ensure_future(self._inspect_loop())
        try:
            while True:
                capture = asyncio.ensure_future(self.receiver.acapture())
                try:
                    await self.receiver.wait_ready()
                    self.live.set()
                    await capture
                except TypeError as exc:  # a broker without broadcast: no events ever
                    logger.error("dashboard: this broker cannot carry events: %s", exc)
                    return
                except Exception as exc:  # broker down, a handler bug: start over
                    logger.warning("dashboard: event capture failed (%r); retrying", exc)
                finally:
                    self.live.clear()
                    self.receiver.stop()
                    capture.cancel()
                    with contextlib.suppress(BaseException):
                        await capture
                await asyncio.sleep(_RECONNECT_DELAY)
        finally:
            inspector.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await inspector

    async def _inspect_loop(self) -> None:
        while True:
            with contextlib.suppress(Exception):
                await self.refresh_inspect()
            self._inspect_soon.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.inspect_every):
                    await self._inspect_soon.wait()

    async def refresh_inspect(self, timeout: float = 2.0) -> None:
        """Ask every worker for ``stats`` and ``active_queues`` (answers within ``timeout``,
        or as soon as every live worker answered)."""
        control = self.app.control
        limit = len(self.state.alive_workers()) or None
        async with self.control_lock:
            stats = await control.abroadcast("stats", reply=True, timeout=timeout, limit=limit)
            queues = await control.abroadcast("active_queues", reply=True, timeout=timeout,
                                              limit=limit)
        for command, replies in (("stats", stats), ("active_queues", queues)):
            for host, answer in merge_replies(replies or []).items():
                self.inspected.setdefault(host, {})[command] = answer

    # -- queues ----------------------------------------------------------------------
    def queue_names(self) -> list[str]:
        """The app's queues and every queue a worker said it consumes."""
        settings = self.app.conf.settings
        names = {settings.task_default_queue}
        for queue in settings.task_queues or ():
            name = getattr(queue, "name", queue)
            if isinstance(name, str):
                names.add(name)
        for info in self.inspected.values():
            for queue in info.get("active_queues") or ():
                if isinstance(queue, dict) and isinstance(queue.get("name"), str):
                    names.add(queue["name"])
        return sorted(names)

    async def queue_lengths(self) -> list[dict[str, Any]]:
        """``[{"name", "messages"}, ...]`` from the broker (``messages`` is None when the
        broker could not tell)."""
        transport = self.app.new_transport()
        out: list[dict[str, Any]] = []
        try:
            await transport.connect()
            for name in self.queue_names():
                try:
                    length: int | None = await transport.queue_length(name)
                except Exception:  # a queue that does not exist yet, a closed channel
                    length = None
                out.append({"name": name, "messages": length})
        finally:
            with contextlib.suppress(Exception):
                await transport.close()
        return out
