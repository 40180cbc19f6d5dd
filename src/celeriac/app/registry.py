"""The task registry: a plain dict from task name to :class:`~celeriac.app.task.Task`."""

from __future__ import annotations

from typing import Any

from celeriac.errors import NotRegistered

__all__ = ["TaskRegistry"]


class TaskRegistry(dict[str, Any]):
    """Task name -> task. A missing name raises :class:`NotRegistered` naming it."""

    def __missing__(self, name: str) -> Any:
        raise NotRegistered(
            f"task {name!r} is not registered here: import the module that defines it "
            "(worker -A/--app, include=[...] or imports=) or check the name"
        )

    def register(self, task: Any) -> None:
        """Add ``task`` under its name."""
        self[task.name] = task

    def unregister(self, name: str) -> None:
        """Remove the task called ``name``."""
        self.pop(name, None)

    def user_names(self) -> list[str]:
        """Registered names that are not celeriac's own built-ins, sorted."""
        return sorted(n for n in self if not n.startswith("celery."))
