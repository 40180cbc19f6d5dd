"""``xmap``, ``xstarmap`` and ``chunks``: one task applied over many items.

``task.map(items)`` and ``task.starmap(items)`` are sent as ONE message for
the built-in task ``celery.map`` / ``celery.starmap`` with the keyword
arguments ``task`` (the signature dict) and ``it`` (the items); the worker
calls the task function once per item and returns the list of results.
``task.chunks(items, n)`` splits the items into chunks of ``n``; applying it
sends a group of ``celery.starmap`` tasks (one per chunk) and its result's
``get()`` is a list of lists. All three are immutable, as in Celery: in a
chain they ignore the previous result.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from itertools import islice
from typing import Any

from celeriac.canvas._plan import Plan
from celeriac.canvas.group import Group
from celeriac.canvas.signature import Signature, maybe_signature

__all__ = ["Chunks", "XMap", "XStarmap", "chunked", "chunks", "xmap", "xstarmap"]

MAP_TASK = "celery.map"
STARMAP_TASK = "celery.starmap"
CHUNKS_TASK = "celery.chunks"


def chunked(it: Iterable[Any], n: int) -> list[list[Any]]:
    """Split ``it`` into lists of at most ``n`` items."""
    if n < 1:
        raise ValueError(f"chunk size must be at least 1, got {n}")
    items = iter(it)
    out = []
    while part := list(islice(items, n)):
        out.append(part)
    return out


class XMap(Signature):
    """``task.map(items)``: one task running ``task(item)`` for each item."""

    TASK_NAMES = (MAP_TASK,)
    NAME = MAP_TASK

    def __init__(self, task: Any = None, it: Iterable[Any] = (), app: Any = None,
                 **options: Any) -> None:
        sig = maybe_signature(task, app=app)
        if app is None and sig is not None:
            app = sig._app
        super().__init__(self.NAME, (), {"task": sig, "it": list(it)}, options,
                         immutable=True, app=app)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], app: Any = None) -> Signature:
        """Read ``{"task": <sig>, "it": [...]}`` from the dict's kwargs."""
        kw = d.get("kwargs") or {}
        return cls(kw.get("task"), kw.get("it") or (), app=app, **(d.get("options") or {}))

    def __repr__(self) -> str:
        task = self.kwargs.get("task")
        name = task.task if isinstance(task, Signature) else "?"
        return f"[{name}(x) for x in {self.kwargs.get('it')!r}]"


class XStarmap(XMap):
    """``task.starmap(items)``: one task running ``task(*item)`` for each item."""

    TASK_NAMES = (STARMAP_TASK,)
    NAME = STARMAP_TASK

    def __repr__(self) -> str:
        task = self.kwargs.get("task")
        name = task.task if isinstance(task, Signature) else "?"
        return f"[{name}(*x) for x in {self.kwargs.get('it')!r}]"


class Chunks(Signature):
    """``task.chunks(items, n)``: the items in chunks of ``n``, one task per chunk."""

    TASK_NAMES = (CHUNKS_TASK,)

    def __init__(self, task: Any = None, it: Iterable[Any] = (), n: int = 1,
                 app: Any = None, **options: Any) -> None:
        sig = maybe_signature(task, app=app)
        if app is None and sig is not None:
            app = sig._app
        super().__init__(CHUNKS_TASK, (), {"task": sig, "it": list(it), "n": int(n)}, options,
                         immutable=True, app=app)

    def __call__(self, **options: Any) -> Any:
        """Send the chunks (Celery's ``task.chunks(items, n)()``)."""
        return self.apply_async((), {}, **options)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], app: Any = None) -> Signature:
        """Read ``{"task": <sig>, "it": [...], "n": n}`` from the dict's kwargs."""
        kw = d.get("kwargs") or {}
        return cls(kw.get("task"), kw.get("it") or (), kw.get("n") or 1, app=app,
                   **(d.get("options") or {}))

    def group(self) -> Group:
        """The group of ``celery.starmap`` tasks, one per chunk."""
        task = self.kwargs["task"]
        members = [XStarmap(task, part, app=self._app)
                   for part in chunked(self.kwargs["it"], self.kwargs["n"])]
        return Group(members, app=self._app, **self.options)

    def prepare(self, plan: Plan, args: tuple[Any, ...], kwargs: dict[str, Any],
                options: dict[str, Any]) -> Any:
        """Send the chunks as a group; the result is its ``GroupResult``."""
        return self.group().prepare(plan, args, kwargs, options)

    def apply(self, args: Iterable[Any] | None = None, kwargs: Mapping[str, Any] | None = None,
              **options: Any) -> Any:
        """Run every chunk here (eager)."""
        return self.group().apply(args, kwargs, **options)

    def __repr__(self) -> str:
        task = self.kwargs.get("task")
        name = task.task if isinstance(task, Signature) else "?"
        return f"{name}.chunks({self.kwargs.get('it')!r}, {self.kwargs.get('n')})"


def xmap(task: Any, it: Iterable[Any], app: Any = None) -> XMap:
    """``task(item)`` for each item, in one task (``task.map(it)``)."""
    return XMap(task, it, app=app)


def xstarmap(task: Any, it: Iterable[Any], app: Any = None) -> XStarmap:
    """``task(*item)`` for each item, in one task (``task.starmap(it)``)."""
    return XStarmap(task, it, app=app)


def chunks(task: Any, it: Iterable[Any], n: int, app: Any = None) -> Chunks:
    """``it`` in chunks of ``n``, each chunk one ``starmap`` task (``task.chunks(it, n)``)."""
    return Chunks(task, it, n, app=app)
