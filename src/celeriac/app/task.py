"""``Task[P, R]``: a registered function plus its options and calling API.

``@app.task`` wraps a function into a :class:`Task` that keeps the function's
signature (``ParamSpec``), so ``add.delay(1, "x")`` is a type error when ``add``
takes ints. Calling the task object runs the function here and now; ``delay``
and ``apply_async`` send it to a worker and return an
:class:`~celeriac.app.result.AsyncResult`; ``adelay``/``aapply_async`` do the
same without blocking an event loop.
"""

from __future__ import annotations

import inspect
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar

from celeriac.app.context import Context, current_request, push_request
from celeriac.app.producer import paired_calls
from celeriac.errors import MaxRetriesExceededError, Retry

if TYPE_CHECKING:
    from celeriac.app.core import App
    from celeriac.app.result import AsyncResult, EagerResult
    from celeriac.canvas import Signature

__all__ = ["Task", "TaskOptions", "default_task_name"]

P = ParamSpec("P")
R = TypeVar("R")

#: Options ``@app.task(...)`` accepts, with Celery's defaults.
TaskOptions: dict[str, Any] = {
    "name": None,
    "bind": False,
    "max_retries": 3,
    "default_retry_delay": 180,
    "rate_limit": None,
    "time_limit": None,
    "soft_time_limit": None,
    "ignore_result": None,
    "store_errors_even_if_ignored": None,
    "queue": None,
    "routing_key": None,
    "exchange": None,
    "priority": None,
    "expires": None,
    "acks_late": None,
    "acks_on_failure_or_timeout": None,
    "reject_on_worker_lost": None,
    "track_started": None,
    "serializer": None,
    "compression": None,
    "autoretry_for": (),
    "dont_autoretry_for": (),
    "retry_backoff": False,
    "retry_backoff_max": 600,
    "retry_jitter": True,
    "retry_kwargs": None,
    "throws": (),
    "typing": True,
    "shadow_name": None,
}



def default_task_name(fun: Callable[..., Any], main: str | None) -> str:
    """``module.function``; a task defined in a script run as ``__main__`` takes the app's
    main name as its module (as Celery does), so clients importing that module agree."""
    module = fun.__module__
    if module == "__main__" and main:
        module = main
    return f"{module}.{fun.__name__}"

