"""``Signature``: one task call as a value (Celery's ``signature``/``subtask``).

A signature IS a dict (as in Celery) with the keys ``task``, ``args``,
``kwargs``, ``options``, ``subtask_type`` and ``immutable``, so it serialises as
the signature dict that travels in a message's ``embed`` and comes back from
JSON as a plain dict that :func:`signature_from_dict` turns into the right class
again (``chain``, ``group``, ``chord``, ``xmap``, ...).

Partial application: arguments given when a signature is applied are put
BEFORE the signature's own (``add.s(2).delay(1)`` runs ``add(1, 2)``), which is
how a callback receives its parent's result as its first argument; immutable
signatures (``task.si()``) ignore them.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from celeriac.canvas._app import resolve_app
from celeriac.canvas._plan import Plan, Send
from celeriac.errors import NotRegistered
from celeriac.protocol.message import new_task_id

__all__ = [
    "SIGNATURE_TYPES",
    "Signature",
    "composite",
    "maybe_signature",
    "plain",
    "signature",
    "signature_from_dict",
]

#: ``subtask_type`` (or built-in task name) -> the class that reads such a dict.
SIGNATURE_TYPES: dict[str, type[Signature]] = {}

# Options that describe where a call sits in a workflow; a signature applied as
# a new, separate call does not inherit them from the one it was cloned from.
_PLACEMENT = ("task_id", "group_id", "group_index", "chord", "chain", "parent_id", "root_id")


def composite(kind: str) -> Any:
    """The class registered for ``kind`` (``"chain"``, ``"chord"``...), untyped for callers."""
    return SIGNATURE_TYPES[kind]


def plain(value: Any) -> Any:
    """``value`` with every signature turned into a plain dict and tuples into lists."""
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


class Signature(dict[str, Any]):
    """A task name with partial arguments and send options.

    ``Signature("tasks.add", (2,), {}, {"countdown": 5})`` or, more usually,
    ``add.s(2)`` / ``add.si(2)`` / ``add.signature((2,), countdown=5)``.
    """

    #: The ``subtask_type`` this class is for (``None``: a plain task call).
    TYPE: ClassVar[str | None] = None
    #: Built-in task names whose dicts this class reads (``celery.map``, ...).
    TASK_NAMES: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for key in ((cls.TYPE,) if cls.TYPE else ()) + cls.TASK_NAMES:
            SIGNATURE_TYPES[key] = cls

    def __init__(
        self,
        task: Any = None,
        args: Iterable[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
        type: Any = None,  # noqa: A002 - Celery's parameter name
        subtask_type: str | None = None,
        immutable: bool = False,
        app: Any = None,
        **ex: Any,
    ) -> None:
        if isinstance(task, Mapping):
            d = task
            task, args, kwargs = d.get("task"), d.get("args"), d.get("kwargs")
            options = {**(d.get("options") or {}), **(options or {})}
            subtask_type = d.get("subtask_type") or subtask_type
            immutable = bool(d.get("immutable", immutable))
        elif task is None and type is not None:
            task = type
        if task is not None and not isinstance(task, str):
            app = app if app is not None else getattr(task, "app", None)
            task = task.name
        super().__init__(
            task=task,
            args=tuple(args or ()),
            kwargs=dict(kwargs or {}),
            options={**(options or {}), **ex},
            subtask_type=subtask_type if subtask_type is not None else self.TYPE,
            immutable=bool(immutable),
        )
        self._app = app

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], app: Any = None) -> Signature:
        """Build this class from a signature dict (nested ones are converted lazily)."""
        return cls(d, app=app)

    # -- fields ------------------------------------------------------------------
    @property
    def task(self) -> str:
        """The task name."""
        name: str = self["task"]
        return name

    name = task

    @property
    def args(self) -> tuple[Any, ...]:
        """Partial positional arguments."""
        args: tuple[Any, ...] = self["args"]
        return args

    @args.setter
    def args(self, value: Iterable[Any]) -> None:
        self["args"] = tuple(value)

    @property
    def kwargs(self) -> dict[str, Any]:
        """Partial keyword arguments."""
        kwargs: dict[str, Any] = self["kwargs"]
        return kwargs

    @kwargs.setter
    def kwargs(self, value: Mapping[str, Any]) -> None:
        self["kwargs"] = dict(value)

    @property
    def options(self) -> dict[str, Any]:
        """Send options (``queue``, ``countdown``, ``link``, ``task_id``, ...)."""
        options: dict[str, Any] = self["options"]
        return options

    @options.setter
    def options(self, value: Mapping[str, Any]) -> None:
        self["options"] = dict(value)

    @property
    def subtask_type(self) -> str | None:
        """``None`` for a task call, else ``"chain"``, ``"group"`` or ``"chord"``."""
        value: str | None = self.get("subtask_type")
        return value

    @property
    def immutable(self) -> bool:
        """Whether applied arguments (e.g. a parent's result) are ignored."""
        return bool(self.get("immutable"))

    @immutable.setter
    def immutable(self, value: bool) -> None:
        self["immutable"] = bool(value)

    @property
    def id(self) -> str | None:
        """The task id given by :meth:`freeze` (or the ``task_id`` option)."""
        value: str | None = self.options.get("task_id")
        return value

    @id.setter  # noqa: A003
    def id(self, value: str) -> None:
        self.options["task_id"] = value

    @property
    def app(self) -> Any:
        """The app this signature sends through (the current app if none was given)."""
        return resolve_app(self._app)

    @app.setter
    def app(self, value: Any) -> None:
        self._app = value

    @property
    def type(self) -> Any:
        """The registered task object of this signature's app."""
        try:
            return self.app.tasks[self.task]
        except KeyError:
            raise NotRegistered(self.task) from None

    # -- copies -----------------------------------------------------------------
    def __deepcopy__(self, memo: dict[int, Any]) -> Signature:
        # The app is shared, never copied; the dict content is copied deeply.
        return signature_from_dict(copy.deepcopy(dict(self), memo), app=self._app)

    def __copy__(self) -> Signature:
        return self.clone()

    def __reduce__(self) -> tuple[Any, ...]:
        return (signature_from_dict, (plain(self),))

    def clone(self, args: Iterable[Any] | None = None, kwargs: Mapping[str, Any] | None = None,
              **opts: Any) -> Signature:
        """A deep copy with ``args`` prepended, ``kwargs`` and options merged in."""
        new = copy.deepcopy(self)
        if not self.immutable:
            if args:
                new.args = tuple(args) + new.args
            if kwargs:
                new.kwargs = {**new.kwargs, **kwargs}
        if opts:
            new.options.update(opts)
        return new

    partial = clone

    def replace(self, args: Iterable[Any] | None = None, kwargs: Mapping[str, Any] | None = None,
                options: Mapping[str, Any] | None = None) -> Signature:
        """A copy with ``args``/``kwargs``/``options`` replaced (not merged)."""
        new = copy.deepcopy(self)
        if args is not None:
            new.args = tuple(args)
        if kwargs is not None:
            new.kwargs = dict(kwargs)
        if options is not None:
            new.options = dict(options)
        return new

    # -- options -----------------------------------------------------------------
    def set(self, immutable: bool | None = None, **options: Any) -> Signature:
        """Set send options in place (``queue=``, ``countdown=``, ...); returns ``self``."""
        if immutable is not None:
            self.immutable = immutable
        self.options.update(options)
        return self

    def set_immutable(self, immutable: bool) -> None:
        """Make this signature ignore (or accept) applied arguments."""
        self.immutable = immutable

    def link(self, callback: Any) -> Any:
        """Run ``callback`` with this task's result when it succeeds; returns ``callback``."""
        links = self.options.setdefault("link", [])
        if callback not in links:
            links.append(callback)
        return callback

    def link_error(self, errback: Any) -> Any:
        """Run ``errback`` when this task fails; returns ``errback``."""
        links = self.options.setdefault("link_error", [])
        if errback not in links:
            links.append(errback)
        return errback

    def on_error(self, errback: Any) -> Signature:
        """Like :meth:`link_error` but returns ``self``, for chaining calls."""
        self.link_error(errback)
        return self

    def freeze(self, _id: str | None = None, group_id: str | None = None,
               chord: Any = None, root_id: str | None = None,
               parent_id: str | None = None, group_index: int | None = None) -> Any:
        """Give this signature its task id now and return its result handle."""
        opts = self.options
        if "task_id" not in opts or _id is not None:
            opts["task_id"] = _id or opts.get("task_id") or new_task_id()
        app = self._app_or_none()
        if app is not None and not opts.get("reply_to"):
            opts["reply_to"] = app.oid
        for key, value in (("group_id", group_id), ("chord", chord), ("root_id", root_id),
                           ("parent_id", parent_id), ("group_index", group_index)):
            if value is not None:
                opts[key] = plain(value) if key == "chord" else value
        return self._result()

    def _app_or_none(self) -> Any:
        try:
            return self.app
        except Exception:  # an app-less signature can still be frozen for the wire
            return None

    def _result(self) -> Any:
        return self.app.AsyncResult(self.options["task_id"], task_name=self.task)

    def as_dict(self) -> dict[str, Any]:
        """The signature dict (plain dicts and lists all the way down)."""
        result: dict[str, Any] = plain(self)
        return result

    # -- composition -------------------------------------------------------------
    def __or__(self, other: Any) -> Signature:  # type: ignore[override]
        chain_cls = composite("chain")
        if isinstance(other, Signature):
            combined: Signature = chain_cls(self, other, app=self._app or other._app)
            return combined
        return NotImplemented

    # -- calling -----------------------------------------------------------------
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the task function here and now with the partial arguments merged in."""
        call_args, call_kwargs = self._merged(args, kwargs)
        return self.type(*call_args, **call_kwargs)

    def _merged(self, args: Iterable[Any] | None,
                kwargs: Mapping[str, Any] | None) -> tuple[tuple[Any, ...], dict[str, Any]]:
        if self.immutable:
            return self.args, dict(self.kwargs)
        return tuple(args or ()) + self.args, {**self.kwargs, **(kwargs or {})}

    def delay(self, *args: Any, **kwargs: Any) -> Any:
        """Send with extra arguments: ``sig.delay(*args, **kwargs)``."""
        return self.apply_async(args, kwargs)

    async def adelay(self, *args: Any, **kwargs: Any) -> Any:
        """Async :meth:`delay`."""
        return await self.aapply_async(args, kwargs)

    def apply_async(self, args: Iterable[Any] | None = None,
                    kwargs: Mapping[str, Any] | None = None, **options: Any) -> Any:
        """Send this call (and whatever workflow it is) and return its result handle."""
        app = self.app
        if app.conf.settings.task_always_eager:
            return self.apply(args, kwargs, **options)
        plan = Plan()
        result = self.prepare(plan, tuple(args or ()), dict(kwargs or {}), options)
        plan.run_sync(app)
        return result

    async def aapply_async(self, args: Iterable[Any] | None = None,
                           kwargs: Mapping[str, Any] | None = None, **options: Any) -> Any:
        """Async :meth:`apply_async`: never blocks the running event loop."""
        app = self.app
        if app.conf.settings.task_always_eager:
            return self.apply(args, kwargs, **options)
        plan = Plan()
        result = self.prepare(plan, tuple(args or ()), dict(kwargs or {}), options)
        await plan.run_async(app)
        return result

    def prepare(self, plan: Plan, args: tuple[Any, ...], kwargs: dict[str, Any],
                options: dict[str, Any]) -> Any:
        """Add this call's sends to ``plan`` and return its result handle (no I/O)."""
        call_args, call_kwargs = self._merged(args, kwargs)
        opts = {**self.options, **{k: v for k, v in options.items() if v is not None}}
        opts.setdefault("task_id", self.options.get("task_id") or new_task_id())
        self.options["task_id"] = opts["task_id"]
        for key in ("chord", "chain"):
            if opts.get(key) is not None:
                opts[key] = plain(opts[key])
        task = self.app.tasks.get(self.task)
        if task is not None:
            task.check_arguments(call_args, call_kwargs)
        plan.sends.append(Send(self.task, call_args, call_kwargs, opts))
        return self.app.AsyncResult(opts["task_id"], task_name=self.task)

    def apply(self, args: Iterable[Any] | None = None, kwargs: Mapping[str, Any] | None = None,
              **options: Any) -> Any:
        """Run here, the way a worker would (eager), and return an eager result."""
        call_args, call_kwargs = self._merged(args, kwargs)
        opts = {k: v for k, v in {**self.options, **options}.items() if k not in _PLACEMENT}
        return self.type.apply(call_args, call_kwargs, **opts)

    # -- display -----------------------------------------------------------------
    def reprcall(self, *args: Any, **kwargs: Any) -> str:
        """``name(arg, key=value)`` with the partial arguments merged in."""
        call_args, call_kwargs = self._merged(args, kwargs)
        parts = [repr(a) for a in call_args] + [f"{k}={v!r}" for k, v in call_kwargs.items()]
        return f"{self.task}({', '.join(parts)})"

    def __repr__(self) -> str:
        return ("%" if self.immutable else "") + self.reprcall()


def signature_from_dict(d: Mapping[str, Any], app: Any = None) -> Signature:
    """The right :class:`Signature` subclass for a signature dict (by ``subtask_type``)."""
    if isinstance(d, Signature):
        if app is not None and d._app is None:
            d._app = app
        return d
    key = d.get("subtask_type") or d.get("task") or ""
    cls = SIGNATURE_TYPES.get(key, Signature)
    return cls.from_dict(d, app=app)


def maybe_signature(d: Any, app: Any = None) -> Signature | None:
    """``None`` for ``None``, a signature for a signature or a signature dict."""
    if d is None:
        return None
    if isinstance(d, Mapping):
        return signature_from_dict(d, app=app)
    raise TypeError(f"expected a signature or a signature dict, got {type(d).__name__}")


def signature(varies: Any, *args: Any, **kwargs: Any) -> Signature:
    """Make a signature from a task name, a task, or a signature dict (copied).

    ``signature("tasks.add", args=(2, 2), countdown=10)`` or
    ``signature(json.loads(payload))``.
    """
    app = kwargs.pop("app", None)
    if isinstance(varies, Mapping):
        if isinstance(varies, Signature):
            return varies.clone()
        return signature_from_dict(varies, app=app)
    kwargs["app"] = app
    return Signature(varies, *args, **kwargs)


subtask = signature
