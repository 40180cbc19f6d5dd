"""``app.control`` and ``app.control.inspect()``: remote control from a client.

Each call opens its own broker connection, declares the app's pidbox reply
queue when a reply is wanted, broadcasts the request on the pidbox fanout exchange and
collects ``{nodename: answer}`` replies whose ticket matches until ``timeout``
passes (or ``limit`` workers answered), then closes the connection. Control
calls are rare admin calls, so the sync face runs the coroutine on a short-lived
loop (:func:`celeriac.app.broadcast.run_blocking`; DESIGN.md section 2.3
allows this bridge for control).

Shapes follow Celery: :meth:`Control.broadcast` with ``reply=True`` returns a
list of ``{nodename: answer}`` dicts; :class:`Inspect` methods return one dict
``{nodename: answer}``, or ``None`` when no worker answered in time.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from celeriac.app.broadcast import run_blocking
from celeriac.errors import ContentDisallowed, DecodeError
from celeriac.protocol.control import reply_queue
from celeriac.protocol.keys import PIDBOX_EXCHANGE
from celeriac.protocol.pidbox import (
    ControlRequest,
    control_request_envelope,
    merge_replies,
    parse_control_reply,
)
from celeriac.protocol.revoke import revoke_request
from celeriac.transports.base import QueueSpec

if TYPE_CHECKING:
    from celeriac.app.core import App

__all__ = ["Control", "Inspect", "acall"]

logger = logging.getLogger("celeriac.control")

Replies = list[dict[str, Any]]


class _ReplyMailbox:
    """Replies one call read from the app's shared reply queue for another call.

    Every call of a process listens on the same reply queue (Celery's design:
    one per app), so two concurrent calls (threads, or the dashboard polling
    while a button is pressed) read each other's replies. A reply whose ticket
    belongs to another call still open in this process is kept here for it;
    replies to no open call (late answers to a finished one) are dropped.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[str, Replies] = {}

    def open(self, ticket: str) -> None:
        with self._lock:
            self._open[ticket] = []

    def close(self, ticket: str) -> None:
        with self._lock:
            self._open.pop(ticket, None)

    def keep(self, ticket: str | None, replies: dict[str, Any]) -> None:
        with self._lock:
            box = self._open.get(ticket) if ticket is not None else None
            if box is not None:
                box.append(replies)

    def take(self, ticket: str) -> Replies:
        with self._lock:
            box = self._open.get(ticket)
            if not box:
                return []
            taken, box[:] = list(box), []
            return taken


_mailbox = _ReplyMailbox()


