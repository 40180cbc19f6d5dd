"""``group``: run several signatures in parallel and collect their results in order.

A group is sent as one message per member, each with the headers ``group``
(the group id) and ``group_index`` (its position), exactly as Celery does. Its
result is a ``GroupResult`` whose id is the group id and whose ``get()``
returns the members' values in order. A group given arguments (for instance
the previous result in a chain) passes them to every member. ``group | sig``
is a chord.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from celeriac.canvas._plan import Plan
from celeriac.canvas.signature import Signature, composite, maybe_signature
from celeriac.protocol.message import new_task_id

__all__ = ["Group", "group"]

GROUP_TASK = "celery.group"


def _members(tasks: tuple[Any, ...], app: Any) -> list[Signature]:
    if len(tasks) == 1 and not isinstance(tasks[0], Mapping) and isinstance(tasks[0], Iterable):
        tasks = tuple(tasks[0])  # group([a, b]) and group(generator)
    members = [maybe_signature(t, app=app) for t in tasks]
    return [m for m in members if m is not None]


class Group(Signature):
    """Signatures run in parallel: ``group(add.s(1, 1), add.s(2, 2))`` or ``group(gen)``."""

    TYPE = "group"

    def __init__(self, *tasks: Any, app: Any = None, **options: Any) -> None:
        members = _members(tasks, app)
        if app is None:
            app = next((m._app for m in members if m._app is not None), None)
        super().__init__(GROUP_TASK, (), {"tasks": members}, options,
                         subtask_type="group", app=app)

    def __call__(self, *partial_args: Any, **options: Any) -> Any:
        """Send the group (Celery's ``group(...)()``) and return its ``GroupResult``."""
        return self.apply_async(partial_args, **options)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], app: Any = None) -> Signature:
        """A group from its dict (``kwargs.tasks`` holds the members)."""
        kwargs = d.get("kwargs") or {}
        new = cls(list(kwargs.get("tasks") or ()), app=app, **(d.get("options") or {}))
        new.immutable = bool(d.get("immutable"))
        new.args = d.get("args") or ()
        return new

    @property
    def tasks(self) -> list[Signature]:
        """The member signatures."""
        tasks: list[Signature] = self.kwargs["tasks"]
        return tasks

    # -- links -------------------------------------------------------------------
    def link(self, callback: Any) -> Any:
        """Link ``callback`` (immutably) to the first member; use a chord to wait for all."""
        sig = maybe_signature(callback, app=self._app)
        if self.tasks and sig is not None:
            return self.tasks[0].link(sig.clone(immutable=True).set(immutable=True))
        return callback

    def link_error(self, errback: Any) -> Any:
        """Run ``errback`` for whichever member fails."""
        for member in self.tasks:
            member.link_error(errback)
        return errback

    def __or__(self, other: Any) -> Signature:  # type: ignore[override]
        if isinstance(other, Signature):
            combined: Signature = composite("chord")(self, other, app=self._app or other._app)
            return combined
        return NotImplemented

    # -- results -----------------------------------------------------------------
    def freeze(self, _id: str | None = None, group_id: str | None = None,
               chord: Any = None, root_id: str | None = None,
               parent_id: str | None = None, group_index: int | None = None) -> Any:
        """Give the group and its members their ids; returns the ``GroupResult``."""
        gid = self.options.get("task_id") or _id or group_id or new_task_id()
        self.options["task_id"] = gid
        results = [
            member.freeze(group_index=member.options.get("group_index", i))
            for i, member in enumerate(self.tasks)
        ]
        return self.app.GroupResult(gid, results)

    def prepare(self, plan: Plan, args: tuple[Any, ...], kwargs: dict[str, Any],
                options: dict[str, Any]) -> Any:
        """Add one send per member (sharing the group id) to ``plan``."""
        opts = {**self.options, **{k: v for k, v in options.items() if v is not None}}
        rest = opts.pop("chain", None)
        if rest:
            # A group followed by more steps waits for all members: that is a chord.
            chord_cls, chain_cls = composite("chord"), composite("chain")
            tail = [maybe_signature(d, app=self._app) for d in reversed(rest)]
            body = tail[0] if len(tail) == 1 else chain_cls(*tail, app=self._app)
            return chord_cls(self, body, app=self._app).prepare(plan, args, kwargs, opts)
        gid = opts.pop("task_id", None) or new_task_id()
        self.options["task_id"] = gid
        # Membership in an enclosing group does not apply to this group's members.
        for key in ("group_id", "group_index", "chord", "link", "link_error"):
            opts.pop(key, None)
        results = []
        for i, member in enumerate(self.tasks):
            member_opts = dict(opts)
            if "group_id" not in member.options:
                member_opts["group_id"] = gid
            if "group_index" not in member.options:
                member_opts["group_index"] = i
            results.append(member.prepare(plan, args, kwargs, member_opts))
        return self.app.GroupResult(gid, results)

    def apply(self, args: Iterable[Any] | None = None, kwargs: Mapping[str, Any] | None = None,
              **options: Any) -> Any:
        """Run every member here, in order (eager)."""
        gid = self.options.get("task_id") or new_task_id()
        results = [member.apply(args, kwargs, **options) for member in self.tasks]
        return self.app.GroupResult(gid, results)

    def __repr__(self) -> str:
        return f"group([{', '.join(repr(t) for t in self.tasks)}])"


def group(*tasks: Any, app: Any = None, **options: Any) -> Group:
    """Make a group: ``group(sig1, sig2)``, ``group([sigs])`` or ``group(generator)``."""
    return Group(*tasks, app=app, **options)
