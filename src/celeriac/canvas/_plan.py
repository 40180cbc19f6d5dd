"""A send plan: what applying a workflow does, computed once, run sync or async.

Applying a canvas value is split in two. Preparing it (pure, shared) freezes
ids, attaches chord bodies and chain tails, and lists the chord sizes to record
and the task messages to send. Running the plan is the only I/O, and the only
part that differs between ``apply_async`` (the app's sync client) and
``aapply_async`` (its async client). Chord sizes are recorded before any header
task is sent, so a fast worker can never count a part of an unknown chord.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from celeriac.errors import ImproperlyConfigured

__all__ = ["Plan", "Send"]


@dataclass(slots=True)
class Send:
    """One task message to send: ``app.send_task(name, args, kwargs, **options)``."""

    name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    options: dict[str, Any]


@dataclass(slots=True)
class Plan:
    """Chord sizes to record, then messages to send, in order."""

    chord_sizes: list[tuple[str, int]] = field(default_factory=list)
    sends: list[Send] = field(default_factory=list)

    def _backend(self, app: Any) -> Any:
        backend = app.backend
        if backend is None:
            raise ImproperlyConfigured(
                "a chord needs a result backend to count its header tasks: "
                "configure result_backend (e.g. backend='sqlite:///results.db')"
            )
        return backend

    def run_sync(self, app: Any) -> None:
        """Record chord sizes and send every message over the app's sync clients."""
        if self.chord_sizes:
            backend = self._backend(app)
            for group_id, size in self.chord_sizes:
                backend.set_chord_size_sync(group_id, size)
        for send in self.sends:
            app.send_task(send.name, send.args, send.kwargs, **send.options)

    async def run_async(self, app: Any, backend: Any = None) -> None:
        """Async :meth:`run_sync`, over the app's async clients.

        ``backend`` replaces ``app.backend`` for the chord sizes (a worker passes
        the backend connected on its own event loop).
        """
        if self.chord_sizes:
            backend = backend if backend is not None else self._backend(app)
            for group_id, size in self.chord_sizes:
                await backend.set_chord_size(group_id, size)
        for send in self.sends:
            await app.asend_task(send.name, send.args, send.kwargs, **send.options)
