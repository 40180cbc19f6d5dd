"""What happens after a task ran: results, retries, callbacks, chains and chords.

All of it runs in the worker's event loop over the async faces of the backend
and transport, after the pool returned an :class:`Outcome` and before the
message is acknowledged (so a crash in between re-runs the task rather than
losing its follow-ups: at-least-once end to end).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from celeriac.app.trace import Outcome
from celeriac.backends.base import ChordPart, ResultBackend
from celeriac.canvas import Plan, signature_from_dict
from celeriac.errors import ChordError
from celeriac.protocol import states
from celeriac.protocol.exceptions import exception_from_wire, exception_to_wire
from celeriac.protocol.message import build_task_envelope, new_task_id
from celeriac.protocol.results import ResultMeta, now_iso
from celeriac.transports.base import Transport
from celeriac.worker._batching import StoreBatcher, WriteDone
from celeriac.worker.request import Request

if TYPE_CHECKING:
    from celeriac.app.core import App

__all__ = ["Completion"]

logger = logging.getLogger("celeriac.worker")


class Completion:
    """Applies an outcome: stores it and sends whatever comes next."""

    def __init__(self, app: App, transport: Transport, backend: ResultBackend | None,
                 hostname: str) -> None:
        self.app = app
        self.transport = transport
        self.backend = backend
        self.hostname = hostname
        # Results of tasks that finish in the same loop turn go out in one call.
        self._stores = StoreBatcher(backend) if backend is not None else None
        settings = app.conf.settings
        self.extended = bool(settings.result_extended)
        self.store_errors_even_if_ignored = bool(settings.task_store_errors_even_if_ignored)

    # -- results -----------------------------------------------------------------
    def _meta(self, request: Request, status: str, result: Any, traceback: str | None,
              children: list[Any] | None) -> ResultMeta:
        m = request.message
        extra: dict[str, Any] = {}
        if self.extended:
            extra = {
                "name": m.task, "args": list(m.args), "kwargs": dict(m.kwargs),
                "worker": self.hostname, "retries": m.retries,
                "queue": request.delivery.envelope.routing_key, "extended": True,
            }
        return ResultMeta(
            m.id, status, result, traceback, children, now_iso(),
            group_id=m.group, parent_id=m.parent_id, reply_to=m.reply_to, **extra,
        )

    async def store(self, request: Request, status: str, result: Any,
                    traceback: str | None = None, children: list[Any] | None = None) -> None:
        """Write a state for ``request`` unless results are ignored for it."""
        if self._stores is None:
            return
        ignored = request.message.ignore_result or bool(
            getattr(request.task, "ignore_result", False)
        )
        if ignored and not (status == states.FAILURE and self.store_errors_even_if_ignored):
            return
        await self._stores.store(self._meta(request, status, result, traceback,
                                            children if children is not None else []))

    def store_success_then(self, request: Request, out: Outcome, done: WriteDone) -> bool:
        """Queue the result of a success that needs nothing but its result stored (no
        callback, chain step or chord) and return ``True``; ``done(exc)`` is called
        once it is written. ``False`` (nothing done): :meth:`finish` is needed."""
        m = request.message
        if (out.status != states.SUCCESS or self._stores is None or m.callbacks or m.chain
                or m.chord is not None or m.ignore_result
                or getattr(request.task, "ignore_result", False)):
            return False
        self._stores.store_then(self._meta(request, states.SUCCESS, out.value, None, []), done)
        return True

    def after_writes(self, hook: Callable[[], Awaitable[None]]) -> None:
        """Await ``hook`` (the worker's ack flush) after each batch of results is written
        and its :meth:`store_success_then` callbacks have run."""
        if self._stores is not None:
            self._stores.after_write = hook

    async def writes_done(self) -> None:
        """Wait until every result write started so far is done (warm shutdown)."""
        if self._stores is not None:
            await self._stores.idle()

    def is_trivial(self, request: Request, out: Outcome) -> bool:
        """Whether :meth:`finish` would do nothing for ``out``: a success whose
        result is not stored and that starts no callback, chain step or chord."""
        if out.status != states.SUCCESS:
            return out.status == states.IGNORED
        m = request.message
        if m.callbacks or m.chain or m.chord is not None:
            return False
        return self._stores is None or m.ignore_result or bool(
            getattr(request.task, "ignore_result", False))

    # -- the outcome --------------------------------------------------------------
    async def finish(self, request: Request, out: Outcome) -> None:
        """Store the outcome and send follow-ups; the caller acks afterwards."""
        if out.status == states.SUCCESS:
            await self._succeeded(request, out)
        elif out.status == states.RETRY and out.retry is not None:
            await self._retry(request, out)
        elif out.status in (states.FAILURE, states.REVOKED):
            await self._failed(request, out)

    async def _succeeded(self, request: Request, out: Outcome) -> None:
        m = request.message
        follow: list[tuple[dict[str, Any], tuple[Any, ...], dict[str, Any]]] = []
        for sig in m.callbacks or ():
            follow.append((sig, (out.value,), {}))
        if m.chain:
            nxt, rest = m.chain[-1], m.chain[:-1]
            follow.append((nxt, (out.value,), {"chain": rest or None}))
        children = []
        for i, (sig, args, extra) in enumerate(follow):
            if sig.get("subtask_type"):
                # A group/chord/chain step: its ids are assigned now so the parent's
                # ``children`` can name them (a group appears as a group result).
                canvas_sig = signature_from_dict(sig, app=self.app)
                children.append(canvas_sig.freeze().as_tuple())
                follow[i] = (canvas_sig, args, extra)
                continue
            opts = sig.setdefault("options", {})
            opts.setdefault("task_id", new_task_id())
            children.append([[opts["task_id"], None], None])
        await self.store(request, states.SUCCESS, out.value, None, children)
        for sig, args, extra in follow:
            await self.send_signature(sig, args, request, extra)
        if m.chord is not None and m.group:
            await self._chord_part(request, m.group, m.id, m.group_index or 0, m.chord,
                                   states.SUCCESS, out.value)

    async def _failed(self, request: Request, out: Outcome) -> None:
        m = request.message
        # A failed step stops the chain: the steps that will never run are marked
        # failed too (so waiting on the chain's result raises instead of hanging),
        # before this step's own state, so whoever sees this failure (a get()
        # following parents) finds the rest of the chain failed as well.
        for step in m.chain or ():
            opts = step.get("options") or {}
            for result_id in self._result_ids(step):
                await self.backend.store(ResultMeta(  # type: ignore[union-attr]
                    result_id, out.status, out.exc_wire, out.traceback, [], now_iso(),
                    group_id=opts.get("group_id"), parent_id=m.id,
                    reply_to=opts.get("reply_to") or m.reply_to,
                ))
        await self.store(request, out.status, out.exc_wire, out.traceback)
        exc = out.exc if out.exc is not None else (
            exception_from_wire(out.exc_wire) if out.exc_wire else None
        )
        if m.chord is not None and m.group:
            await self._chord_part(request, m.group, m.id, m.group_index or 0, m.chord,
                                   states.FAILURE, out.exc_wire)
        # A never-run step that was a chord part is counted as a failed part.
        for step in m.chain or ():
            opts = step.get("options") or {}
            step_id = opts.get("task_id")
            if step_id and opts.get("chord") is not None and opts.get("group_id"):
                await self._chord_part(request, opts["group_id"], step_id,
                                       opts.get("group_index") or 0, opts["chord"],
                                       out.status, out.exc_wire)
        # chain.link_error links every step (as Celery does), so only this
        # step's own errbacks run here.
        for sig in _unique(m.errbacks or ()):
            await self.call_errback(sig, request, exc, out.traceback)

    def _result_ids(self, step: dict[str, Any]) -> list[str]:
        """The ids whose results a (never to run) chain step would have written."""
        if self.backend is None:
            return []
        if not step.get("subtask_type"):
            step_id = (step.get("options") or {}).get("task_id")
            return [step_id] if step_id else []
        ids: list[str] = []
        pending = [signature_from_dict(step, app=self.app).freeze()]
        while pending:
            result = pending.pop()
            members = getattr(result, "results", None)
            if members is not None:
                pending.extend(members)
            else:
                ids.append(result.id)
        return ids

    async def _retry(self, request: Request, out: Outcome) -> None:
        assert out.retry is not None
        m = request.message
        plan = out.retry
        if plan.eta is not None:
            eta = plan.eta if plan.eta.tzinfo else plan.eta.replace(tzinfo=UTC)
        else:
            eta = datetime.now(UTC) + timedelta(seconds=plan.countdown or 0)
        msg = replace(
            m, retries=m.retries + 1, eta=eta, parent_id=m.id,
            args=tuple(plan.args) if plan.args is not None else m.args,
            kwargs=dict(plan.kwargs) if plan.kwargs is not None else m.kwargs,
            argsrepr=None, kwargsrepr=None,
        )
        env = request.delivery.envelope
        settings = self.app.conf.settings
        serializer = getattr(request.task, "serializer", None) or settings.task_serializer
        queue = plan.options.get("queue") or env.routing_key or request.delivery.queue
        envelope = build_task_envelope(msg, queue=queue, exchange=env.exchange,
                                       serializer=serializer)
        await self.store(request, states.RETRY, out.exc_wire, out.traceback)
        await self.transport.publish(envelope, eta=eta.timestamp())

    # -- follow-ups -----------------------------------------------------------------
    async def send_signature(self, sig: dict[str, Any], args: tuple[Any, ...],
                             request: Request, extra: dict[str, Any] | None = None) -> None:
        """Send a signature dict as a task, with ``args`` prepended unless immutable."""
        if sig.get("subtask_type"):
            canvas_sig = signature_from_dict(sig, app=self.app)
            plan = Plan()
            canvas_sig.prepare(plan, args, {}, {
                "parent_id": request.id, "root_id": request.message.root_id, **(extra or {}),
            })
            # Chord sizes go through the worker's backend, connected on this loop.
            await plan.run_async(self.app, backend=self.backend)
            return
        call_args = tuple(sig.get("args") or ())
        if not sig.get("immutable"):
            call_args = args + call_args
        options = dict(sig.get("options") or {})
        options.update(extra or {})
        if options.get("parent_id") is None:
            options["parent_id"] = request.id
        if options.get("root_id") is None:
            options["root_id"] = request.message.root_id
        for key in ("link", "link_error"):
            if key in options and options[key] is None:
                del options[key]
        await self.app.asend_task(sig["task"], call_args, sig.get("kwargs") or {}, **options)

    async def call_errback(self, sig: dict[str, Any], request: Request,
                           exc: BaseException | None, traceback: str | None,
                           failed_id: str | None = None) -> None:
        """Run an errback: new-style ``(request, exc, traceback)`` locally, else send ``(id,)``.

        ``failed_id`` names the task that failed when it is not ``request``'s
        (a chord body failed by one of its header tasks).
        """
        task = self.app.tasks.get(sig.get("task", ""))
        if task is not None and _takes_request_exc_tb(task):
            ctx = request.to_job(self.hostname, None, None).ctx
            if failed_id is not None:
                ctx.id = failed_id
            args = (ctx, exc, traceback, *(sig.get("args") or ()))
            try:
                if task.is_async:
                    await task.run(*args, **(sig.get("kwargs") or {}))
                else:
                    await asyncio.to_thread(task.run, *args, **(sig.get("kwargs") or {}))
            except Exception:
                logger.exception("errback %s for %s[%s] raised", sig.get("task"),
                                 request.name, request.id)
            return
        await self.send_signature(sig, (failed_id or request.id,), request)

    async def _chord_part(self, request: Request, group_id: str, task_id: str, index: int,
                          chord: dict[str, Any], status: str, result: Any) -> None:
        if self.backend is None:
            logger.error("chord part %s[%s] cannot be counted: no result backend",
                         request.name, task_id)
            return
        part = ChordPart(group_id, task_id, index, status, result)
        parts = await self.backend.chord_part_return(part)
        if parts is None:
            return
        body = dict(chord)
        body_id = (body.get("options") or {}).get("task_id")
        # A redelivered completer: its worker died before the ack, so the body may
        # already be on its way. Send it only if nothing is known of it yet
        # (at-least-once, without a second run in the common case).
        if (request.delivery.redelivered and body_id
                and await self.backend.get(body_id) is not None):
            return
        failed = [p for p in parts if p.status != states.SUCCESS]
        if failed:
            await self._chord_failed(request, body, failed[0])
            return
        values = [p.result for p in parts]
        await self.send_signature(body, (values,), request)

    async def _chord_failed(self, request: Request, body: dict[str, Any],
                            first: ChordPart) -> None:
        """Fail the chord's body with ``ChordError`` naming the failed header task."""
        error = ChordError(f"Dependency {first.task_id} raised {_describe(first.result)}")
        options = body.get("options") or {}
        # A chain body's id is its last step's (``options.task_id`` of the chain).
        body_id = options.get("task_id")
        if body_id and self.backend is not None:
            await self.backend.store(ResultMeta(
                body_id, states.FAILURE, exception_to_wire(error), None, [], now_iso(),
                group_id=options.get("group_id"),
            ))
        errbacks = list(options.get("link_error") or ())
        if body.get("subtask_type") == "chain":
            for step in (body.get("kwargs") or {}).get("tasks") or ():
                errbacks.extend((step.get("options") or {}).get("link_error") or ())
        # The body may itself be a part of an outer chord (a chord of chords).
        outer = options.get("chord")
        if outer is not None and options.get("group_id") and body_id:
            await self._chord_part(request, options["group_id"], body_id,
                                   options.get("group_index") or 0, outer,
                                   states.FAILURE, exception_to_wire(error))
        for sig in _unique(errbacks):
            await self.call_errback(sig, request, error, None, failed_id=body_id)


def _unique(sigs: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for sig in sigs:
        if sig not in out:
            out.append(sig)
    return out


def _describe(wire: Any) -> str:
    if isinstance(wire, dict) and "exc_type" in wire:
        message = wire.get("exc_message")
        if isinstance(message, list | tuple):
            message = ", ".join(repr(x) for x in message)
        return f"{wire['exc_type']}({message})"
    return repr(wire)


def _takes_request_exc_tb(task: Any) -> bool:
    """Whether an errback is new-style: more than one positional parameter (Celery's rule).

    Such an errback is called in the worker with ``(request, exc, traceback)``
    whatever its parameters are named (the seeds' ``error_handler(task_id, exc,
    traceback)`` is one); a one-argument errback is sent as a task with the id.
    """
    import inspect

    try:
        params = list(inspect.signature(task.run).parameters.values())
    except (TypeError, ValueError):
        return False
    if task.bind:
        params = params[1:]
    positional = 0
    for param in params:
        if param.kind is inspect.Parameter.VAR_POSITIONAL:
            return True
        if param.kind in (inspect.Parameter.POSITIONAL_ONLY,
                          inspect.Parameter.POSITIONAL_OR_KEYWORD):
            positional += 1
    return positional > 1
