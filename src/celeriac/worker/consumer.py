"""The consumer: fetch messages in batches, vet them, run them, acknowledge them.

The fetch loop keeps at most ``window`` messages in flight (concurrency x
prefetch multiplier). Each message is decoded and checked (content type,
known task, revoked, expired, ETA) before it reaches the pool. Acks of
finished messages are collected and sent together once per loop turn.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from celeriac.app.trace import Outcome
from celeriac.errors import (
    ContentDisallowed,
    DecodeError,
    EncodeError,
    NotRegistered,
    OperationalError,
    TaskRevokedError,
)
from celeriac.protocol import states
from celeriac.protocol.exceptions import exception_to_wire
from celeriac.protocol.message import parse_task_envelope
from celeriac.protocol.results import ResultMeta, now_iso
from celeriac.transports.base import Delivery
from celeriac.worker._acks import AckSender
from celeriac.worker._outcomes import (
    ack_on_failure,
    exc_type,
    is_worker_lost,
    reject_on_worker_lost,
    send_revoked,
)
from celeriac.worker.pools.base import Job, failed_outcome
from celeriac.worker.request import Request

if TYPE_CHECKING:
    from celeriac.worker.worker import Worker

__all__ = ["Consumer"]

logger = logging.getLogger("celeriac.worker")


def _log_internal_error(request: Request) -> None:
    """Log the exception being handled: a fault of the worker, not of the task."""
    logger.exception("internal error handling %s[%s]; the message is given back",
                     request.name, request.id)


class Consumer(AckSender):
    """Owns the fetch loop and the set of in-flight requests of one worker.

    Made by :meth:`Worker.run`, inside the worker's event loop.
    """

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.app = worker.app
        self.transport = worker.transport
        self.pool = worker.pool
        self.completion = worker.completion
        if self.completion.backend is not None:
            self.completion.backend.share_broker(self.transport)
        self.window = worker.prefetch_window
        self.accept = tuple(self.app.conf.settings.accept_content)
        self.acks_late_default = bool(self.app.conf.settings.task_acks_late)
        self.inflight: dict[str, Request] = {}
        self.held: dict[str, tuple[Request, asyncio.TimerHandle]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # Jobs handed to Pool.submit not reported back yet, plus results queued with
        # Completion.store_success_then not written yet: callbacks still to come.
        self._callbacks_due = 0
        self._callbacks_done = asyncio.Event()
        self._slot = asyncio.Event()
        self._pending_acks: list[Delivery] = []
        self._ack_scheduled = False
        # True while the fetch loop dispatches a batch without awaiting: acks
        # queued then go out when the batch is done (see _dispatch).
        self._dispatching = False
        self._stopping = False
        self._loop = asyncio.get_running_loop()  # made inside the worker's loop
        # Looked up once per message: bound here.
        self._tasks_get = self.app.tasks.get
        self._state = worker.state
        self._events = worker.events
        self.processed = 0
        # Acks of results written together go out right after their write, from the
        # writer's task (see _stored): no loop turn or task of their own.
        self.completion.after_writes(self._send_acks)

    # -- the loop -------------------------------------------------------------------
    async def run(self) -> None:
        """Fetch until :meth:`stop`; reconnect with backoff when the broker goes away."""
        backoff = 0.1
        queues = self.worker.queues
        # Fetch in batches: while the pool is busy, wait until half the window is
        # free (one round trip then brings many messages, not one per finished
        # task); a pool with an idle slot always fetches at once.
        low_water = max(1, self.window // 2)
        while not self._stopping:
            free = self.window - len(self.inflight)
            if free <= 0 or (free < low_water and len(self.inflight) >= self.pool.limit):
                self._slot.clear()
                await self._slot.wait()
                continue
            try:
                deliveries = await self.transport.fetch(queues, free, 1.0)
                backoff = 0.1
            except OperationalError as exc:
                logger.error("consumer: broker connection lost: %s; retrying in %.1fs",
                             exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if self._stopping:
                await self.transport.stop_fetching()
                for d in deliveries:
                    await self._safe_reject(d, requeue=True, reason="worker shutting down")
                break
            await self._dispatch(deliveries)

    async def _dispatch(self, deliveries: Sequence[Delivery]) -> None:
        """Vet and start a fetched batch.

        The acks that runs finished inside it queue (a solo batch runs inline)
        are sent right after it, before the next fetch (which carries them on
        Redis): no flush task per batch. An await inside the batch (a message
        that needs :meth:`accept_delivery`) lets other acks schedule their own
        flush, as outside a batch.
        """
        self._dispatching = True
        try:
            for delivery in deliveries:
                request = self._ready(delivery)
                if request is not None:
                    self._start(request)
                    continue
                self._dispatching = False
                await self.accept_delivery(delivery)
                self._dispatching = True
        finally:
            self._dispatching = False
        if self._pending_acks and not self._ack_scheduled:
            await self._send_acks()

    def stop(self) -> None:
        """Stop fetching (warm shutdown starts here)."""
        self._stopping = True
        self._slot.set()

    async def drain(self) -> None:
        """Wait for every running request to finish and be acked."""
        while self._tasks or self._callbacks_due:
            if self._callbacks_due:
                self._callbacks_done.clear()
                await self._callbacks_done.wait()
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
            # An _execute task cancelled before its first step never ran its finally.
            self._tasks.difference_update([t for t in self._tasks if t.done()])
        await self.completion.writes_done()
        await self.flush_acks(now=True)

    async def requeue_held(self) -> None:
        """Give ETA messages held in memory back to the broker (shutdown)."""
        for request, timer in list(self.held.values()):
            timer.cancel()
            await self._safe_reject(request.delivery, requeue=True, reason="worker shutdown")
        self.held.clear()

    # -- vetting ----------------------------------------------------------------------
    def _ready(self, delivery: Delivery) -> Request | None:
        """The request of ``delivery`` if it may start now, the common case, checked
        without awaiting anything; ``None`` sends it to :meth:`accept_delivery`
        (undecodable, unknown task, revoked, expired or not due yet)."""
        try:
            message = parse_task_envelope(delivery.envelope, self.accept)
        except (DecodeError, ContentDisallowed):
            return None
        task = self._tasks_get(message.task)
        if task is None:
            return None
        request = Request(message, delivery, task)
        eta = message.eta
        if (self._state.revoked or message.expires is not None or eta is not None) and (
                self._state.is_revoked(request.id) or request.expired()
                or (eta is not None and eta.timestamp() > time.time() + 0.005)):
            return None
        if logger.isEnabledFor(logging.INFO):
            logger.info("Received task: %s[%s]", request.display_name, request.id)
        self._events.task_received(request)
        return request

    async def accept_delivery(self, delivery: Delivery) -> None:
        """Decode and vet one delivery, then run, hold or set it aside."""
        try:
            message = parse_task_envelope(delivery.envelope, self.accept)
        except (DecodeError, ContentDisallowed) as exc:
            await self._refuse(delivery, exc)
            return
        try:
            task = self.app.tasks[message.task]
        except NotRegistered as exc:
            request = Request(message, delivery, None)
            logger.error("Received unregistered task of type %r [%s]: %s; the message is "
                         "set aside in the dead-letter store", message.task, message.id, exc)
            await self.completion.store(request, states.FAILURE, exception_to_wire(exc),
                                        f"NotRegistered: {exc}")
            await self._safe_reject(delivery, requeue=False,
                                    reason=f"unregistered task {message.task!r}")
            return
        request = Request(message, delivery, task)
        if logger.isEnabledFor(logging.INFO):
            logger.info("Received task: %s[%s]", request.display_name, request.id)
        if self.worker.state.is_revoked(request.id):
            await self._revoked(request, expired=False)
            return
        if request.expired():
            await self._revoked(request, expired=True)
            return
        eta = request.eta_timestamp()
        if eta is not None and eta > time.time() + 0.005:
            if not self.transport.supports_delayed:  # else received when it comes back due
                self.worker.events.task_received(request)
            await self._hold(request, eta)
            return
        self.worker.events.task_received(request)
        self._start(request)

    async def _refuse(self, delivery: Delivery, exc: Exception) -> None:
        env = delivery.envelope
        task_id = env.headers.get("id") if isinstance(env.headers, dict) else None
        task_id = task_id or env.correlation_id
        logger.error("Refused message from queue %r (id %s): %s; it is set aside in the "
                     "dead-letter store", delivery.queue, task_id or "unknown", exc)
        backend = self.completion.backend
        if task_id and backend is not None:
            await backend.store(ResultMeta(str(task_id), states.FAILURE, exception_to_wire(exc),
                                           f"{type(exc).__name__}: {exc}", [], now_iso(),
                                           reply_to=env.reply_to))
        await self._safe_reject(delivery, requeue=False, reason=str(exc))

    async def _revoked(self, request: Request, *, expired: bool) -> None:
        reason = "expired" if expired else "revoked"
        logger.info("Discarding %s task: %s[%s]", reason, request.display_name, request.id)
        await self.completion.store(request, states.REVOKED,
                                    exception_to_wire(TaskRevokedError(reason)), None, None)
        self.worker.events.task_revoked(request, expired=expired)
        send_revoked(request, terminated=False, signum=None, expired=expired)
        self._queue_ack(request.delivery)

    async def _hold(self, request: Request, eta: float) -> None:
        if self.transport.supports_delayed:
            await self.transport.defer(request.delivery, eta)
            return
        loop = asyncio.get_running_loop()
        delay = max(0.0, eta - time.time())

        def due() -> None:
            self.held.pop(request.id, None)
            if not self._stopping:
                self._start(request)

        self.held[request.id] = (request, loop.call_later(delay, due))

    # -- running ------------------------------------------------------------------------
    def _start(self, request: Request) -> None:
        self.inflight[request.message.id] = request
        pool = self.pool
        if pool.inline(request.task):
            if self._runs_now(request):
                self._run_inline(request)
                return
        elif pool.submits and self._runs_now(request):
            self._submit(request)
            return
        # No done callback (a loop turn per task): _execute leaves the set itself.
        runner = self._loop.create_task(self._execute(request))
        request.runner = runner
        self._tasks.add(runner)

    def _acks_late(self, request: Request) -> bool:
        value = getattr(request.task, "acks_late", None)
        return self.acks_late_default if value is None else bool(value)

    def _runs_now(self, request: Request) -> bool:
        """Whether ``request`` can start right here, with no asyncio task of its own.

        True for a job that has nothing to wait for before it runs: no
        rate-limit wait (a free token is taken here), no STARTED state to
        write, no ack on receipt, not revoked or expired by now. The pool then
        runs it inline (solo, sync task) or takes it with :meth:`Pool.submit`
        (prefork).
        """
        task = request.task
        worker = self.worker
        if worker.track_started or getattr(task, "track_started", False):
            return False
        if not self._acks_late(request):
            return False  # its ack must reach the broker before it runs
        if self._state.revoked and self._state.is_revoked(request.id):
            return False
        if request.message.expires is not None and request.expired():
            return False
        return worker.rate_limits.try_acquire(request.message.task,
                                              getattr(task, "rate_limit", None))

    def _run_inline(self, request: Request) -> None:
        """Run ``request`` now (see :meth:`_runs_now`); the result write and the
        ack follow in a task only when the outcome needs I/O beyond the ack."""
        try:
            out = self.pool.run_inline(request.task, self._start_job(request))
            if self._finished_soon(request, out):  # _runs_now: acks_late
                return
        except Exception:
            _log_internal_error(request)
            self._spawn(self._after_inline(request, None, True))
            return
        self._spawn(self._after_inline(request, out, True))

    def _start_job(self, request: Request) -> Job:
        """Mark ``request`` started (event, clock) and make the pool's job of it."""
        worker = self.worker
        self._events.task_started(request)
        request.started = time.monotonic()
        return request.to_job(worker.hostname, worker.time_limit, worker.soft_time_limit)

    def _finished_soon(self, request: Request, out: Outcome) -> bool:
        """Settle an acks-late outcome without a task where it can: ``True`` when
        nothing is left to do, or what is left was handed over (:meth:`_store_soon`)."""
        if self._settled(request, out, True):
            self._done(request)
            return True
        return self._store_soon(request, out)

    async def _after_inline(self, request: Request, out: Outcome | None, acks_late: bool) -> None:
        """The I/O after an inline run (``out`` is ``None`` when the run itself broke)."""
        try:
            if out is None:
                await self._give_back(request)
            else:
                await self._after_run(request, out, acks_late)
        except Exception:
            _log_internal_error(request)
            await self._give_back(request)
        finally:
            self._done(request)

    def _submit(self, request: Request) -> None:
        """Hand ``request`` to the pool (see :meth:`_runs_now`); :meth:`_submitted`
        gets its outcome, and the I/O after it runs in a task only when needed."""
        self._callbacks_due += 1
        try:
            self.pool.submit(self._start_job(request), partial(self._submitted, request))
        except Exception:
            _log_internal_error(request)
            self._submitted(request, None)

    def _submitted(self, request: Request, out: Outcome | None) -> None:
        """The pool's report on a submitted job (``None``: it could not be submitted)."""
        try:
            if out is not None:
                try:
                    if self._finished_soon(request, out):
                        return
                except Exception:
                    _log_internal_error(request)
                    out = None
            self._spawn(self._after_inline(request, out, True))
        finally:
            self._callback_came()

    def _callback_came(self) -> None:
        self._callbacks_due -= 1
        if not self._callbacks_due:
            self._callbacks_done.set()

    def _store_soon(self, request: Request, out: Outcome) -> bool:
        """Finish a success whose only I/O is its result write (the common outcome
        with a result backend) without a task: the write joins the batch of this
        loop turn, and :meth:`_stored` counts and acks it from the writer's task
        (acks_late only; the ack follows the write, see ``StoreBatcher``).
        ``False`` (having done nothing) when the outcome needs :meth:`_after_run`."""
        if out.status != states.SUCCESS or out.requeue:
            return False
        done = partial(self._stored, request, out)
        self._callbacks_due += 1
        try:
            queued = self.completion.store_success_then(request, out, done)
        except BaseException:
            self._callback_came()
            raise
        if not queued:
            self._callback_came()
            return False
        self.worker.log_outcome(request, out)
        return True

    def _stored(self, request: Request, out: Outcome, exc: BaseException | None) -> None:
        """The write queued by :meth:`_store_soon` is done (``exc`` is ``None``) or failed.

        Called in the writer's task, which flushes the acks queued here as soon
        as its batch's callbacks have run."""
        try:
            if exc is None:
                self._count(request, out)
                self._pending_acks.append(request.delivery)
                self._done(request)
            else:
                self._spawn(self._after_failed_store(request, out, exc))
        finally:
            self._callback_came()

    async def _after_failed_store(self, request: Request, out: Outcome,
                                  exc: BaseException) -> None:
        """What :meth:`_after_run` does when the result write fails."""
        try:
            if not isinstance(exc, EncodeError):
                raise exc
            out = await self._store_unencodable(request, out, exc)
            await self._finished(request, out, True)
        except Exception:
            _log_internal_error(request)
            await self._give_back(request)
        finally:
            self._done(request)

    async def _give_back(self, request: Request) -> None:
        await self._safe_reject(request.delivery, requeue=True, reason="internal error")

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        runner = self._loop.create_task(coro)
        self._tasks.add(runner)
        runner.add_done_callback(self._tasks.discard)

    def _done(self, request: Request) -> None:
        self.inflight.pop(request.message.id, None)
        self._slot.set()

    async def _execute(self, request: Request) -> None:
        worker = self.worker
        acks_late = self._acks_late(request)
        try:
            task_rate = getattr(request.task, "rate_limit", None)
            if not worker.rate_limits.try_acquire(request.name, task_rate):
                await worker.rate_limits.acquire(request.name, task_rate)
            # An ETA hold or a rate-limit wait may have outlived the expiry, or a
            # revoke may have arrived meanwhile: check again just before running.
            revoked = bool(worker.state.revoked) and worker.state.is_revoked(request.id)
            if revoked or (request.message.expires is not None and request.expired()):
                await self._revoked(request, expired=not revoked)
                return
            if not acks_late and not await self._ack_on_receipt(request):
                return
            worker.events.task_started(request)
            if worker.track_started or getattr(request.task, "track_started", False):
                await self.completion.store(request, states.STARTED, {"pid": worker.pid,
                                                                     "hostname": worker.hostname})
            request.started = time.monotonic()
            job = request.to_job(worker.hostname, worker.time_limit, worker.soft_time_limit)
            out = await self.pool.run(job)
            if not self._settled(request, out, acks_late):
                await self._after_run(request, out, acks_late)
        except Exception:
            _log_internal_error(request)
            await self._give_back(request)
        finally:
            self._tasks.discard(request.runner)
            self._done(request)

    def _settled(self, request: Request, out: Outcome, acks_late: bool) -> bool:
        """Finish the common outcome at once: a success with nothing to write or send.

        Returns ``False`` (having done nothing) when the outcome needs
        :meth:`_after_run`: a result to store, follow-up tasks, a failure,
        a retry, a rejection or a revoke.
        """
        if not self.completion.is_trivial(request, out):
            return False
        self.worker.log_outcome(request, out)
        self._count(request, out)
        if acks_late:
            self._queue_ack(request.delivery)
        return True

    def _count(self, request: Request, out: Outcome) -> None:
        """A finished task's event and counters."""
        self._events.task_outcome(request, out)
        self.processed += 1
        self._state.processed(request.message.task)

    async def _after_run(self, request: Request, out: Outcome, acks_late: bool) -> None:
        """Everything after the pool returned: store, follow-ups, events, ack or reject."""
        worker = self.worker
        if out.status != states.REVOKED and worker.state.is_revoked(request.id) and \
                exc_type(out) == "TaskRevokedError":
            out.status = states.REVOKED  # stopped by revoke(terminate=True)
        if out.status == states.REVOKED:
            send_revoked(request, terminated=True, signum=None, expired=False)
        worker.log_outcome(request, out)
        if out.requeue and out.status != states.REJECTED:
            # Cold shutdown or a lost child with reject_on_worker_lost: run it again.
            if acks_late:
                await self._safe_reject(request.delivery, requeue=True, reason="requeued")
            return
        if out.status == states.FAILURE and is_worker_lost(out) and acks_late and \
                reject_on_worker_lost(self.app, request):
            await self._safe_reject(request.delivery, requeue=True, reason="worker lost")
            return
        try:
            await self.completion.finish(request, out)
        except EncodeError as exc:
            out = await self._store_unencodable(request, out, exc)
        await self._finished(request, out, acks_late)

    async def _store_unencodable(self, request: Request, out: Outcome,
                                 exc: EncodeError) -> Outcome:
        """The value cannot be stored with the result serializer: a FAILURE, not an
        internal error (which would redeliver it forever)."""
        logger.error("Task %s[%s] returned a value that cannot be stored: %s",
                     request.display_name, request.id, exc)
        out = failed_outcome(exc, out.runtime)
        await self.completion.finish(request, out)
        return out

    async def _finished(self, request: Request, out: Outcome, acks_late: bool) -> None:
        """After the outcome is stored: event, counters, then ack or reject."""
        self._count(request, out)
        if out.status == states.REJECTED:
            if acks_late:
                await self._safe_reject(request.delivery, requeue=out.requeue,
                                        reason=out.reason)
            return
        if acks_late:
            if out.status == states.FAILURE and not ack_on_failure(self.app, request) \
                    and not is_worker_lost(out):
                # As Celery: rejected without requeue (re-running a failing task
                # forever helps nobody); it is set aside in the dead-letter store.
                await self._safe_reject(request.delivery, requeue=False, reason=(
                    f"task failed ({exc_type(out)}) and task_acks_on_failure_or_timeout "
                    "is off"))
            else:
                self._queue_ack(request.delivery)

    def active(self) -> Sequence[Request]:
        """Requests running now."""
        return list(self.inflight.values())

    def scheduled(self) -> Sequence[Request]:
        """ETA requests held in memory."""
        return [r for r, _ in self.held.values()]