class Task(Generic[P, R]):
    """A task: the function, its options and how to call it (locally or remotely).

    Subclass it and pass ``base=MyTask`` to ``@app.task`` for hooks
    (``on_success``, ``on_failure``, ``on_retry``, ``after_return``).
    """

    # Class-level defaults so subclasses (``base=``) can override them.
    name: str = ""
    bind: bool = False
    max_retries: int | None = 3
    default_retry_delay: float = 180
    rate_limit: str | None = None
    time_limit: float | None = None
    soft_time_limit: float | None = None
    ignore_result: bool | None = None
    store_errors_even_if_ignored: bool | None = None
    queue: str | None = None
    routing_key: str | None = None
    exchange: str | None = None
    priority: int | None = None
    expires: float | datetime | None = None
    acks_late: bool | None = None
    acks_on_failure_or_timeout: bool | None = None
    reject_on_worker_lost: bool | None = None
    track_started: bool | None = None
    serializer: str | None = None
    compression: str | None = None
    autoretry_for: tuple[type[BaseException], ...] = ()
    dont_autoretry_for: tuple[type[BaseException], ...] = ()
    retry_backoff: bool | float = False
    retry_backoff_max: float = 600
    retry_jitter: bool = True
    retry_kwargs: Mapping[str, Any] | None = None
    throws: tuple[type[BaseException], ...] = ()
    typing: bool = True
    shadow_name: str | None = None

    def __init__(self, app: App, fun: Callable[..., Any], **options: Any) -> None:
        self.app = app
        self.run = fun
        self.__wrapped__ = fun
        self.__doc__ = fun.__doc__
        self.__module__ = fun.__module__
        self.__name__ = getattr(fun, "__name__", type(self).__name__)
        self.__qualname__ = getattr(fun, "__qualname__", self.__name__)
        for key, value in options.items():
            if key not in TaskOptions:
                raise TypeError(
                    f"@task got an unknown option {key!r}; known options: "
                    f"{', '.join(sorted(TaskOptions))}"
                )
            if value is not None or key in ("ignore_result",):
                setattr(self, key, value)
        if not self.name:
            self.name = default_task_name(fun, self.app.main)
        self.is_async = inspect.iscoroutinefunction(fun)
        self._signature = inspect.signature(fun)
        self._positional_range = _positional_range(self._signature, bool(self.bind))

    def __repr__(self) -> str:
        return f"<@task: {self.name} of {self.app.main or '__main__'}>"

    # -- calling here and now ------------------------------------------------
    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the function in this process (no message, no worker)."""
        if self.bind:
            result: R = self.run(self, *args, **kwargs)
        else:
            result = self.run(*args, **kwargs)
        return result

    @property
    def request(self) -> Context:
        """The request of the call running now (``self.request`` in bound tasks)."""
        return current_request()

    def check_arguments(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
        """Raise ``TypeError`` early when ``args``/``kwargs`` cannot bind (``typing=True``)."""
        if not self.typing:
            return
        bounds = self._positional_range
        if bounds is not None and not kwargs and bounds[0] <= len(args) <= bounds[1]:
            return  # what bind() would accept, without building a BoundArguments
        try:
            if self.bind:
                self._signature.bind(None, *args, **kwargs)
            else:
                self._signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"{self.name}() {exc}") from None

    # -- sending ---------------------------------------------------------------
    def delay(self, *args: P.args, **kwargs: P.kwargs) -> AsyncResult[R]:
        """Send the task with these arguments; shortcut for :meth:`apply_async`."""
        return self.apply_async(args, kwargs)

    def apply_async(
        self,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> AsyncResult[R]:
        """Send the task to a worker with Celery's options (``countdown``, ``eta``,
        ``expires``, ``queue``, ``priority``, ``link``, ...); returns at once."""
        args = tuple(args or ())
        kwargs = dict(kwargs or {})
        self.check_arguments(args, kwargs)
        if self.app.conf.settings.task_always_eager:
            return self.apply(args, kwargs, **options)
        return self.app.send_task(self.name, args, kwargs, task=self, **options)

    async def adelay(self, *args: P.args, **kwargs: P.kwargs) -> AsyncResult[R]:
        """Async :meth:`delay`: never blocks the running event loop."""
        return await self.aapply_async(args, kwargs)

    async def aapply_async(
        self,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> AsyncResult[R]:
        """Async :meth:`apply_async`."""
        args = tuple(args or ())
        kwargs = dict(kwargs or {})
        self.check_arguments(args, kwargs)
        if self.app.conf.settings.task_always_eager:
            return self.apply(args, kwargs, **options)
        return await self.app.asend_task(self.name, args, kwargs, task=self, **options)

    def delay_many(
        self,
        args_list: Iterable[Sequence[Any]],
        kwargs_list: Iterable[Mapping[str, Any]] | None = None,
        **options: Any,
    ) -> list[AsyncResult[R]]:
        """Send one task per item of ``args_list`` in batches (see :meth:`App.send_many`).

        ``add.delay_many([(1, 2), (3, 4)])`` is ``[add.delay(1, 2), add.delay(3, 4)]``
        with one broker round trip per 1,000 tasks instead of one per task.
        """
        if self.app.conf.settings.task_always_eager:
            return [self.apply(a, k, **options)
                    for a, k in paired_calls(args_list, kwargs_list)]
        return self.app.send_many(self.name, args_list, kwargs_list, task=self, **options)

    async def adelay_many(
        self,
        args_list: Iterable[Sequence[Any]],
        kwargs_list: Iterable[Mapping[str, Any]] | None = None,
        **options: Any,
    ) -> list[AsyncResult[R]]:
        """Async :meth:`delay_many`."""
        if self.app.conf.settings.task_always_eager:
            return [self.apply(a, k, **options)
                    for a, k in paired_calls(args_list, kwargs_list)]
        return await self.app.asend_many(self.name, args_list, kwargs_list, task=self, **options)

    def apply(
        self,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> EagerResult[R]:
        """Run the task here, the way a worker would, and return an eager result."""
        from celeriac.app.eager import apply_eagerly  # eager.py imports this module

        return apply_eagerly(self, tuple(args or ()), dict(kwargs or {}), options)

    def AsyncResult(self, task_id: str) -> AsyncResult[R]:
        """A result handle for ``task_id`` of this task."""
        return self.app.AsyncResult(task_id, task_name=self.name)

    # -- canvas ----------------------------------------------------------------
    def s(self, *args: Any, **kwargs: Any) -> Signature:
        """A signature of this task with partial arguments."""
        return self.signature(args, kwargs)

    def si(self, *args: Any, **kwargs: Any) -> Signature:
        """An immutable signature: it ignores the parent's result in a chain."""
        return self.signature(args, kwargs, immutable=True)

    def signature(
        self,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        *,
        immutable: bool = False,
        **options: Any,
    ) -> Signature:
        """A signature of this task (``subtask`` in old Celery)."""
        from celeriac.canvas import Signature

        return Signature(
            self.name, tuple(args or ()), dict(kwargs or {}), options,
            immutable=immutable, app=self.app,
        )

    subtask = signature

    def map(self, it: Any) -> Signature:
        """A ``map`` of this task over an iterable, run as one task."""
        from celeriac.canvas import xmap

        return xmap(self.s(), it, app=self.app)

    def starmap(self, it: Any) -> Signature:
        """Like :meth:`map` but each item is unpacked as positional arguments."""
        from celeriac.canvas import xstarmap

        return xstarmap(self.s(), it, app=self.app)

    def chunks(self, it: Any, n: int) -> Signature:
        """Split ``it`` into chunks of ``n`` items, each chunk run as one task."""
        from celeriac.canvas import chunks

        return chunks(self.s(), it, n, app=self.app)

    # -- inside a running task -------------------------------------------------
    def retry(
        self,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        exc: BaseException | None = None,
        throw: bool = True,
        eta: datetime | None = None,
        countdown: float | None = None,
        max_retries: int | None = None,
        **options: Any,
    ) -> Retry:
        """Ask the worker to run this task again later; raises :class:`Retry`.

        When retries are exhausted the original ``exc`` is raised (or
        :class:`MaxRetriesExceededError` when there is none).
        """
        request = self.request
        limit = self.max_retries if max_retries is None else max_retries
        if limit is not None and request.retries >= limit:
            if exc is not None:
                raise exc
            raise MaxRetriesExceededError(
                f"Can't retry {self.name}[{request.id}] args:{request.args} "
                f"kwargs:{request.kwargs}: max retries ({limit}) exceeded"
            )
        when: float | datetime
        if eta is not None:
            when = eta
        elif countdown is not None:
            when = countdown
        else:
            when = self.default_retry_delay
        retry = Retry(exc=exc, when=when)
        retry.sig_args = tuple(args) if args is not None else None  # type: ignore[attr-defined]
        retry.sig_kwargs = dict(kwargs) if kwargs is not None else None  # type: ignore[attr-defined]
        retry.options = options  # type: ignore[attr-defined]
        if throw:
            raise retry
        return retry

    def backoff_countdown(self, retries: int) -> float:
        """Seconds to wait before retry number ``retries + 1`` under ``retry_backoff``."""
        factor = 1.0 if self.retry_backoff is True else float(self.retry_backoff)
        countdown = float(min(self.retry_backoff_max, factor * (2**retries)))
        if self.retry_jitter:
            countdown = random.uniform(0, countdown)
        return countdown

    def update_state(
        self, task_id: str | None = None, state: str | None = None, meta: Any = None
    ) -> None:
        """Store a custom state (e.g. ``PROGRESS``) for the running (or given) task."""
        self.app.store_state(task_id or self.request.id or "", state or "PENDING", meta)

    # -- hooks for subclasses -------------------------------------------------
    def before_start(self, task_id: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Called in the worker before the function runs."""

    def on_success(
        self, retval: Any, task_id: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        """Called in the worker after the function returned."""

    def on_failure(
        self,
        exc: BaseException,
        task_id: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        einfo: Any,
    ) -> None:
        """Called in the worker after the function raised."""

    def on_retry(
        self,
        exc: BaseException,
        task_id: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        einfo: Any,
    ) -> None:
        """Called in the worker when the task asked to be retried."""

    def after_return(
        self,
        status: str,
        retval: Any,
        task_id: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        einfo: Any,
    ) -> None:
        """Called in the worker after any outcome."""

    def call_with_context(self, ctx: Context, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Run the function with ``ctx`` as ``self.request`` (what executors use)."""
        with push_request(ctx):
            if self.bind:
                return self.run(self, *args, **kwargs)
            return self.run(*args, **kwargs)


def _positional_range(signature: inspect.Signature, bound: bool) -> tuple[int, float] | None:
    """``(least, most)`` positional arguments a call without keywords may pass, or
    None when such a call needs a full ``bind()`` (a keyword-only argument
    without default). ``bound`` tasks get ``self`` first."""
    least, most = 0, 0.0
    for param in signature.parameters.values():
        if param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
            most += 1
            if param.default is param.empty:
                least = int(most)
        elif param.kind is param.VAR_POSITIONAL:
            most = float("inf")
        elif param.kind is param.KEYWORD_ONLY and param.default is param.empty:
            return None
    if bound:
        if most < 1:
            return None
        least, most = max(least - 1, 0), most - 1
    return least, most
