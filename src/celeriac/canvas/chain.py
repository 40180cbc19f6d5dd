"""``chain``: signatures run one after another, each receiving the previous result.

A chain is sent as ONE message, for its first step, whose ``embed.chain`` lists
the remaining steps in reverse order, each with its task id already assigned
(Celery's wire form): the worker pops the last element, sends it with the
result prepended to its arguments and the rest of the list as its own chain.
Steps made with ``si`` ignore the previous result. Nested chains are flattened,
and a group followed by another step becomes a chord (the step waits for the
whole group). The result of ``apply_async`` is the LAST step's, with
``.parent`` leading back to the first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from celeriac.canvas._plan import Plan
from celeriac.canvas.chord import Chord
from celeriac.canvas.group import Group
from celeriac.canvas.signature import Signature, maybe_signature, signature_from_dict

__all__ = ["Chain", "chain"]

CHAIN_TASK = "celery.chain"


def _steps(tasks: tuple[Any, ...], app: Any) -> list[Signature]:
    if len(tasks) == 1 and not isinstance(tasks[0], Mapping) and isinstance(tasks[0], Iterable):
        tasks = tuple(tasks[0])  # chain([a, b]) and chain(generator)
    steps: list[Signature] = []
    for task in tasks:
        sig = maybe_signature(task, app=app)
        if sig is None:
            continue
        if isinstance(sig, Chain):
            steps.extend(sig.tasks)
        else:
            steps.append(sig)
    upgraded: list[Signature] = []
    for sig in steps:
        if upgraded and isinstance(upgraded[-1], Group) and not isinstance(upgraded[-1], Chord):
            upgraded[-1] = Chord(upgraded[-1], sig, app=app or sig._app)
        else:
            upgraded.append(sig)
    return upgraded


def _listed(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def _root(result: Any) -> Any:
    while getattr(result, "parent", None) is not None:
        result = result.parent
    return result


class Chain(Signature):
    """Signatures run in sequence: ``chain(a, b, c)`` or ``a | b | c``."""

    TYPE = "chain"

    def __init__(self, *tasks: Any, app: Any = None, **options: Any) -> None:
        steps = _steps(tasks, app)
        if app is None:
            app = next((s._app for s in steps if s._app is not None), None)
        super().__init__(CHAIN_TASK, (), {"tasks": steps}, options,
                         subtask_type="chain", app=app)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Send the chain (Celery's ``chain(...)()``), ``args`` given to its first step."""
        return self.apply_async(args, kwargs)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], app: Any = None) -> Signature:
        """A chain from its dict (``kwargs.tasks`` holds the steps, in order)."""
        kwargs = d.get("kwargs") or {}
        new = cls(list(kwargs.get("tasks") or ()), app=app, **(d.get("options") or {}))
        new.immutable = bool(d.get("immutable"))
        return new

    @property
    def tasks(self) -> list[Signature]:
        """The steps, first to last."""
        tasks: list[Signature] = self.kwargs["tasks"]
        return tasks

    def __or__(self, other: Any) -> Signature:  # type: ignore[override]
        if isinstance(other, Signature):
            return Chain(*self.tasks, other, app=self._app or other._app, **self.options)
        return NotImplemented

    def link(self, callback: Any) -> Any:
        """Run ``callback`` with the last step's result."""
        if not self.tasks:
            raise ValueError("cannot link an empty chain")
        return self.tasks[-1].link(callback)

    def link_error(self, errback: Any) -> Any:
        """Run ``errback`` when any step fails (it is linked to every step, as Celery does)."""
        for step in self.tasks:
            step.link_error(errback)
        return errback

    # -- results -----------------------------------------------------------------
    def freeze(self, _id: str | None = None, group_id: str | None = None,
               chord: Any = None, root_id: str | None = None,
               parent_id: str | None = None, group_index: int | None = None) -> Any:
        """Give every step its id; returns the last step's result, parents linked."""
        prev = None
        steps = self.tasks
        for i, step in enumerate(steps):
            last = i == len(steps) - 1
            if last:
                result = step.freeze(_id, group_id=group_id, chord=chord,
                                     group_index=group_index)
            else:
                result = step.freeze()
            if prev is not None:
                _root(result).parent = prev
            prev = result
        if prev is not None:
            self.options["task_id"] = steps[-1].options["task_id"]
        return prev

    def prepare(self, plan: Plan, args: tuple[Any, ...], kwargs: dict[str, Any],
                options: dict[str, Any]) -> Any:
        """Add the first step's send (carrying the rest as its chain) to ``plan``."""
        opts = {k: v for k, v in self.options.items() if k != "task_id"}
        opts.update((k, v) for k, v in options.items() if v is not None)
        rest = opts.pop("chain", None)
        if rest:
            tail = [signature_from_dict(d, app=self._app) for d in reversed(rest)]
            return Chain(*self.tasks, *tail, app=self._app).prepare(plan, args, kwargs, opts)
        steps = self.tasks
        if not steps:
            return None
        task_id = opts.pop("task_id", None)
        last = steps[-1]
        if opts.get("link"):
            for callback in _listed(opts.pop("link")):
                last.link(callback)
        if opts.get("link_error"):
            for errback in _listed(opts.pop("link_error")):
                self.link_error(errback)
        for key in ("group_id", "group_index", "chord"):
            value = opts.pop(key, None)
            if value is not None and not isinstance(last, Group | Chord | Chain):
                last.options.setdefault(key, value)
        result = self.freeze(task_id)
        first, later = steps[0], steps[1:]
        if later:
            opts["chain"] = [step.as_dict() for step in reversed(later)]
        first.prepare(plan, args, kwargs, opts)
        return result

    def apply(self, args: Iterable[Any] | None = None, kwargs: Mapping[str, Any] | None = None,
              **options: Any) -> Any:
        """Run every step here, in order, each with the previous result (eager)."""
        prev = None
        for i, step in enumerate(self.tasks):
            if i == 0:
                result = step.apply(args, kwargs, **options)
            else:
                assert prev is not None
                result = step.apply((prev.get(),), **options)
                _root(result).parent = prev
            prev = result
        return prev

    def __repr__(self) -> str:
        return " | ".join(repr(t) for t in self.tasks) or "chain()"


def chain(*tasks: Any, app: Any = None, **options: Any) -> Chain:
    """Make a chain: ``chain(a, b, c)``, ``chain([a, b, c])``; same as ``a | b | c``."""
    return Chain(*tasks, app=app, **options)
