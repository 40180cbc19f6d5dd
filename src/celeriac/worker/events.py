"""The worker's event hooks: where task and worker events are emitted.

The default :class:`NoEvents` does nothing and costs one method call; the
events room (``celeriac.events``) plugs in a dispatcher that publishes
Celery-compatible events when ``-E``/``worker_send_task_events`` is on.

Besides the per-task hooks (called on the hot path, so they must return at
once) the worker calls three lifecycle coroutines: :meth:`WorkerEvents.open`
once connected and before consuming, :meth:`WorkerEvents.run` inside its
TaskGroup (timers; cancelled after in-flight tasks drained) and
:meth:`WorkerEvents.close` before it closes its transport.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from celeriac.app.trace import Outcome
    from celeriac.worker.request import Request
    from celeriac.worker.worker import Worker

__all__ = ["NoEvents", "WorkerEvents"]


class WorkerEvents:
    """Hooks the consumer calls; override what you publish."""

    def task_received(self, request: Request) -> None:
        """A task message was accepted."""

    def task_started(self, request: Request) -> None:
        """A task began to run."""

    def task_outcome(self, request: Request, outcome: Outcome) -> None:
        """A task ended (succeeded, failed, retried)."""

    def task_revoked(self, request: Request, *, expired: bool) -> None:
        """A task was discarded as revoked or expired."""

    def worker_status(self, kind: str, **fields: Any) -> None:
        """Worker online/heartbeat/offline."""

    #: Whether task events are being sent now.
    task_events: bool = False

    def set_task_events(self, enabled: bool) -> None:
        """Turn task events on or off at run time (remote control's
        ``enable_events``/``disable_events``). Default: events cannot be sent."""

    async def open(self, worker: Worker) -> None:
        """The worker is connected and about to consume (send ``worker-online``)."""

    async def run(self) -> None:
        """Timers (heartbeats, flushing); runs until cancelled. Default: nothing."""

    async def close(self) -> None:
        """The worker is stopping: flush, send ``worker-offline``, disconnect."""


class NoEvents(WorkerEvents):
    """Events disabled."""
