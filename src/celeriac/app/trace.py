"""Running one task call and classifying how it ended: the :class:`Outcome`.

This is the part of execution that is the same wherever the function runs: in
the worker's loop (solo, asyncio), in a pool thread, in a prefork child, or in
the caller's process (``apply``, eager mode). It pushes the request context,
calls the task's hooks and signals, turns ``self.retry()`` / ``autoretry_for``
into a retry plan, and captures exceptions in their wire form so the outcome
can cross a process boundary.
"""

from __future__ import annotations

import asyncio
import time
import traceback as tb_module
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from celeriac import signals
from celeriac.app.context import Context, reset_request, set_request
from celeriac.errors import Ignore, Reject, Retry
from celeriac.protocol import states
from celeriac.protocol.exceptions import exception_to_wire

if TYPE_CHECKING:
    from celeriac.app.task import Task

__all__ = ["Outcome", "RetryPlan", "arun_task", "run_task"]


@dataclass(slots=True)
class RetryPlan:
    """How to send a task again: when (seconds from now or an absolute time) and with what."""

    countdown: float | None = None
    eta: datetime | None = None
    args: tuple[Any, ...] | None = None
    kwargs: dict[str, Any] | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Outcome:
    """How one execution ended. Picklable when ``exc`` is dropped (prefork sends wire forms)."""

    status: str
    value: Any = None
    exc: BaseException | None = None
    exc_wire: dict[str, Any] | None = None
    traceback: str | None = None
    runtime: float = 0.0
    retry: RetryPlan | None = None
    requeue: bool = False
    reason: str = ""

    def portable(self) -> Outcome:
        """A copy safe to pickle across processes (the live exception dropped)."""
        return Outcome(self.status, self.value, None, self.exc_wire, self.traceback,
                       self.runtime, self.retry, self.requeue, self.reason)


def _failure(exc: BaseException, started: float) -> Outcome:
    return Outcome(
        states.FAILURE, exc=exc, exc_wire=exception_to_wire(exc),
        traceback="".join(tb_module.format_exception(exc)),
        runtime=time.perf_counter() - started,
    )


def _retry_outcome(task: Task[Any, Any], ctx: Context, retry: Retry, started: float) -> Outcome:
    when = retry.when
    plan = RetryPlan(
        countdown=float(when) if isinstance(when, int | float) else None,
        eta=when if isinstance(when, datetime) else None,
        args=getattr(retry, "sig_args", None),
        kwargs=getattr(retry, "sig_kwargs", None),
        options=dict(getattr(retry, "options", None) or {}),
    )
    cause = retry.exc if retry.exc is not None else retry
    out = Outcome(
        states.RETRY, exc=cause, exc_wire=exception_to_wire(cause),
        traceback="".join(tb_module.format_exception(cause)) if retry.exc is not None else None,
        runtime=time.perf_counter() - started, retry=plan,
    )
    task.on_retry(cause, ctx.id or "", ctx.args, ctx.kwargs, out.traceback)
    if signals.task_retry.connected:
        signals.task_retry.send(sender=task, request=ctx, reason=cause, einfo=out.traceback)
    return out


def _autoretry(task: Task[Any, Any], ctx: Context, exc: BaseException) -> BaseException:
    """Turn an exception listed in ``autoretry_for`` into ``Retry`` (or the exc when exhausted)."""
    opts = dict(task.retry_kwargs or {})
    countdown = opts.pop("countdown", None)
    if task.retry_backoff:
        countdown = task.backoff_countdown(ctx.retries)
    try:
        task.retry(exc=exc, countdown=countdown, **opts)
    except (Retry, Exception) as raised:
        return raised
    return exc  # pragma: no cover - retry() always raises with throw=True


def _classify(task: Task[Any, Any], ctx: Context, exc: BaseException, started: float) -> Outcome:
    if isinstance(exc, Retry):
        return _retry_outcome(task, ctx, exc, started)
    if isinstance(exc, Ignore):
        return Outcome(states.IGNORED, runtime=time.perf_counter() - started)
    if isinstance(exc, Reject):
        return Outcome(states.REJECTED, requeue=exc.requeue, reason=str(exc.reason or ""),
                       runtime=time.perf_counter() - started)
    if (
        task.autoretry_for
        and isinstance(exc, task.autoretry_for)
        and not (task.dont_autoretry_for and isinstance(exc, task.dont_autoretry_for))
    ):
        raised = _autoretry(task, ctx, exc)
        if isinstance(raised, Retry):
            return _retry_outcome(task, ctx, raised, started)
        exc = raised
    out = _failure(exc, started)
    task.on_failure(exc, ctx.id or "", ctx.args, ctx.kwargs, out.traceback)
    if signals.task_failure.connected:
        signals.task_failure.send(
            sender=task, task_id=ctx.id, exception=exc, args=ctx.args, kwargs=ctx.kwargs,
            traceback=exc.__traceback__, einfo=out.traceback,
        )
    return out


def _success(task: Task[Any, Any], ctx: Context, value: Any, started: float) -> Outcome:
    out = Outcome(states.SUCCESS, value, None, None, None, time.perf_counter() - started)
    task.on_success(value, ctx.id or "", ctx.args, ctx.kwargs)
    if signals.task_success.connected:
        signals.task_success.send(sender=task, result=value)
    return out


def _prerun(task: Task[Any, Any], ctx: Context) -> None:
    if signals.task_prerun.connected:
        signals.task_prerun.send(sender=task, task_id=ctx.id, task=task,
                                 args=ctx.args, kwargs=ctx.kwargs)
    task.before_start(ctx.id or "", ctx.args, ctx.kwargs)


def _postrun(task: Task[Any, Any], ctx: Context, out: Outcome) -> None:
    task.after_return(out.status, out.value if out.exc is None else out.exc, ctx.id or "",
                      ctx.args, ctx.kwargs, out.traceback)
    if signals.task_postrun.connected:
        signals.task_postrun.send(sender=task, task_id=ctx.id, task=task, args=ctx.args,
                                  kwargs=ctx.kwargs, retval=out.value, state=out.status)


def run_task(task: Task[Any, Any], ctx: Context) -> Outcome:
    """Run a sync task function with ``ctx`` as its request; never raises task errors."""
    started = time.perf_counter()
    token = set_request(ctx)
    try:
        try:
            _prerun(task, ctx)
            if task.bind:
                value = task.run(task, *ctx.args, **ctx.kwargs)
            else:
                value = task.run(*ctx.args, **ctx.kwargs)
            out = _success(task, ctx, value, started)
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            out = _classify(task, ctx, exc, started)
        _postrun(task, ctx, out)
    finally:
        reset_request(token)
    return out


async def arun_task(task: Task[Any, Any], ctx: Context) -> Outcome:
    """Run an ``async def`` task with ``ctx`` as its request, on the running loop."""
    started = time.perf_counter()
    token = set_request(ctx)
    try:
        try:
            _prerun(task, ctx)
            if task.bind:
                value = await task.run(task, *ctx.args, **ctx.kwargs)
            else:
                value = await task.run(*ctx.args, **ctx.kwargs)
            out = _success(task, ctx, value, started)
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt | SystemExit | asyncio.CancelledError):
                raise
            out = _classify(task, ctx, exc, started)
        _postrun(task, ctx, out)
    finally:
        reset_request(token)
    return out
