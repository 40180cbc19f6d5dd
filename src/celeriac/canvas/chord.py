"""``chord``: a group (the header) whose ordered results are passed to a body.

The header is sent like a group; every header task carries the body in its
``embed.chord``, with its ``group`` and ``group_index`` headers, as Celery sends
it. Before anything is sent the client records the number of header parts in
the result backend; each worker that finishes a header task counts it there
(atomically, idempotently per task id) and the one that completes the count
sends the body with the list of results in header order.

Nesting: a header member that is a chain counts when its LAST step finishes; a
member that is a chord counts when ITS body finishes (a chord of chords); a
group inside a header is flattened into it. A chord used as a chain step gets
the rest of the chain appended to its body.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from celeriac.canvas._plan import Plan
from celeriac.canvas.group import Group
from celeriac.canvas.signature import Signature, composite, maybe_signature, plain

__all__ = ["Chord", "chord"]

CHORD_TASK = "celery.chord"


def _root(result: Any) -> Any:
    while getattr(result, "parent", None) is not None:
        result = result.parent
    return result


def attach_chord(sig: Signature, body: dict[str, Any], group_id: str, index: int) -> int:
    """Make ``sig`` report to the chord ``group_id`` as part(s) from ``index``; next index."""
    if isinstance(sig, Chord):
        if sig.body is None:
            raise ValueError("a chord in a chord header needs a body")
        return attach_chord(sig.body, body, group_id, index)
    if isinstance(sig, Group):
        for member in sig.tasks:
            index = attach_chord(member, body, group_id, index)
        return index
    if sig.subtask_type == "chain":
        steps: list[Signature] = sig.kwargs["tasks"]
        if not steps:
            raise ValueError("an empty chain cannot be part of a chord header")
        return attach_chord(steps[-1], body, group_id, index)
    sig.options.update(chord=body, group_id=group_id, group_index=index)
    return index + 1


class Chord(Signature):
    """``chord(header, body)``: run ``header`` in parallel, then ``body(results)``."""

    TYPE = "chord"

    def __init__(self, header: Any = (), body: Any = None, task: str = CHORD_TASK,
                 args: Iterable[Any] | None = None, kwargs: Mapping[str, Any] | None = None,
                 app: Any = None, **options: Any) -> None:
        head = header if isinstance(header, Group) else Group(header, app=app)
        body_sig = maybe_signature(body, app=app)
        if app is None:
            app = head._app or (body_sig._app if body_sig is not None else None)
        super().__init__(
            task, args, {"kwargs": dict(kwargs or {}), "header": head, "body": body_sig},
            options, subtask_type="chord", app=app,
        )

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], app: Any = None) -> Signature:
        """A chord from its dict (``kwargs`` holds ``header``, ``body`` and ``kwargs``)."""
        kw = dict(d.get("kwargs") or {})
        header = kw.get("header") or ()
        if isinstance(header, Mapping):
            header = maybe_signature(header, app=app)
        return cls(header, kw.get("body"), d.get("task") or CHORD_TASK, d.get("args"),
                   kw.get("kwargs"), app=app, **(d.get("options") or {}))

    @property
    def header(self) -> Group:
        """The header group."""
        header: Group = self.kwargs["header"]
        return header

    @property
    def body(self) -> Signature | None:
        """The body signature (``None`` until given, see :meth:`__call__`)."""
        body: Signature | None = self.kwargs.get("body")
        return body

    @property
    def tasks(self) -> list[Signature]:
        """The header's signatures."""
        return self.header.tasks

    def __call__(self, body: Any = None, **options: Any) -> Any:
        """``chord(header)(body)``: send with this body."""
        if body is not None:
            self.kwargs["body"] = maybe_signature(body, app=self._app)
        return self.apply_async((), {}, **options)

    def link(self, callback: Any) -> Any:
        """Run ``callback`` with the body's result."""
        if self.body is None:
            raise ValueError("link() needs the chord's body first")
        return self.body.link(callback)

    def link_error(self, errback: Any) -> Any:
        """Run ``errback`` when the chord fails (a header task or the body)."""
        if self.body is not None:
            self.body.link_error(errback)
        return errback

    def __or__(self, other: Any) -> Signature:  # type: ignore[override]
        if isinstance(other, Signature) and self.body is not None:
            chain_cls = composite("chain")
            return Chord(self.header, chain_cls(self.body, other, app=self._app),
                         app=self._app, **self.options)
        return super().__or__(other)

    # -- results -----------------------------------------------------------------
    def freeze(self, _id: str | None = None, group_id: str | None = None,
               chord: Any = None, root_id: str | None = None,
               parent_id: str | None = None, group_index: int | None = None) -> Any:
        """Give header and body their ids; returns the body's result (parent: header)."""
        if self.body is None:
            raise ValueError("a chord needs a body to be frozen or sent")
        header_result = self.header.freeze(self.options.get("task_id"))
        self.options["task_id"] = self.header.options["task_id"]
        result = self.body.freeze(_id)
        root = _root(result)
        if root is not header_result:
            root.parent = header_result
        return result

    def prepare(self, plan: Plan, args: tuple[Any, ...], kwargs: dict[str, Any],
                options: dict[str, Any]) -> Any:
        """Record the chord size and add the header's sends to ``plan``."""
        if kwargs.get("body") is not None:
            self.kwargs["body"] = maybe_signature(kwargs.pop("body"), app=self._app)
        opts = {**self.options, **{k: v for k, v in options.items() if v is not None}}
        rest = opts.pop("chain", None)
        if rest and self.body is not None:
            chain_cls = composite("chain")
            tail = [maybe_signature(d, app=self._app) for d in reversed(rest)]
            self.kwargs["body"] = chain_cls(self.body, *tail, app=self._app)
        # This chord's own membership (as part of an outer chord) was attached to
        # its body by the outer chord; the header forms a new group.
        for key in ("task_id", "group_id", "group_index", "chord", "link", "link_error"):
            opts.pop(key, None)
        result = self.freeze()
        body = self.body
        assert body is not None
        gid = self.header.options["task_id"]
        body.options.setdefault("group_id", gid)
        body_dict = plain(body)
        size = 0
        for member in self.header.tasks:
            size = attach_chord(member, body_dict, gid, size)
        if size == 0:
            # Nothing to wait for: the body runs at once with no results.
            body.prepare(plan, ([],), {},
                         {k: opts[k] for k in ("parent_id", "root_id") if k in opts})
            return result
        plan.chord_sizes.append((gid, size))
        self.header.prepare(plan, args, kwargs, {**opts, "task_id": gid})
        return result

    def apply(self, args: Iterable[Any] | None = None, kwargs: Mapping[str, Any] | None = None,
              **options: Any) -> Any:
        """Run the header here, then the body with its results (eager)."""
        if self.body is None:
            raise ValueError("a chord needs a body")
        values = self.header.apply(args, kwargs, **options).get()
        return self.body.apply((values,), **options)

    def __repr__(self) -> str:
        return f"chord({self.header!r}, {self.body!r})"


def chord(header: Any = (), body: Any = None, app: Any = None, **options: Any) -> Chord:
    """Make a chord: ``chord([sigs], body)``, or ``chord([sigs])(body)`` to send at once."""
    return Chord(header, body, app=app, **options)
