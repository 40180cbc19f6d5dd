"""The blocking AMQP face: py-amqp, one connection per thread, publisher confirms on.

Used by plain ``delay()`` and by the sync side of the ``rpc://`` backend. It is
a direct synchronous client (no hop to an event loop): py-amqp measured
faster than pika here with confirms on (docs/decisions-amqp.md). A
connection is opened lazily by the first call in a thread and dropped after
any connection error; the next call reconnects. Publishing retries a few
times on connection errors (Celery's default publish retry policy: three
retries, 0.2 s apart), so a broker restart between two ``delay()`` calls
costs a reconnect, not an error.

Confirms are tracked here rather than by py-amqp (which waits for one ack
after each publish): the publishing channel is put in confirm mode once and
every message stays in memory until the broker has confirmed it. Two modes:

* **each** (``confirm_window`` == 1, the default): every publish waits for its
  own confirm, so a ``delay()`` that returns has been stored by the broker.
* **pipelined** (``confirm_window`` > 1, opted into with the transport option
  ``confirm_window``): a publish returns once its frame is written; confirms that have arrived are
  read (without blocking) at the next publish, and a publish waits only when
  ``confirm_window`` messages are unconfirmed. Everything still unconfirmed
  is waited for by :meth:`SyncAMQP.flush`, which runs at the end of every
  task that published (``task_postrun``, before the worker acks that task),
  on :meth:`SyncAMQP.close_all` and at interpreter exit. A nack is logged and
  raised by the next publish or flush of that thread.

In both modes a batch (:meth:`SyncAMQP.publish_many`) writes every frame, then
waits once until nothing is unconfirmed: one round trip per batch. If the
connection breaks, every message not yet confirmed is published again on the
next connection (at-least-once; the broker may then hold a duplicate).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import select
import socket
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any, TypeVar

import amqp  # type: ignore[import-untyped]

from celeriac import signals
from celeriac.errors import BrokerUnreachable, OperationalError
from celeriac.protocol.amqp import to_amqp_properties
from celeriac.protocol.amqp_frames import encode_properties, publish_frames
from celeriac.protocol.envelope import Envelope
from celeriac.transports._amqp_common import (
    AMQPParams,
    DeclareExchange,
    DeclareQueue,
    Plan,
    connect_error,
    lost_error,
)

__all__ = ["DEFAULT_CONFIRM_WINDOW", "SyncAMQP", "open_channel", "outgoing", "properties_of"]

logger = logging.getLogger("celeriac.transports.amqp")

T = TypeVar("T")

#: Exceptions after which the connection is unusable and is opened again.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    amqp.exceptions.ConnectionError,
    amqp.exceptions.RecoverableConnectionError,
    OSError,
    socket.timeout,
    AttributeError,  # py-amqp raises it when used after the socket went away
)
#: Exceptions that close only the channel (the connection stays usable).
CHANNEL_ERRORS: tuple[type[BaseException], ...] = (amqp.exceptions.ChannelError,)

_RETRY_DELAYS = (0.0, 0.2, 0.2)
#: Unconfirmed messages a publisher lets through before it waits: 1 means each
#: ``delay()`` waits for its own confirm (the default; docs/decisions-amqp.md).
DEFAULT_CONFIRM_WINDOW = 1
#: poll() reads arrived confirms when this many are pending or this long after its last look.
_POLL_PENDING = 16
_POLL_INTERVAL = 0.005
#: Longest the exit hook waits for outstanding confirms.
_EXIT_WAIT = 5.0

#: A message as it is (re)published: (encoded properties, body, exchange, routing key).
Outgoing = tuple[bytes, bytes, str, str]


class _Confirms:
    """Messages on one confirm-mode channel that the broker has not settled yet."""

    def __init__(self, channel: Any) -> None:
        channel.confirm_select()
        self.channel = channel
        self.sent = 0  # the last delivery tag used (tags count from 1 per channel)
        self.pending: dict[int, Outgoing] = {}  # in tag order (insertion order)
        self.nacked: list[Outgoing] = []
        self.polled = 0.0
        channel.events["basic_ack"].add(self._on_ack)
        channel.events["basic_nack"].add(self._on_nack)

    def _settle(self, tag: int, multiple: bool) -> list[Outgoing]:
        if not multiple:
            item = self.pending.pop(tag, None)
            return [] if item is None else [item]
        done: list[int] = []
        for t in self.pending:
            if t > tag:
                break
            done.append(t)
        return [self.pending.pop(t) for t in done]

    def _on_ack(self, tag: int, multiple: bool) -> None:
        self._settle(tag, multiple)

    def _on_nack(self, tag: int, multiple: bool) -> None:
        self.nacked += self._settle(tag, multiple)

    def publish(self, item: Outgoing) -> None:
        """Write one ``basic.publish`` (no wait); it stays pending until confirmed."""
        properties, body, exchange, routing_key = item
        conn = self.channel.connection
        conn.transport.write(publish_frames(self.channel.channel_id, exchange, routing_key,
                                            properties, body, conn.frame_max))
        self.sent += 1
        self.pending[self.sent] = item

    def poll(self) -> None:
        """Read the confirms that have already arrived, without waiting for more.

        Skipped while few are pending and the last look was recent: RabbitMQ
        confirms a run of messages with one ``multiple`` ack, so reading less
        often reads fewer frames.
        """
        now = time.monotonic()
        if len(self.pending) < _POLL_PENDING and now - self.polled < _POLL_INTERVAL:
            return
        self.polled = now
        conn = self.channel.connection
        sock = conn.sock
        # Everything that arrived, not only acks: a Connection.Close read here makes
        # this publish go to a new connection instead of one the broker ignores.
        while select.select((sock,), (), (), 0)[0]:
            conn.drain_events(timeout=5.0)  # a frame has started arriving

    def wait(self, timeout: float, below: int = 1) -> None:
        """Read frames until fewer than ``below`` are pending (``TimeoutError`` at ``timeout``)."""
        conn = self.channel.connection
        deadline = time.monotonic() + timeout
        while len(self.pending) >= below:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no publisher confirm within the confirm timeout")
            conn.drain_events(timeout=remaining)


def _declare_exchange(ex: DeclareExchange, channel: Any) -> None:
    channel.exchange_declare(ex.name, ex.type, durable=ex.durable, auto_delete=ex.auto_delete)


def _declare_queue(q: DeclareQueue, channel: Any) -> None:
    channel.queue_declare(q.name, durable=q.durable, exclusive=q.exclusive,
                          auto_delete=q.auto_delete, arguments=q.arguments or None)


def open_channel(conn: Any) -> Any:
    """A new channel on ``conn`` that hands message bodies over as raw bytes."""
    channel = amqp.Channel(conn, auto_decode=False)
    channel.open()
    return channel


def outgoing(envelope: Envelope) -> Outgoing:
    """``envelope`` encoded once for (re)publishing, with Celery's properties.

    The frames are written by :func:`~celeriac.protocol.amqp_frames.publish_frames`,
    byte for byte what py-amqp would write, without its generic serialiser.
    """
    return (encode_properties(to_amqp_properties(envelope)), envelope.body,
            envelope.exchange, envelope.routing_key)


def properties_of(message: Any) -> dict[str, Any]:
    """The basic properties of a received py-amqp message, with the AMQP names."""
    props: Mapping[str, Any] = message.properties
    out = dict(props)
    if "application_headers" in out:
        out["headers"] = out.pop("application_headers")
    return out


_LIVE: weakref.WeakSet[SyncAMQP] = weakref.WeakSet()


def _flush_at_exit() -> None:
    for sync in list(_LIVE):
        sync.flush_all(_EXIT_WAIT)


atexit.register(_flush_at_exit)


class SyncAMQP:
    """Blocking AMQP operations on a per-thread connection (see the module docstring)."""

    def __init__(self, params: AMQPParams, *, connect_timeout: float = 5.0,
                 confirm_timeout: float = 30.0, retry: bool = True,
                 confirm_window: int = 1) -> None:
        self.params = params
        self.connect_timeout = connect_timeout
        self.confirm_timeout = confirm_timeout
        self.retry = retry
        #: Unconfirmed messages a publish lets through before it waits (1: wait each time).
        self.confirm_window = max(1, int(confirm_window))
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: set[Any] = set()
        #: Every confirm-mode channel with what it has not had confirmed, per connection.
        self._confirm_sets: dict[Any, _Confirms] = {}
        #: Unconfirmed messages of connections that broke: any thread publishes them again.
        self._orphans: list[Outgoing] = []
        self._pid = os.getpid()
        self._hooked = False

    # -- connections -------------------------------------------------------------
    def new_connection(self) -> Any:
        """Open a fresh py-amqp connection; raise ``BrokerUnreachable`` with one line."""
        p = self.params
        tls = p.py_amqp_ssl()  # broker_use_ssl; a bad file raises ConfigurationError here
        conn = amqp.Connection(
            host=f"{p.host}:{p.port}", userid=p.user, password=p.password,
            virtual_host=p.vhost, ssl=tls, connect_timeout=self.connect_timeout,
            # Confirms are tracked by _Confirms (batches wait once), not by py-amqp.
            confirm_publish=False, heartbeat=0,
        )
        try:
            conn.connect()
        except Exception as exc:
            with contextlib.suppress(Exception):
                conn.collect()
            raise connect_error(p, exc) from None
        with self._lock:
            self._open.add(conn)
        return conn

    def detach(self, conn: Any) -> None:
        """Stop tracking ``conn`` (its owner closes it; :meth:`close_all` leaves it alone)."""
        with self._lock:
            self._open.discard(conn)

    def forget_connection(self, conn: Any) -> None:
        """Close ``conn`` quietly (it may be broken already)."""
        with self._lock:
            self._open.discard(conn)
            confirms = self._confirm_sets.pop(conn, None)
            if confirms is not None and confirms.pending:
                # Not confirmed: the broker may not have them. Published again later.
                self._orphans += confirms.pending.values()
                confirms.pending.clear()
        with contextlib.suppress(Exception):
            conn.close()
        with contextlib.suppress(Exception):
            conn.collect()

    def _forked(self) -> bool:
        """Whether this process is a fork of the one that opened the connections.

        A forked child must never read or write its parent's sockets: it forgets
        every inherited connection and confirm (they stay the parent's) and
        starts afresh.
        """
        if os.getpid() == self._pid:
            return False
        self._pid = os.getpid()
        self._local = threading.local()
        with self._lock:
            self._open = set()
            self._confirm_sets = {}
            self._orphans = []
        return True

    def channel(self) -> Any:
        """This thread's open channel (connecting first when needed)."""
        self._forked()
        ch = getattr(self._local, "channel", None)
        if ch is not None and ch.is_open:
            return ch
        conn = getattr(self._local, "connection", None)
        if conn is None or not conn.connected:
            self.reset()
            conn = self.new_connection()
            self._local.connection = conn
            self._local.declared = set()
        ch = open_channel(conn)
        self._local.channel = ch
        self._local.confirms = None
        return ch

    def _confirms(self) -> _Confirms:
        ch = self.channel()
        confirms: _Confirms | None = getattr(self._local, "confirms", None)
        if confirms is None or confirms.channel is not ch:
            fresh = _Confirms(ch)
            with self._lock:
                if confirms is not None and confirms.channel.connection is ch.connection:
                    # A channel error closed the old channel: its unconfirmed go again.
                    self._orphans += confirms.pending.values()
                    confirms.pending.clear()
                self._confirm_sets[ch.connection] = fresh
            confirms = self._local.confirms = fresh
        if self._orphans:
            with self._lock:
                orphans, self._orphans = self._orphans, []
            for i, item in enumerate(orphans):
                try:
                    confirms.publish(item)
                except BaseException:
                    with self._lock:
                        self._orphans[:0] = orphans[i:]
                    raise
        return confirms

    def reset(self) -> None:
        """Drop this thread's connection (the next call reconnects)."""
        conn = getattr(self._local, "connection", None)
        self._local.connection = None
        self._local.channel = None
        if conn is not None:
            self.forget_connection(conn)

    def close_all(self) -> None:
        """Wait for outstanding confirms, then close every connection of any thread; idempotent."""
        self.flush_all(self.confirm_timeout)
        with self._lock:
            conns, self._open = list(self._open), set()
            self._confirm_sets.clear()
        for conn in conns:
            with contextlib.suppress(Exception):
                conn.close()
            with contextlib.suppress(Exception):
                conn.collect()
        self._local = threading.local()

    def run(self, op: Callable[[Any], T], *, retry: bool | None = None) -> T:
        """Call ``op(channel)``; on connection errors reconnect and retry (publish policy)."""
        delays = _RETRY_DELAYS if (self.retry if retry is None else retry) else (0.0,)
        last: OperationalError | None = None
        for delay in delays:
            if delay:
                time.sleep(delay)
            try:
                return op(self.channel())
            except BrokerUnreachable as exc:
                if "refused login" in str(exc):
                    raise
                last = exc
            except OperationalError:
                raise  # a refused (nacked) message; it is a ConnectionError, not a lost link
            except CHANNEL_ERRORS as exc:
                self._local.channel = None
                raise OperationalError(f"RabbitMQ at {self.params.masked}: {exc}") from None
            except CONNECTION_ERRORS as exc:
                self.reset()
                last = lost_error(self.params, exc)
        assert last is not None
        raise last

    # -- operations ----------------------------------------------------------------
    def declare(self, plan: Plan) -> None:
        """Declare every entity of ``plan`` that this thread's connection did not yet."""
        self.run(lambda _ch: self._declare(plan))

    def _declare(self, plan: Plan) -> None:
        declared: set[str] = self._local.declared  # repr() of what was declared
        for ex in plan.exchanges:
            if repr(ex) in declared:
                continue
            self._tolerant(partial(_declare_exchange, ex), ex.name)
            declared.add(repr(ex))
        for q in plan.queues:
            if repr(q) in declared:
                continue
            self._tolerant(partial(_declare_queue, q), q.name)
            for exchange, key in q.bindings:
                self.channel().queue_bind(q.name, exchange, key)
            declared.add(repr(q))

    def _tolerant(self, op: Callable[[Any], Any], name: str) -> None:
        try:
            op(self.channel())
        except amqp.exceptions.PreconditionFailed as exc:
            # Declared before with other flags (e.g. by Celery): use it as it is.
            logger.warning("RabbitMQ: %r exists with different flags or arguments; "
                           "using it as it is (%s)", name, exc)
            self._local.channel = None

    def publish(self, envelope: Envelope) -> None:
        """Publish one message: pipelined or waiting for its confirm (``confirm_window``)."""
        if self.confirm_window <= 1:
            self.publish_many([envelope])
            return
        item = outgoing(envelope)
        written = False

        def op(_channel: Any) -> None:
            nonlocal written
            confirms = self._confirms()  # publishes orphans of a broken connection first
            if not written:
                confirms.poll()
                self._raise_nacked(confirms)
                confirms.publish(item)
                written = True  # from now on a broken connection makes it an orphan
            if len(confirms.pending) >= self.confirm_window:
                confirms.wait(self.confirm_timeout, below=self.confirm_window)

        self._hook_tasks()
        self.run(op)

    def publish_many(self, envelopes: Sequence[Envelope]) -> None:
        """Publish all, then wait once until nothing is unconfirmed (one round trip).

        After a connection error only the messages the broker had not
        confirmed are published again. A nack raises ``OperationalError``
        once every other message is settled.
        """
        items = [outgoing(env) for env in envelopes]
        written = 0

        def op(_channel: Any) -> None:
            nonlocal written
            confirms = self._confirms()
            while written < len(items):
                confirms.publish(items[written])
                written += 1
            confirms.wait(self.confirm_timeout)
            self._raise_nacked(confirms)

        self.run(op)

    def flush(self) -> None:
        """Wait until this thread's published messages are all confirmed (or raise)."""
        if self._forked():
            return
        confirms: _Confirms | None = getattr(self._local, "confirms", None)
        if not self._orphans and (confirms is None or not confirms.pending):
            return

        def op(_channel: Any) -> None:
            done = self._confirms()
            done.wait(self.confirm_timeout)
            self._raise_nacked(done)

        self.run(op)

    def flush_all(self, timeout: float) -> None:
        """Best effort at close and exit: wait for every thread's outstanding confirms."""
        if self._forked():
            return  # a forked child: the connections were the parent's
        with self._lock:
            sets = [c for c in self._confirm_sets.values() if c.pending]
            orphans = len(self._orphans)
        left = orphans
        for confirms in sets:
            try:
                confirms.wait(timeout)
            except Exception as exc:  # reported below as "not confirmed", never raised
                logger.debug("waiting for confirms at close failed: %s", exc)
            left += len(confirms.pending)
            if confirms.nacked:
                self._report_nacked(confirms.nacked)
                confirms.nacked = []
        if orphans:
            with contextlib.suppress(Exception):
                self.flush()
                left -= orphans
        if left:
            logger.warning("RabbitMQ at %s: %d published message(s) were not confirmed by "
                           "the broker before closing; they may be missing",
                           self.params.masked, left)

    def _hook_tasks(self) -> None:
        """Flush at the end of each task that published (before the worker acks it)."""
        if self._hooked:
            return
        self._hooked = True
        _LIVE.add(self)
        signals.task_postrun.connect(self._after_task)

    def _after_task(self, **_: Any) -> None:
        try:
            self.flush()
        except OperationalError as exc:
            logger.error("%s", exc)

    def _report_nacked(self, items: Sequence[Outgoing]) -> str:
        keys = sorted({f"{exchange or '(default)'}/{key}" for _p, _b, exchange, key in items})
        text = (f"RabbitMQ at {self.params.masked} refused (nacked) {len(items)} published "
                f"message(s), not queued; exchange/routing key: {', '.join(keys)}")
        logger.error("%s", text)
        return text

    def _raise_nacked(self, confirms: _Confirms) -> None:
        if confirms.nacked:
            items, confirms.nacked = confirms.nacked, []
            raise OperationalError(self._report_nacked(items))

    def queue_length(self, queue: str) -> int:
        """Ready messages in ``queue`` (0 when it does not exist)."""
        try:
            ok = self.run(lambda ch: ch.queue_declare(queue, passive=True))
        except OperationalError as exc:
            if "NOT_FOUND" in str(exc):
                return 0
            raise
        return int(ok.message_count)
