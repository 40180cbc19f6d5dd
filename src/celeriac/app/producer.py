"""Sending tasks: options -> :class:`TaskMessage` -> envelope -> transport.

Message building is shared, pure code (:meth:`Producer.build`); only the last
step differs between the sync path (``delay``: the transport's sync client,
called directly) and the async path (``adelay``: the transport's async client).
No thread hop on either (DESIGN.md section 2.3).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import operator
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from celeriac import signals
from celeriac.app.context import current_request
from celeriac.app.queues import queue_spec
from celeriac.app.sent_events import SentEvents
from celeriac.errors import OperationalError
from celeriac.protocol.batch import EnvelopeBatch
from celeriac.protocol.envelope import Envelope
from celeriac.protocol.message import (
    TaskCallTemplate,
    TaskMessage,
    build_task_batch,
    build_task_envelope,
    new_task_id,
    task_message,
)
from celeriac.protocol.priority import to_redis
from celeriac.transports.base import Transport
from celeriac.transports.registry import transport_class

if TYPE_CHECKING:
    from celeriac.app.core import App
    from celeriac.app.routing import Route

__all__ = ["OutgoingBatch", "OutgoingTask", "PlainSend", "Producer", "paired_calls"]

logger = logging.getLogger("celeriac.app.producer")


@dataclass(frozen=True, slots=True)
class OutgoingTask:
    """A built message, ready for a transport."""

    message: TaskMessage
    envelope: Envelope
    eta: float | None
    route: Route


@dataclass(frozen=True, slots=True)
class OutgoingBatch:
    """Built messages of a bulk send: calls of one task with the same options.

    ``task`` is the first call's message (its name, options and, for logs, its
    shape); ``envelopes`` holds every call's id and body (see
    :class:`~celeriac.protocol.batch.EnvelopeBatch`).
    """

    task: OutgoingTask
    envelopes: EnvelopeBatch

    @property
    def ids(self) -> list[str]:
        """The task ids, in call order."""
        return self.envelopes.ids


# The task attributes a message of the task depends on (PlainSend.attrs).
_TASK_ATTRS = operator.attrgetter(
    "queue", "priority", "expires", "ignore_result", "time_limit", "soft_time_limit",
    "shadow_name", "serializer", "compression",
)


@dataclass(frozen=True, slots=True)
class PlainSend:
    """How calls of one task with no options are sent (:meth:`Producer.plain`).

    Everything but the id and the arguments is fixed per task and settings:
    the route, the message's headers (the :class:`TaskCallTemplate`) and the
    publish retry policy. Valid while the settings snapshot, the task object,
    its attributes and the app's identity (origin, reply queue) are the ones
    it was made from; ``template`` is ``None`` when such calls take the
    general path (``task_send_sent_event``, a task with ``expires``, a router
    function).
    """

    settings: Any
    task: Any
    attrs: tuple[Any, ...]
    origin: str
    oid: str
    template: TaskCallTemplate | None
    queue: str
    ignore_result: bool
    retry: bool
    policy: Mapping[str, Any]


def _as_dicts(value: Any) -> list[dict[str, Any]] | None:
    if value is None:
        return None
    items = value if isinstance(value, list | tuple) else [value]
    out: list[dict[str, Any]] = []
    for item in items:
        if hasattr(item, "as_dict"):
            out.append(item.as_dict())
        elif isinstance(item, Mapping):
            out.append(dict(item))
        else:
            raise TypeError(f"link/link_error takes signatures, got {type(item).__name__}")
    return out or None


def _absolute(value: Any, now: datetime) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, timedelta):
        return now + value
    return now + timedelta(seconds=float(value))


def paired_calls(
    args_list: Iterable[Sequence[Any]], kwargs_list: Iterable[Mapping[str, Any]] | None
) -> Iterator[tuple[tuple[Any, ...], dict[str, Any]]]:
    """``(args, kwargs)`` per call of a bulk send; ``kwargs_list`` pairs item by item."""
    if kwargs_list is None:
        for args in args_list:
            yield tuple(args), {}
    else:
        for args, kwargs in zip(args_list, kwargs_list, strict=True):
            yield tuple(args), dict(kwargs)


class Producer:
    """Builds and sends task messages for one app."""

    def __init__(self, app: App) -> None:
        self.app = app
        self._declared: set[str] = set()
        self._order_url: str | None = None
        self._order_low_first = False
        self._sent_events: SentEvents | None = None
        self._plain: dict[str, PlainSend] = {}
        self._native_batches: dict[type[Transport], bool] = {}

    # -- calls without options ---------------------------------------------------
    def plain(self, name: str, task: Any) -> PlainSend | None:
        """How to send a call of ``name`` with no options, or ``None`` when it must
        be built in full by :meth:`build` (publish signal receivers connected, a
        call made inside a running task, or a task whose calls need it).

        Plain sends make the same messages as :meth:`build` (the
        :class:`TaskCallTemplate` of one built message), with the work that is
        the same for every call done once.
        """
        if signals.before_task_publish.connected or signals.after_task_publish.connected:
            return None
        parent = current_request()
        if parent.id is not None and not parent.called_directly:
            return None  # the parent's ids go in the message
        app = self.app
        settings = app.conf.settings
        try:
            attrs = () if task is None else _TASK_ATTRS(task)
        except AttributeError:
            return None  # not a Task: build() reads what it has
        plan = self._plain.get(name)
        if (plan is None or plan.settings is not settings or plan.task is not task
                or plan.origin is not app.origin or plan.oid is not app.oid
                or plan.attrs != attrs):
            plan = self._plain[name] = self._new_plain(name, task, settings, attrs)
        return plan if plan.template is not None else None

    def _new_plain(self, name: str, task: Any, settings: Any,
                   attrs: tuple[Any, ...]) -> PlainSend:
        out = self.build(name, (), {}, {}, task)
        retry, policy = self._policy({})
        template = None
        if not (settings.task_send_sent_event or getattr(task, "expires", None) is not None
                or not self.app.router.same_route_for_every_call({})):
            serializer, compression = self._codec({}, task)
            template = TaskCallTemplate(out.message, queue=out.route.routing_key,
                                        exchange=out.route.exchange, serializer=serializer,
                                        compression=compression)
        return PlainSend(settings, task, attrs, self.app.origin, self.app.oid, template,
                         out.route.queue, out.message.ignore_result, retry, policy)

    def send_plain_sync(self, plan: PlainSend, task_id: str, args: tuple[Any, ...],
                        kwargs: dict[str, Any]) -> None:
        """Publish one call planned by :meth:`plain`, retrying per the retry policy.

        A transport that publishes batches natively (Redis: kombu's element from
        a template) takes it as a one-message batch; any other gets the envelope,
        as :meth:`send_sync` gives it.
        """
        template = plan.template
        assert template is not None
        batch = template.batch(task_id, args, kwargs)
        transport = self.app.transport
        if plan.queue not in self._declared:
            transport.declare_sync([self._spec(plan.queue)])
            self._declared.add(plan.queue)
        native = self._native_batches.get(type(transport))
        if native is None:
            native = self._native_batches[type(transport)] = (
                type(transport).publish_batch_sync is not Transport.publish_batch_sync)
        attempt = 0
        while True:
            try:
                if native:
                    transport.publish_batch_sync(batch)
                else:
                    transport.publish_sync(batch.envelope(0))
                return
            except OperationalError as exc:
                attempt += 1
                time.sleep(self._retry_delay(plan.retry, plan.policy, attempt, exc, [task_id]))

    def build(
        self,
        name: str,
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
        options: Mapping[str, Any],
        task: Any = None,
        *,
        now: datetime | None = None,
    ) -> OutgoingTask:
        """Turn a call and its options into a message, an envelope and a route.

        ``now`` is the clock reading ``countdown``/``eta``/``expires`` are taken
        from (default: the current time, read only when one of them is set).
        """
        settings = self.app.conf.settings
        route = self.app.router.route(name, args, kwargs, options, task)
        task_id = options.get("task_id") or new_task_id()
        countdown = options.get("countdown")
        eta_opt = options.get("eta")
        expires_opt = options.get("expires", getattr(task, "expires", None))
        if now is None and (countdown or eta_opt or expires_opt):
            now = datetime.now(UTC)
        eta = expires = None
        if now is not None:
            eta = _absolute(eta_opt, now) if eta_opt is not None else (
                _absolute(countdown, now) if countdown else None
            )
            expires = _absolute(expires_opt, now)
        parent = current_request()
        parent_id = options.get("parent_id")
        root_id = options.get("root_id")
        if parent_id is None and parent.id is not None and not parent.called_directly:
            parent_id = parent.id
            root_id = root_id or parent.root_id
        ignore_result = options.get("ignore_result")
        if ignore_result is None:
            ignore_result = getattr(task, "ignore_result", None)
        if ignore_result is None:
            ignore_result = settings.task_ignore_result
        time_limit = options.get("time_limit", getattr(task, "time_limit", None))
        soft_limit = options.get("soft_time_limit", getattr(task, "soft_time_limit", None))
        priority = route.priority
        if priority is None:
            priority = settings.task_default_priority
        if priority is not None and self._low_first():
            priority = to_redis(priority)
        headers = options.get("headers") or {}
        message = task_message(
            task=name,
            id=task_id,
            args=tuple(args),
            kwargs=dict(kwargs),
            callbacks=_as_dicts(options.get("link")),
            errbacks=_as_dicts(options.get("link_error")),
            chain=options.get("chain"),
            chord=options.get("chord"),
            eta=eta,
            expires=expires,
            retries=int(options.get("retries", 0)),
            group=options.get("group_id"),
            group_index=options.get("group_index"),
            root_id=root_id or task_id,
            parent_id=parent_id,
            shadow=options.get("shadow") or getattr(task, "shadow_name", None),
            timelimit=(time_limit, soft_limit),
            ignore_result=bool(ignore_result),
            origin=self.app.origin,
            extra_headers=dict(headers),
            priority=priority,
            reply_to=options.get("reply_to") or self.app.oid,
        )
        serializer, compression = self._codec(options, task)
        envelope = build_task_envelope(
            message, queue=route.routing_key, exchange=route.exchange,
            serializer=serializer, compression=compression, now=now,
        )
        eta_ts = eta.timestamp() if eta is not None else None
        return OutgoingTask(message, envelope, eta_ts, route)

    def _codec(self, options: Mapping[str, Any], task: Any) -> tuple[str, str | None]:
        settings = self.app.conf.settings
        serializer = (
            options.get("serializer") or getattr(task, "serializer", None)
            or settings.task_serializer
        )
        compression = (
            options.get("compression") or getattr(task, "compression", None)
            or settings.task_compression
        )
        return serializer, compression

    def build_batches(
        self,
        name: str,
        args_list: Iterable[Sequence[Any]],
        kwargs_list: Iterable[Mapping[str, Any]] | None,
        options: Mapping[str, Any],
        task: Any = None,
        size: int = 1000,
        *,
        now: datetime | None = None,
    ) -> Iterator[list[OutgoingTask] | OutgoingBatch]:
        """Build a bulk send in chunks of at most ``size`` calls.

        A chunk is an :class:`OutgoingBatch` (headers and properties built once,
        per call only id, args and body) when every call must get the same
        route and headers: no router function that could route calls apart, no
        publish signal receiver that could edit each message's headers, no
        ``task-sent`` events to send per message.
        Otherwise it is a list of individually built messages
        (:meth:`build_chunks`). Either way the messages are the same.
        """
        if "task_id" in options:
            raise TypeError("a bulk send gives each call its own id; task_id is not allowed")
        if now is None:
            now = datetime.now(UTC)
        if _publish_signals_connected() or self.app.conf.settings.task_send_sent_event or \
                not self.app.router.same_route_for_every_call(options):
            yield from self.build_chunks(name, args_list, kwargs_list, options, task, size,
                                         now=now)
            return
        serializer, compression = self._codec(options, task)
        calls = paired_calls(args_list, kwargs_list)
        while True:
            chunk = list(itertools.islice(calls, size))
            if not chunk:
                return
            first = self.build(name, chunk[0][0], chunk[0][1], options, task, now=now)
            batch = build_task_batch(
                first.message, chunk, queue=first.route.routing_key,
                exchange=first.route.exchange, serializer=serializer,
                compression=compression, now=now,
            )
            yield OutgoingBatch(first, batch)

    def build_chunks(
        self,
        name: str,
        args_list: Iterable[Sequence[Any]],
        kwargs_list: Iterable[Mapping[str, Any]] | None,
        options: Mapping[str, Any],
        task: Any = None,
        size: int = 1000,
        *,
        now: datetime | None = None,
    ) -> Iterator[list[OutgoingTask]]:
        """Build one message per call, yielded in lists of at most ``size`` (bulk sends)."""
        if "task_id" in options:
            raise TypeError("a bulk send gives each call its own id; task_id is not allowed")
        chunk: list[OutgoingTask] = []
        for args, kwargs in paired_calls(args_list, kwargs_list):
            chunk.append(self.build(name, args, kwargs, options, task, now=now))
            if len(chunk) >= size:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    # -- sync path -------------------------------------------------------------
    def send_sync(self, out: OutgoingTask, options: Mapping[str, Any]) -> None:
        """Publish over the transport's sync client, retrying per the retry policy."""
        self.send_many_sync((out,), options)

    def send_many_sync(self, outs: Sequence[OutgoingTask], options: Mapping[str, Any]) -> None:
        """Publish built messages together: one transport batch (one round trip on Redis)."""
        if not outs:
            return
        transport = self.app.transport
        missing = self._undeclared(outs)
        if missing:
            transport.declare_sync([self._spec(q) for q in missing])
            self._declared.update(missing)
        notify = _publish_signals_connected()
        if notify:
            for out in outs:
                self._before_publish(out)
        retry, policy = self._policy(options)
        attempt = 0
        while True:
            try:
                if len(outs) == 1:
                    transport.publish_sync(outs[0].envelope, eta=outs[0].eta)
                else:
                    transport.publish_many_sync([(o.envelope, o.eta) for o in outs])
                break
            except OperationalError as exc:
                attempt += 1
                time.sleep(self._retry_delay(retry, policy, attempt, exc,
                                             [o.message.id for o in outs]))
        if notify:
            for out in outs:
                self._after_publish(out)
        if self.app.conf.settings.task_send_sent_event:
            self._sent().send_sync(transport, outs)

    def send_batch_sync(self, batch: OutgoingBatch, options: Mapping[str, Any]) -> None:
        """Publish a bulk send's batch (one round trip on Redis), retrying per policy."""
        transport = self.app.transport
        queue = batch.task.route.queue
        if queue not in self._declared:
            transport.declare_sync([self._spec(queue)])
            self._declared.add(queue)
        retry, policy = self._policy(options)
        attempt = 0
        while True:
            try:
                transport.publish_batch_sync(batch.envelopes, eta=batch.task.eta)
                return
            except OperationalError as exc:
                attempt += 1
                time.sleep(self._retry_delay(retry, policy, attempt, exc, batch.ids))

    async def send_batch_async(self, batch: OutgoingBatch, options: Mapping[str, Any]) -> None:
        """Async :meth:`send_batch_sync`."""
        transport = await self.app.atransport()
        queue = batch.task.route.queue
        if queue not in self._declared:
            await transport.declare([self._spec(queue)])
            self._declared.add(queue)
        retry, policy = self._policy(options)
        attempt = 0
        while True:
            try:
                await transport.publish_batch(batch.envelopes, eta=batch.task.eta)
                return
            except OperationalError as exc:
                attempt += 1
                await asyncio.sleep(self._retry_delay(retry, policy, attempt, exc, batch.ids))

    # -- async path -------------------------------------------------------------
    async def send_async(self, out: OutgoingTask, options: Mapping[str, Any]) -> None:
        """Publish over the transport's async client, retrying per the retry policy."""
        await self.send_many_async((out,), options)

    async def send_many_async(
        self, outs: Sequence[OutgoingTask], options: Mapping[str, Any]
    ) -> None:
        """Async :meth:`send_many_sync`."""
        if not outs:
            return
        transport = await self.app.atransport()
        missing = self._undeclared(outs)
        if missing:
            await transport.declare([self._spec(q) for q in missing])
            self._declared.update(missing)
        notify = _publish_signals_connected()
        if notify:
            for out in outs:
                self._before_publish(out)
        retry, policy = self._policy(options)
        attempt = 0
        while True:
            try:
                if len(outs) == 1:
                    await transport.publish(outs[0].envelope, eta=outs[0].eta)
                else:
                    await transport.publish_many([(o.envelope, o.eta) for o in outs])
                break
            except OperationalError as exc:
                attempt += 1
                await asyncio.sleep(self._retry_delay(retry, policy, attempt, exc,
                                                      [o.message.id for o in outs]))
        if notify:
            for out in outs:
                self._after_publish(out)
        if self.app.conf.settings.task_send_sent_event:
            await self._sent().send_async(transport, outs)

    # -- helpers ----------------------------------------------------------------
    def _sent(self) -> SentEvents:
        """The ``task-sent`` publisher (made on first use)."""
        if self._sent_events is None:
            self._sent_events = SentEvents(self.app.origin,
                                           self.app.conf.settings.event_serializer,
                                           self.app.clock)
        return self._sent_events

    def _undeclared(self, outs: Sequence[OutgoingTask]) -> list[str]:
        if len(outs) == 1:
            queue = outs[0].route.queue
            return [] if queue in self._declared else [queue]
        return sorted({o.route.queue for o in outs} - self._declared)

    def _retry_delay(self, retry: bool, policy: Mapping[str, Any], attempt: int,
                     exc: OperationalError, ids: Sequence[str]) -> float:
        """Seconds to wait before publish attempt ``attempt + 1``; re-raise when exhausted."""
        if not retry or attempt > int(policy.get("max_retries", 3)):
            raise exc
        delay = self._interval(policy, attempt)
        logger.warning("publish of %d message(s) (first %s) failed (%s); retry %d in %.2fs",
                       len(ids), ids[0], exc, attempt, delay)
        return delay

    def _low_first(self) -> bool:
        url = self.app.conf.settings.effective_broker_url()
        if self._order_url != url:
            self._order_url = url
            self._order_low_first = transport_class(url).priority_low_first
        return self._order_low_first

    def _spec(self, queue: str) -> Any:
        settings = self.app.conf.settings
        declared = self.app.router.queues.get(queue)
        return queue_spec(declared if declared is not None else queue,
                          settings.task_queue_max_priority)

    def _policy(self, options: Mapping[str, Any]) -> tuple[bool, Mapping[str, Any]]:
        settings = self.app.conf.settings
        retry = options.get("retry", settings.task_publish_retry)
        policy = options.get("retry_policy") or settings.task_publish_retry_policy or {}
        return bool(retry), policy

    @staticmethod
    def _interval(policy: Mapping[str, Any], attempt: int) -> float:
        start = float(policy.get("interval_start", 0))
        step = float(policy.get("interval_step", 0.2))
        cap = float(policy.get("interval_max", 0.2))
        return min(cap, start + step * (attempt - 1))

    @staticmethod
    def _signal_body(out: OutgoingTask) -> tuple[Any, ...]:
        m = out.message
        return (list(m.args), dict(m.kwargs), {
            "callbacks": m.callbacks, "errbacks": m.errbacks, "chain": m.chain, "chord": m.chord,
        })

    def _before_publish(self, out: OutgoingTask) -> None:
        # ``headers`` is the message's own dict: receivers may add headers (tracing
        # context, as with Celery) and they travel with the message.
        signals.before_task_publish.send(
            sender=out.message.task, body=self._signal_body(out), exchange=out.route.exchange,
            routing_key=out.route.routing_key, headers=out.envelope.headers,
            properties={"correlation_id": out.message.id}, declare=[], retry_policy=None,
        )

    def _after_publish(self, out: OutgoingTask) -> None:
        signals.after_task_publish.send(
            sender=out.message.task, body=self._signal_body(out), exchange=out.route.exchange,
            routing_key=out.route.routing_key, headers=dict(out.envelope.headers),
        )


def _publish_signals_connected() -> bool:
    return signals.before_task_publish.connected or signals.after_task_publish.connected
