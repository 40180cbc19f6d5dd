"""Receiving events: ``app.events.Receiver(handlers={...}).capture()``, as in Celery.

A receiver subscribes to the broker's event exchange (a private queue bound
with ``#`` on RabbitMQ, a pattern subscription on Redis) and calls the handler
registered for each event's type, or the ``"*"`` handler, with the event dict
(batched ``task.multi`` messages are unpacked; each event gets
``local_received``, the time it arrived here, as Celery adds it).

Events are not stored by the broker: a receiver sees what is published while
it is subscribed. :meth:`EventReceiver.wait_ready` tells when that is (it
publishes a probe event to itself until it comes back).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from celeriac.app.broadcast import run_blocking
from celeriac.errors import DecodeError
from celeriac.protocol.envelope import Envelope
from celeriac.protocol.events import (
    ALL_EVENTS,
    PROBE_TYPE,
    event_envelope,
    event_routing_key,
    parse_events,
    probe_event,
)
from celeriac.protocol.keys import EVENT_EXCHANGE

if TYPE_CHECKING:
    from celeriac.app.core import App
    from celeriac.transports.base import Transport

__all__ = ["EventHandler", "EventReceiver"]

logger = logging.getLogger("celeriac.events")

#: Called with one event dict.
EventHandler = Callable[[dict[str, Any]], Any]

_PROBE_EVERY = 0.05


class EventReceiver:
    """Calls ``handlers[event type]`` (or ``handlers["*"]``) for every event received.

    ``binding_keys`` narrow what is received (``("worker.#",)``: worker events
    only); the default is every event. Use :meth:`capture` from sync code or
    ``await`` :meth:`acapture`; both return how many events were handled.
    """

    def __init__(self, app: App, handlers: Mapping[str, EventHandler] | None = None, *,
                 binding_keys: Sequence[str] = (ALL_EVENTS,),
                 accept: Sequence[str] | None = None) -> None:
        self.app = app
        self.handlers = dict(handlers or {})
        self.binding_keys = tuple(binding_keys)
        self.accept = set(accept or app.conf.settings.accept_content or ("json",)) | {"json"}
        self.id = str(uuid.uuid4())
        self.count = 0
        self._ready = asyncio.Event()
        self._limit: int | None = None
        self._error: BaseException | None = None
        self._stop: asyncio.Event | None = None

    # -- capturing -------------------------------------------------------------------
    def capture(self, limit: int | None = None, timeout: float | None = None,
                wakeup: bool = True) -> int:
        """Handle events until ``limit`` were handled or ``timeout`` seconds passed
        (forever when both are ``None``); returns how many were handled.

        ``wakeup`` is accepted for Celery's signature and ignored.
        """
        box: list[int] = []

        async def run() -> None:
            box.append(await self.acapture(limit, timeout))

        run_blocking(run)
        return box[0]

    async def acapture(self, limit: int | None = None, timeout: float | None = None,
                       transport: Transport | None = None) -> int:
        """Async :meth:`capture` (``transport``: a connected one to use; else its own)."""
        own = transport is None
        tr = transport if transport is not None else self.app.new_transport()
        self._ready = asyncio.Event()
        self._stop = asyncio.Event()
        self._limit = None if limit is None else self.count + limit
        self._error = None
        if own:
            await tr.connect()
        try:
            keys = self.binding_keys
            if ALL_EVENTS not in keys:  # the probe of wait_ready() must come through
                keys = (*keys, event_routing_key(PROBE_TYPE))
            subscription = asyncio.ensure_future(
                tr.subscribe(EVENT_EXCHANGE, keys, self._on_envelope))
            stop = asyncio.ensure_future(self._stop.wait())
            try:
                await asyncio.wait({subscription, stop}, timeout=timeout,
                                   return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (subscription, stop):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            if subscription.done() and not subscription.cancelled():
                subscription.result()  # a subscription that ended by itself raises here
        finally:
            if own:
                await tr.close()
        if self._error is not None:
            raise self._error
        return self.count

    def stop(self) -> None:
        """End a running :meth:`acapture` (from the loop it runs on)."""
        if self._stop is not None:
            self._stop.set()

    async def wait_ready(self, timeout: float = 10.0, transport: Transport | None = None) -> None:
        """Return once the running capture receives events (its subscription is live).

        Publishes a probe event to itself until it arrives; raises
        ``TimeoutError`` if it does not within ``timeout`` seconds.
        """
        own = transport is None
        tr = transport if transport is not None else self.app.new_transport()
        if own:
            await tr.connect()
        try:
            probe = event_envelope(
                probe_event(self.id, hostname=socket.gethostname(), pid=os.getpid()),
                hostname=socket.gethostname())
            async with asyncio.timeout(timeout):
                while not self._ready.is_set():
                    await tr.broadcast(EVENT_EXCHANGE, probe)
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(_PROBE_EVERY):
                            await self._ready.wait()
        finally:
            if own:
                await tr.close()

    # -- dispatching -------------------------------------------------------------------
    def _on_envelope(self, envelope: Envelope) -> None:
        try:
            events = parse_events(envelope, self.accept)
        except DecodeError as exc:
            logger.warning("events: undecodable event message dropped: %s", exc)
            return
        now = time.time()
        for event in events:
            if event["type"] == PROBE_TYPE:
                if event.get("uuid") == self.id:
                    self._ready.set()
                continue
            if self._stop is None or self._stop.is_set():
                return
            event["local_received"] = now
            self.process(event)

    def process(self, event: dict[str, Any]) -> None:
        """Hand one event dict to its handler (also usable to replay events); the
        app's Lamport clock moves past the event's ``clock``, as in Celery."""
        clock = event.get("clock")
        if isinstance(clock, int) and clock > 0:
            self.app.clock.adjust(clock)
        handler = self.handlers.get(event["type"]) or self.handlers.get("*")
        self.count += 1
        if handler is not None:
            try:
                handler(event)
            except Exception as exc:  # raised from capture(); the capture ends
                self._error = exc
                self.stop()
                return
        if self._limit is not None and self.count >= self._limit:
            self.stop()
