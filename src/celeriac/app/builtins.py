"""Celery's built-in tasks (``celery.map``, ``celery.chunks``, ...), on every app.

Canvas values such as ``task.map(items)`` are sent as messages for these task
names, by celeriac and by Celery clients alike, so every app registers them
and any worker can run them. They keep Celery's names and arguments.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from celeriac.canvas import chain, chord, chunked, group, signature_from_dict

if TYPE_CHECKING:
    from celeriac.app.core import App
    from celeriac.app.task import Task

__all__ = ["BUILTIN_TASKS", "register_builtins"]


def _task_of(self: Task[Any, Any], task: Mapping[str, Any]) -> Any:
    return signature_from_dict(task, app=self.app).type


def _map(self: Task[Any, Any], task: Mapping[str, Any], it: Iterable[Any]) -> list[Any]:
    fun = _task_of(self, task)
    return [fun(item) for item in it]


def _starmap(self: Task[Any, Any], task: Mapping[str, Any], it: Iterable[Any]) -> list[Any]:
    fun = _task_of(self, task)
    return [fun(*item) for item in it]


def _chunks(self: Task[Any, Any], task: Mapping[str, Any], it: Iterable[Any],
            n: int) -> list[list[Any]]:
    # Run where it was received: a worker asked for the chunks as one task.
    fun = _task_of(self, task)
    return [[fun(*item) for item in part] for part in chunked(it, n)]


def _group(self: Task[Any, Any], tasks: list[Any], result: Any = None,
           group_id: str | None = None, partial_args: Iterable[Any] | None = None,
           add_to_parent: bool = True) -> Any:
    sig = group(tasks, app=self.app)
    if group_id is not None:
        sig.options["task_id"] = group_id
    return sig.apply_async(tuple(partial_args or ())).as_tuple()


def _chain(self: Task[Any, Any], *args: Any, tasks: Iterable[Any] = (), **kwargs: Any) -> Any:
    """A chain sent as one task (its steps in ``tasks``): send it from here."""
    steps = list(tasks)
    if not steps:
        raise TypeError("celery.chain needs its steps in the 'tasks' keyword argument")
    return chain(*steps, app=self.app).apply_async(args).id


def _chord(self: Task[Any, Any], header: Any, body: Any, partial_args: Iterable[Any] = (),
           interval: float | None = None, countdown: float = 1, max_retries: int | None = None,
           eager: bool = False, **kwargs: Any) -> Any:
    result = chord(header, body, app=self.app).apply_async(tuple(partial_args))
    return result.id


def _accumulate(self: Task[Any, Any], *args: Any, **kwargs: Any) -> Any:
    index = kwargs.get("index")
    return args[index] if index is not None else args


def _backend_cleanup(self: Task[Any, Any]) -> None:
    cleanup = getattr(self.app.backend, "cleanup", None)
    if cleanup is not None:
        cleanup()


#: Celery's built-in task names -> their functions (all bound: they need the app).
BUILTIN_TASKS: dict[str, Any] = {
    "celery.map": _map,
    "celery.starmap": _starmap,
    "celery.chunks": _chunks,
    "celery.group": _group,
    "celery.chain": _chain,
    "celery.chord": _chord,
    "celery.accumulate": _accumulate,
    "celery.backend_cleanup": _backend_cleanup,
}


def register_builtins(app: App) -> None:
    """Register Celery's built-in tasks on ``app`` (``App.__init__`` calls this)."""
    for name, fun in BUILTIN_TASKS.items():
        app._register(fun, {"name": name, "bind": True, "typing": False})
