"""The remote-control service inside a worker: runs commands and sends replies.

The worker's pidbox listener (:mod:`celeriac.worker.revoke`) hands every
request addressed to this node to :meth:`ControlService.handle` (a ``revoke``
after applying it). The service runs the command from
:data:`celeriac.control.commands.COMMANDS` and, when the request carries a
``reply_to`` and a ``ticket``, publishes ``{nodename: answer}`` to the caller's
reply queue in Celery's format, so ``celery inspect`` and celeriac's own client
both read it. A failing command answers ``{"error": ...}``; the worker keeps
running.
"""

from __future__ import annotations

import logging
from typing import Any

from celeriac.control.commands import COMMANDS, NO_REPLY
from celeriac.errors import CeleriacError
from celeriac.protocol.control import error, hello_reply
from celeriac.protocol.pidbox import ControlRequest, control_reply_envelope
from celeriac.worker.api import WorkerHandle

__all__ = ["ControlService", "attach"]

logger = logging.getLogger("celeriac.control")


class ControlService:
    """Answers pidbox requests for one worker."""

    def __init__(self, handle: WorkerHandle) -> None:
        self.worker = handle

    async def run_command(self, request: ControlRequest) -> Any:
        """The answer to ``request`` (``{"error": ...}`` for unknown or failing ones)."""
        if request.method == "hello":
            # Celery workers greet the cluster at start-up (mingle), merge the
            # revoked ids they are sent and adjust their clock to ours.
            return hello_reply(self.worker.revoked(), self.worker.clock.forward())
        command = COMMANDS.get(request.method)
        if command is None:
            return error(f"unknown command {request.method!r}")
        try:
            return await command(self.worker, request.arguments)
        except (CeleriacError, LookupError, TypeError, ValueError) as exc:
            logger.warning("control command %s failed: %s", request.method, exc)
            return error(f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # a command's bug must not end the pidbox subscription
            logger.exception("control command %s failed", request.method)
            return error(f"{type(exc).__name__}: {exc}")

    async def handle(self, request: ControlRequest) -> None:
        """Run ``request`` and send the reply it asks for."""
        if request.method != "revoke":
            logger.info("control: %s %s", request.method, request.arguments or "")
        clock = self.worker.clock
        if request.clock is not None:
            clock.adjust(request.clock)
        answer = await self.run_command(request)
        if request.reply_to is None or request.ticket is None or request.method in NO_REPLY:
            return
        if request.method == "hello" and request.arguments.get("from_node") == self.worker.hostname:
            return
        envelope = control_reply_envelope(self.worker.hostname, answer, ticket=request.ticket,
                                          reply_to=request.reply_to, clock=clock.forward(),
                                          exchange=request.reply_exchange)
        try:
            await self.worker.reply(envelope)
        except (CeleriacError, OSError) as exc:
            logger.warning("could not send the reply to %s: %s", request.method, exc)


def attach(worker: Any) -> ControlService:
    """Build the service for ``worker`` and have its pidbox listener call it."""
    handle = WorkerHandle(worker)
    service = ControlService(handle)
    handle.on_request(service.handle)
    return service
