"""The worker's event dispatcher: Celery-compatible ``worker-*`` and ``task-*`` events.

Plugged into the worker's hooks (:class:`~celeriac.worker.events.WorkerEvents`).
It publishes on the broker's event exchange over a connection of its own, so
event traffic never waits behind (or delays) task fetches and acks.

* **Worker events** (``worker-online``, ``worker-heartbeat`` every
  ``heartbeat_interval`` seconds, ``worker-offline`` at shutdown) are always
  sent, as a Celery worker sends them without ``-E`` (its heartbeat and gossip
  are on by default); monitors use them to see which workers are alive.
* **Task events** are sent only when enabled (``-E``,
  ``worker_send_task_events``, or :meth:`EventDispatcher.set_task_events` at
  run time). Disabled, the task hooks are the base class's no-ops: the hot
  path pays one method call, as with no dispatcher at all. Enabled, a hook
  appends a dict to a buffer; the buffer goes out as one ``task.multi``
  message (as Celery workers batch them) when ``batch_size`` events wait or
  ``flush_interval`` seconds after the first, whichever comes first.

Publishing never breaks the worker: when the broker refuses, the events are
dropped with a warning (events are monitoring data; Celery drops them too
when its buffer overflows).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import platform
import time
from collections.abc import Mapping
from importlib import metadata
from typing import TYPE_CHECKING, Any

from celeriac.protocol import states
from celeriac.protocol.events import (
    HEARTBEAT_FREQ,
    event_envelope,
    exception_repr,
    local_utcoffset,
    stamped,
    task_failed_fields,
    task_received_fields,
    task_rejected_fields,
    task_revoked_fields,
    task_started_fields,
    task_succeeded_fields,
    worker_event,
    worker_fields,
)
from celeriac.protocol.keys import EVENT_EXCHANGE
from celeriac.transports.base import raise_if_cancelled
from celeriac.worker.events import WorkerEvents

if TYPE_CHECKING:
    from celeriac.app.core import App
    from celeriac.app.trace import Outcome
    from celeriac.transports.base import Transport
    from celeriac.worker.request import Request
    from celeriac.worker.worker import Worker

__all__ = ["SW_IDENT", "EventDispatcher"]

logger = logging.getLogger("celeriac.events")

#: What celeriac workers call their software in worker events (Celery: ``py-celery``).
SW_IDENT = "py-celeriac"
#: The task hooks switched on and off by :meth:`EventDispatcher.set_task_events`.
_TASK_HOOKS = ("task_received", "task_started", "task_outcome", "task_revoked")
#: Most task events kept while the broker refuses them (then the oldest go).
_MAX_BUFFER = 10_000
_CLOSE_TIMEOUT = 5.0


def _software_version() -> str:
    try:
        return metadata.version("celeriac")
    except metadata.PackageNotFoundError:
        return "0"


class EventDispatcher(WorkerEvents):
    """Publishes a worker's events (construct, then hand to ``Worker(events=...)``)."""

    def __init__(self, app: App, *, task_events: bool = False,
                 heartbeat_interval: float = HEARTBEAT_FREQ, flush_interval: float = 0.1,
                 batch_size: int = 100) -> None:
        self.app = app
        self.heartbeat_interval = heartbeat_interval
        self.flush_interval = flush_interval
        self.batch_size = batch_size
        self.serializer = app.conf.settings.event_serializer
        self.task_events = False
        self.hostname = ""
        self.pid = os.getpid()
        self.utcoffset = local_utcoffset()
        self.clock = app.clock  # the app's Lamport clock (shared with remote control)
        self.sw_ver = _software_version()
        self.sw_sys = platform.system()
        self._worker: Worker | None = None
        self._transport: Transport | None = None
        self._buffer: list[dict[str, Any]] = []
        self._first_at = 0.0
        self._wake: asyncio.Event | None = None
        self._send_lock: asyncio.Lock | None = None
        self._broken = False
        self.set_task_events(task_events)

    # -- switching task events (also for remote control's enable/disable_events) -------
    def set_task_events(self, enabled: bool) -> None:
        """Turn task events on or off now (worker events are always sent).

        Off, the task hooks are the base class's no-ops again.
        """
        self.task_events = enabled
        for name in _TASK_HOOKS:
            if enabled:
                setattr(self, name, getattr(self, "_on_" + name))
            else:
                self.__dict__.pop(name, None)

    # -- lifecycle (called by the worker) ------------------------------------------------
    async def open(self, worker: Worker) -> None:
        """Connect and send ``worker-online``."""
        self._worker = worker
        self.hostname = worker.hostname
        self.pid = worker.pid
        self._wake = asyncio.Event()
        self._send_lock = asyncio.Lock()
        transport = self.app.new_transport()
        try:
            await transport.connect()
        except Exception as exc:
            logger.warning("events: cannot connect to %s, no events will be sent: %s",
                           transport.describe(), exc)
            self._broken = True
            return
        self._transport = transport
        await self._send_worker("online")

    async def run(self) -> None:
        """Send heartbeats and flush task events until cancelled."""
        wake = self._wake
        if wake is None or self._transport is None:
            return
        next_beat = time.monotonic() + self.heartbeat_interval
        while True:
            now = time.monotonic()
            timeout = next_beat - now
            if self._buffer:
                timeout = min(timeout, self._first_at + self.flush_interval - now)
            if timeout > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(timeout):
                        await wake.wait()
            wake.clear()
            now = time.monotonic()
            if self._buffer and (len(self._buffer) >= self.batch_size
                                 or now >= self._first_at + self.flush_interval):
                await self.flush()
            if now >= next_beat:
                await self._send_worker("heartbeat")
                next_beat = now + self.heartbeat_interval
            raise_if_cancelled()

    async def close(self) -> None:
        """Flush what waits, send ``worker-offline``, disconnect (bounded in time)."""
        transport = self._transport
        if transport is None:
            return
        try:
            async with asyncio.timeout(_CLOSE_TIMEOUT):
                await self.flush()
                await self._send_worker("offline")
        except TimeoutError:
            logger.warning("events: worker-offline not sent within %.0fs", _CLOSE_TIMEOUT)
        finally:
            self._transport = None
            with contextlib.suppress(Exception):
                await transport.close()

    # -- sending -------------------------------------------------------------------------
    async def flush(self) -> None:
        """Publish the buffered task events now, as one ``task.multi`` message."""
        if not self._buffer:
            return
        batch, self._buffer = self._buffer, []
        await self._publish(batch)

    async def _send_worker(self, kind: str) -> None:
        worker = self._worker
        consumer = worker.consumer if worker is not None else None
        event = worker_event(
            kind, hostname=self.hostname, pid=self.pid, clock=self.clock.forward(),
            utcoffset=self.utcoffset,
            **worker_fields(
                active=len(consumer.inflight) if consumer is not None else 0,
                processed=consumer.processed if consumer is not None else 0,
                loadavg=_loadavg(), sw_ident=SW_IDENT, sw_ver=self.sw_ver, sw_sys=self.sw_sys,
                freq=self.heartbeat_interval,
            ),
        )
        await self._publish(event)

    async def _publish(self, events: Mapping[str, Any] | list[dict[str, Any]]) -> None:
        transport = self._transport
        if transport is None or self._broken or self._send_lock is None:
            return
        envelope = event_envelope(events, hostname=self.hostname, serializer=self.serializer)
        async with self._send_lock:  # one message at a time: events keep their order
            try:
                await transport.broadcast(EVENT_EXCHANGE, envelope)
            except TypeError as exc:
                logger.warning("events: %s; no events will be sent", exc)
                self._broken = True
            except Exception as exc:
                logger.warning("events: could not publish %s: %s", envelope.routing_key, exc)

    def _task(self, type_: str, fields: dict[str, Any]) -> None:
        buffer = self._buffer
        buffer.append(stamped(type_, fields, hostname=self.hostname, utcoffset=self.utcoffset,
                              pid=self.pid, clock=self.clock.forward(), timestamp=time.time()))
        size = len(buffer)
        if size == 1:
            self._first_at = time.monotonic()
            if self._wake is not None:
                self._wake.set()
        elif size >= self.batch_size and self._wake is not None:
            self._wake.set()
        if size > _MAX_BUFFER:
            del buffer[: size - _MAX_BUFFER]

    # -- the task hooks (installed by set_task_events(True)) -----------------------------
    def _on_task_received(self, request: Request) -> None:
        self._task("task-received", task_received_fields(request.message))

    def _on_task_started(self, request: Request) -> None:
        self._task("task-started", task_started_fields(request.id))

    def _on_task_outcome(self, request: Request, outcome: Outcome) -> None:
        status = outcome.status
        if status == states.SUCCESS:
            self._task("task-succeeded",
                       task_succeeded_fields(request.id, outcome.value, outcome.runtime))
        elif status in (states.FAILURE, states.RETRY):
            shown = repr(outcome.exc) if outcome.exc is not None else \
                exception_repr(outcome.exc_wire)
            kind = "task-failed" if status == states.FAILURE else "task-retried"
            self._task(kind, task_failed_fields(request.id, shown, outcome.traceback))
        elif status == states.REJECTED:
            self._task("task-rejected", task_rejected_fields(request.id, requeue=outcome.requeue))
        elif status == states.REVOKED:
            self._task("task-revoked", task_revoked_fields(request.id, terminated=True,
                                                           signum=None, expired=False))

    def _on_task_revoked(self, request: Request, *, expired: bool) -> None:
        self._task("task-revoked", task_revoked_fields(request.id, terminated=False,
                                                       signum=None, expired=expired))




def _loadavg() -> tuple[float, ...]:
    try:
        return tuple(round(x, 2) for x in os.getloadavg())
    except OSError:
        return (0.0, 0.0, 0.0)