class _ReplyQueueUsers:
    """How many calls of this process use each reply queue, so that the last one to
    end deletes it (its binding and late replies), as kombu deletes an auto-delete
    reply queue, and no call deletes it under another.

    A call that starts while the queue is being deleted waits for the delete to
    finish before it declares the queue again (the delete would otherwise remove
    the binding it just wrote and its replies would be dropped). Calls may run on
    different threads and event loops, hence a thread lock and futures woken with
    ``call_soon_threadsafe``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users: dict[str, int] = {}
        self._deleting: dict[str, list[asyncio.Future[None]]] = {}

    async def enter(self, queue: str) -> None:
        """Count a call in; waits while the queue is being deleted."""
        while True:
            with self._lock:
                waiters = self._deleting.get(queue)
                if waiters is None:
                    self._users[queue] = self._users.get(queue, 0) + 1
                    return
                waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                waiters.append(waiter)
            await waiter

    def leave(self, queue: str) -> bool:
        """Count a call out; ``True`` when it was the last: it must delete the queue
        and then call :meth:`deleted`."""
        with self._lock:
            left = self._users[queue] - 1
            if left:
                self._users[queue] = left
                return False
            del self._users[queue]
            self._deleting[queue] = []
            return True

    def deleted(self, queue: str) -> None:
        """The delete is over (done or failed): wake the calls waiting to start."""
        with self._lock:
            waiters = self._deleting.pop(queue, [])
        for waiter in waiters:
            waiter.get_loop().call_soon_threadsafe(_wake, waiter)

    def users(self, queue: str) -> int:
        """Calls of this process using ``queue`` now (for tests)."""
        with self._lock:
            return self._users.get(queue, 0)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


_reply_users = _ReplyQueueUsers()


async def acall(app: App, request: ControlRequest, *, reply: bool = True,
                timeout: float = 1.0, limit: int | None = None) -> Replies:
    """Broadcast ``request``; with ``reply``, the ``{node: answer}`` replies heard within
    ``timeout`` (or until ``limit`` arrived: by default as many as ``destination`` names)."""
    if limit is None and request.destination:
        limit = len(request.destination)  # as kombu: stop once every addressee answered
    transport = app.new_transport()
    await transport.connect()
    try:
        if not reply:
            request = replace(request, clock=app.clock.forward())
            await transport.broadcast(PIDBOX_EXCHANGE, control_request_envelope(request))
            return []
        queue = reply_queue(app.oid)
        spec = QueueSpec(name=queue.name, exchange=queue.exchange, exchange_type="direct",
                         routing_key=queue.routing_key, durable=False,
                         arguments=dict(queue.arguments))
        await _reply_users.enter(queue.name)
        try:
            await transport.declare([spec])
            request = replace(request, ticket=str(uuid.uuid4()), reply_to=app.oid,
                              expires=time.time() + timeout, clock=app.clock.forward())
            assert request.ticket is not None
            # Open before sending: a concurrent call may read our reply at once.
            _mailbox.open(request.ticket)
            try:
                await transport.broadcast(PIDBOX_EXCHANGE, control_request_envelope(request))
                return await _collect(app, transport, queue.name, request.ticket, timeout,
                                      limit)
            finally:
                _mailbox.close(request.ticket)
        finally:
            await _leave_reply_queue(transport, spec)
    finally:
        await transport.close()


async def _leave_reply_queue(transport: Any, spec: QueueSpec) -> None:
    """The last call of this process using the reply queue deletes it (binding, late
    replies); a failure only leaves it behind, as before."""
    if not _reply_users.leave(spec.name):
        return
    try:
        await transport.delete_queue(spec)
    except Exception as exc:  # cleanup never fails the call
        logger.warning("control: could not delete the reply queue %s: %s", spec.name, exc)
    finally:
        _reply_users.deleted(spec.name)


async def _collect(app: App, transport: Any, queue: str, ticket: str, timeout: float,
                   limit: int | None) -> Replies:
    accept = (*app.conf.settings.accept_content, "json")
    replies: Replies = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        replies += _mailbox.take(ticket)  # read for us by a concurrent call
        if limit is not None and len(replies) >= limit:
            break
        remaining = deadline - loop.time()
        if remaining <= 0:
            break
        deliveries = await transport.fetch([queue], 100, min(remaining, 0.25))
        if deliveries:
            await transport.ack(deliveries)
        for delivery in deliveries:
            try:
                answer = parse_control_reply(delivery.envelope, accept)
            except (DecodeError, ContentDisallowed):
                continue
            if answer.clock is not None:
                app.clock.adjust(answer.clock)
            if answer.ticket == ticket:
                replies.append(answer.replies)
            else:  # another open call's (kept for it) or a late one (dropped)
                _mailbox.keep(answer.ticket, answer.replies)
    return replies[:limit] if limit is not None else replies


def _request(command: str, arguments: dict[str, Any] | None, destination: Any,
             pattern: str | None, matcher: str | None) -> ControlRequest:
    if isinstance(destination, str):
        destination = [destination]
    return ControlRequest(method=command, arguments=dict(arguments or {}),
                          destination=list(destination) if destination is not None else None,
                          pattern=pattern, matcher=matcher)


class Control:
    """``app.control``: broadcast commands to workers (Celery's ``Control``)."""

    def __init__(self, app: App) -> None:
        self.app = app

    def inspect(self, destination: Sequence[str] | str | None = None, timeout: float = 1.0,
                limit: int | None = None, pattern: str | None = None,
                matcher: str | None = None, **kwargs: Any) -> Inspect:
        """An :class:`Inspect` for every worker (or ``destination``)."""
        return Inspect(self, destination=destination, timeout=timeout, limit=limit,
                       pattern=pattern, matcher=matcher)

    async def abroadcast(self, command: str, arguments: dict[str, Any] | None = None,
                         destination: Sequence[str] | str | None = None, reply: bool = False,
                         timeout: float = 1.0, limit: int | None = None,
                         pattern: str | None = None, matcher: str | None = None,
                         **kwargs: Any) -> Replies | None:
        """Async :meth:`broadcast`."""
        request = _request(command, arguments, destination, pattern, matcher)
        replies = await acall(self.app, request, reply=reply, timeout=timeout, limit=limit)
        return replies if reply else None

    def broadcast(self, command: str, arguments: dict[str, Any] | None = None,
                  destination: Sequence[str] | str | None = None, reply: bool = False,
                  timeout: float = 1.0, limit: int | None = None,
                  pattern: str | None = None, matcher: str | None = None,
                  **kwargs: Any) -> Replies | None:
        """Send ``command`` to every worker (or ``destination``); with ``reply``, wait up
        to ``timeout`` and return ``[{nodename: answer}, ...]``."""
        box: list[Replies | None] = []

        async def run() -> None:
            box.append(await self.abroadcast(command, arguments, destination, reply, timeout,
                                             limit, pattern, matcher))

        run_blocking(run)
        return box[0]

    def _send(self, command: str, arguments: dict[str, Any], destination: Any,
              kwargs: dict[str, Any]) -> Replies | None:
        return self.broadcast(command, arguments, destination, **kwargs)

    # -- Celery's named commands -------------------------------------------------------
    def ping(self, destination: Sequence[str] | str | None = None, timeout: float = 1.0,
             **kwargs: Any) -> Replies:
        """``[{nodename: {"ok": "pong"}}, ...]`` from the workers that answered."""
        return self.broadcast("ping", {}, destination, reply=True, timeout=timeout,
                              **kwargs) or []

    def revoke(self, task_id: str | Sequence[str], destination: Sequence[str] | None = None,
               terminate: bool = False, signal: str | int = "SIGTERM", reply: bool = False,
               timeout: float = 1.0, **kwargs: Any) -> Replies | None:
        """Revoke ``task_id`` (or a list of ids) on every worker (or ``destination``)."""
        if not reply:
            self.app.revoke(task_id, terminate=terminate, signal=signal, destination=destination)
            return None
        ids = [task_id] if isinstance(task_id, str) else list(task_id)
        self.app._store_revoked(ids)
        request = revoke_request(ids, terminate=terminate, signal=signal,
                                 destination=destination)
        return self.broadcast(request.method, request.arguments, destination, reply=True,
                              timeout=timeout, **kwargs)

    def terminate(self, task_id: str | Sequence[str], destination: Sequence[str] | None = None,
                  signal: str | int = "SIGTERM", **kwargs: Any) -> Replies | None:
        """Revoke and stop ``task_id`` where it runs (``revoke(terminate=True)``)."""
        return self.revoke(task_id, destination, terminate=True, signal=signal, **kwargs)

    def rate_limit(self, task_name: str, rate_limit: str | float | None,
                   destination: Sequence[str] | None = None, **kwargs: Any) -> Replies | None:
        """Set ``task_name``'s rate limit on the workers (``"10/m"``; 0 removes it)."""
        return self._send("rate_limit", {"task_name": task_name, "rate_limit": rate_limit},
                          destination, kwargs)

    def time_limit(self, task_name: str, soft: float | None = None, hard: float | None = None,
                   destination: Sequence[str] | None = None, **kwargs: Any) -> Replies | None:
        """Set ``task_name``'s soft and hard time limits on the workers."""
        return self._send("time_limit", {"task_name": task_name, "soft": soft, "hard": hard},
                          destination, kwargs)

    def shutdown(self, destination: Sequence[str] | None = None, **kwargs: Any) -> Replies | None:
        """Warm-shutdown the workers (running tasks finish and are acked first)."""
        return self._send("shutdown", {}, destination, kwargs)

    def pool_grow(self, n: int = 1, destination: Sequence[str] | None = None,
                  **kwargs: Any) -> Replies | None:
        """Add ``n`` pool slots on the workers."""
        return self._send("pool_grow", {"n": n}, destination, kwargs)

    def pool_shrink(self, n: int = 1, destination: Sequence[str] | None = None,
                    **kwargs: Any) -> Replies | None:
        """Remove ``n`` pool slots on the workers."""
        return self._send("pool_shrink", {"n": n}, destination, kwargs)

    def add_consumer(self, queue: str, exchange: str | None = None,
                     exchange_type: str = "direct", routing_key: str | None = None,
                     options: dict[str, Any] | None = None,
                     destination: Sequence[str] | None = None, **kwargs: Any) -> Replies | None:
        """Have the workers start consuming ``queue``."""
        arguments = {"queue": queue, "exchange": exchange, "exchange_type": exchange_type,
                     "routing_key": routing_key, **(options or {})}
        return self._send("add_consumer", arguments, destination, kwargs)

    def cancel_consumer(self, queue: str, destination: Sequence[str] | None = None,
                        **kwargs: Any) -> Replies | None:
        """Have the workers stop consuming ``queue``."""
        return self._send("cancel_consumer", {"queue": queue}, destination, kwargs)

    def enable_events(self, destination: Sequence[str] | None = None,
                      **kwargs: Any) -> Replies | None:
        """Ask the workers to send task events (celeriac workers answer whether they can)."""
        return self._send("enable_events", {}, destination, kwargs)

    def disable_events(self, destination: Sequence[str] | None = None,
                       **kwargs: Any) -> Replies | None:
        """Ask the workers to stop sending task events."""
        return self._send("disable_events", {}, destination, kwargs)


class Inspect:
    """``app.control.inspect()``: read-only questions; each returns ``{node: answer}``
    merged from every reply, or ``None`` when no worker answered within ``timeout``."""

    def __init__(self, control: Control, *, destination: Sequence[str] | str | None = None,
                 timeout: float = 1.0, limit: int | None = None, pattern: str | None = None,
                 matcher: str | None = None) -> None:
        self.control = control
        self.destination = destination
        self.timeout = timeout
        self.limit = limit
        self.pattern = pattern
        self.matcher = matcher

    def _request(self, command: str, **arguments: Any) -> dict[str, Any] | None:
        replies = self.control.broadcast(command, arguments, self.destination, reply=True,
                                         timeout=self.timeout, limit=self.limit,
                                         pattern=self.pattern, matcher=self.matcher)
        if not replies:
            return None
        merged = merge_replies(replies)
        if isinstance(self.destination, str):
            return merged.get(self.destination)
        return merged

    def ping(self) -> dict[str, Any] | None:
        """``{node: {"ok": "pong"}}``."""
        return self._request("ping")

    def clock(self) -> dict[str, Any] | None:
        """``{node: {"clock": n}}``: each worker's Lamport clock."""
        return self._request("clock")

    def active(self) -> dict[str, Any] | None:
        """``{node: [task info, ...]}`` for the tasks running now."""
        return self._request("active")

    def reserved(self) -> dict[str, Any] | None:
        """``{node: [task info, ...]}`` for tasks received but not started."""
        return self._request("reserved")

    def scheduled(self) -> dict[str, Any] | None:
        """``{node: [{"eta", "priority", "request"}, ...]}`` for ETA tasks held."""
        return self._request("scheduled")

    def registered(self) -> dict[str, Any] | None:
        """``{node: [task name, ...]}``."""
        return self._request("registered")

    registered_tasks = registered

    def stats(self) -> dict[str, Any] | None:
        """``{node: {counters and facts}}``."""
        return self._request("stats")

    def revoked(self) -> dict[str, Any] | None:
        """``{node: [revoked id, ...]}``."""
        return self._request("revoked")

    def active_queues(self) -> dict[str, Any] | None:
        """``{node: [queue, ...]}`` for the queues consumed."""
        return self._request("active_queues")

    def conf(self, with_defaults: bool = False) -> dict[str, Any] | None:
        """``{node: {setting: value}}`` (secrets left out, passwords masked)."""
        return self._request("conf", with_defaults=with_defaults)

    def report(self) -> dict[str, Any] | None:
        """``{node: {"ok": text}}``: versions and platform."""
        return self._request("report")
