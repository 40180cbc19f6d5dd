"""Revokes reaching every worker: a listener on the broker's pidbox broadcast.

``app.revoke(id)`` (and ``AsyncResult.revoke()``, ``app.control.revoke()``,
Celery's ``celery control revoke``) broadcasts a pidbox ``revoke`` request.
Each worker runs one :class:`RevokeListener` in its task group: it marks the
ids revoked in :class:`~celeriac.worker.state.WorkerState` (persisted with
``--statedb``), so a message with that id is discarded as REVOKED when it
arrives or before it starts (after an ETA or rate-limit wait), and with
``terminate=True`` it stops the task if it is running here
(:meth:`Pool.terminate`: the prefork child gets the signal; an asyncio task is
cancelled; a thread cannot be stopped, so it only ends REVOKED if it had not
started).

Other pidbox methods (and replies) are left to the remote-control service
(:attr:`RevokeListener.on_request`); this listener applies only ``revoke``.
Before the worker reports ``ready`` the listener proves its subscription
live by receiving a ``ping`` addressed to this node alone, so a revoke sent
after ``ready`` is never missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from celeriac.errors import ContentDisallowed, DecodeError, OperationalError
from celeriac.protocol.envelope import Envelope
from celeriac.protocol.keys import PIDBOX_EXCHANGE
from celeriac.protocol.pidbox import ControlRequest, control_request_envelope, parse_control_request
from celeriac.protocol.revoke import REVOKE_METHOD, revoke_order

if TYPE_CHECKING:
    from celeriac.worker.worker import Worker

__all__ = ["RevokeListener"]

logger = logging.getLogger("celeriac.worker")

_PROBE_METHOD = "ping"


class RevokeListener:
    """Subscribes to the pidbox exchange and applies ``revoke`` requests to one worker."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.accept = (*worker.app.conf.settings.accept_content, "json")
        self._live = asyncio.Event()
        self._probe_ticket = f"probe-{worker.hostname}-{time.time()}"
        self.supported = True
        #: The remote-control service (``celeriac.control``) answers every other
        #: request for this node here, and replies to revokes that want a reply.
        self.on_request: Callable[[ControlRequest], Awaitable[None]] | None = None

    async def run(self) -> None:
        """Deliver broadcasts to :meth:`handle` until cancelled."""
        try:
            await self.worker.transport.subscribe(PIDBOX_EXCHANGE, [], self.handle)
        except TypeError as exc:
            self.supported = False
            self._live.set()
            logger.warning("revokes cannot reach this worker: %s", exc)

    async def wait_live(self, timeout: float = 5.0) -> bool:
        """Ping this node through the broker until the listener hears it (or ``timeout``)."""
        probe = control_request_envelope(ControlRequest(
            method=_PROBE_METHOD, destination=[self.worker.hostname],
            arguments={"probe": self._probe_ticket},
        ))
        deadline = time.monotonic() + timeout
        pause = 0.02
        while not self._live.is_set() and time.monotonic() < deadline:
            with contextlib.suppress(OperationalError, TypeError):
                await self.worker.transport.broadcast(PIDBOX_EXCHANGE, probe)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._live.wait(), pause)
            pause = min(pause * 2, 0.5)
        return self._live.is_set()

    async def handle(self, envelope: Envelope) -> None:
        """Apply one broadcast if it is a ``revoke`` for this node."""
        try:
            request = parse_control_request(envelope, self.accept)
        except (DecodeError, ContentDisallowed) as exc:
            logger.warning("ignored a control message that cannot be read: %s", exc)
            return
        worker = self.worker
        if not request.is_for(worker.hostname):
            return
        if request.method == _PROBE_METHOD and request.arguments.get("probe") == self._probe_ticket:
            self._live.set()
            return
        if request.expires is not None and request.expires < time.time():
            return
        if request.method == REVOKE_METHOD:
            try:
                order = revoke_order(request)
            except DecodeError as exc:
                logger.warning("ignored a revoke request: %s", exc)
                return
            await self.apply(order.task_ids, terminate=order.terminate, signum=order.signum)
        if self.on_request is not None:
            await self.on_request(request)

    async def apply(self, task_ids: list[str], *, terminate: bool = False,
                    signum: int = 15) -> None:
        """Mark ``task_ids`` revoked here and, with ``terminate``, stop those running."""
        worker = self.worker
        worker.state.revoke_many(task_ids)
        logger.info("Tasks flagged as revoked: %s", ", ".join(task_ids))
        if not terminate or worker.consumer is None:
            return
        for task_id in task_ids:
            if task_id in worker.consumer.inflight:
                logger.info("Terminating %s (signal %d)", task_id, signum)
                await worker.pool.terminate(task_id, signum)
