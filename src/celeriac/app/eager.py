"""Eager execution: ``Task.apply`` and ``task_always_eager`` run tasks in the caller.

The task runs through the same :func:`~celeriac.app.trace.run_task` a worker
uses; retries run again at once (the countdown is not waited for), links run
eagerly with the result, and with ``task_eager_propagates`` a failure raises
in the caller.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from celeriac.app.context import Context
from celeriac.app.result import EagerResult
from celeriac.app.trace import Outcome, arun_task, run_task
from celeriac.protocol import states
from celeriac.protocol.message import new_task_id
from celeriac.protocol.results import ResultMeta, now_iso

if TYPE_CHECKING:
    from celeriac.app.task import Task

__all__ = ["apply_eagerly"]


def _run(task: Task[Any, Any], ctx: Context) -> Outcome:
    if task.is_async:
        return asyncio.run(arun_task(task, ctx))
    return run_task(task, ctx)


def apply_eagerly(
    task: Task[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any],
    options: Mapping[str, Any],
) -> EagerResult[Any]:
    """Run ``task`` here as a worker would and return its :class:`EagerResult`."""
    task_id = options.get("task_id") or new_task_id()
    retries = int(options.get("retries", 0))
    while True:
        ctx = Context(
            id=task_id, task=task.name, args=args, kwargs=kwargs, retries=retries,
            is_eager=True, called_directly=False, root_id=task_id,
            delivery_info={"is_eager": True},
        )
        out = _run(task, ctx)
        if out.status != states.RETRY or out.retry is None:
            break
        retries += 1
        if out.retry.args is not None:
            args = out.retry.args
        if out.retry.kwargs is not None:
            kwargs = out.retry.kwargs
    status = out.status if out.status in states.READY_STATES else states.SUCCESS
    if out.status == states.FAILURE:
        status = states.FAILURE
    meta = ResultMeta(task_id, status, out.exc_wire if out.exc is not None else out.value,
                      out.traceback, date_done=now_iso())
    if out.exc is not None and task.app.conf.settings.task_eager_propagates:
        raise out.exc
    if status == states.SUCCESS:
        for link in options.get("link") or ():
            link.apply((out.value,)) if hasattr(link, "apply") else None
    return EagerResult(task_id, meta, task.app, exc=out.exc)
