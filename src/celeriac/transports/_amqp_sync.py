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
after each publish): the publishing channel is put in confirm mode once,
every ``basic.publish`` frame of a batch is written, then one wait reads the
acks (``multiple`` ones included) until every delivery tag of the batch is
settled. A batch of N costs one round trip, not N. If the connection breaks
mid-batch, only the messages not yet confirmed are published again.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any, TypeVar

import amqp  # type: ignore[import-untyped]

from celeriac.errors import BrokerUnreachable, OperationalError
from celeriac.protocol.amqp import to_amqp_properties
from celeriac.protocol.envelope import Envelope
from celeriac.transports._amqp_common import (
    AMQPParams,
    DeclareExchange,
    DeclareQueue,
    Plan,
    connect_error,
    lost_error,
)

__all__ = ["SyncAMQP", "amqp_message", "open_channel", "properties_of"]

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
#: basic.publish: (ticket, exchange, routing key, mandatory, immediate).
_PUBLISH = amqp.spec.Basic.Publish
_PUBLISH_ARGSIG = "Bssbb"


class _Confirms:
    """Delivery tags of one confirm-mode channel that the broker has not settled yet."""

    def __init__(self, channel: Any) -> None:
        channel.confirm_select()
        self.channel = channel
        self.sent = 0  # the last delivery tag used (tags count from 1 per channel)
        self.pending: set[int] = set()
        self.nacked: set[int] = set()
        channel.events["basic_ack"].add(self._on_ack)
        channel.events["basic_nack"].add(self._on_nack)

    def _settle(self, tag: int, multiple: bool) -> set[int]:
        if not multiple:
            self.pending.discard(tag)
            return {tag}
        done = {t for t in self.pending if t <= tag}
        self.pending -= done
        return done

    def _on_ack(self, tag: int, multiple: bool) -> None:
        self._settle(tag, multiple)

    def _on_nack(self, tag: int, multiple: bool) -> None:
        self.nacked |= self._settle(tag, multiple)

    def publish(self, message: Any, exchange: str, routing_key: str) -> int:
        """Write one ``basic.publish`` (no wait); return its delivery tag."""
        self.channel.send_method(_PUBLISH, _PUBLISH_ARGSIG,
                                 (0, exchange, routing_key, False, False), message)
        self.sent += 1
        self.pending.add(self.sent)
        return self.sent

    def wait(self, timeout: float) -> None:
        """Read frames until nothing is pending; ``socket.timeout`` after ``timeout``."""
        conn = self.channel.connection
        deadline = time.monotonic() + timeout
        while self.pending:
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


def amqp_message(envelope: Envelope) -> Any:
    """A py-amqp message carrying ``envelope`` with Celery's properties."""
    props = to_amqp_properties(envelope)
    props["application_headers"] = props.pop("headers")
    return amqp.Message(envelope.body, **props)


def properties_of(message: Any) -> dict[str, Any]:
    """The basic properties of a received py-amqp message, with the AMQP names."""
    props: Mapping[str, Any] = message.properties
    out = dict(props)
    if "application_headers" in out:
        out["headers"] = out.pop("application_headers")
    return out


class SyncAMQP:
    """Blocking AMQP operations on a per-thread connection (see the module docstring)."""

    def __init__(self, params: AMQPParams, *, connect_timeout: float = 5.0,
                 confirm_timeout: float = 30.0, retry: bool = True) -> None:
        self.params = params
        self.connect_timeout = connect_timeout
        self.confirm_timeout = confirm_timeout
        self.retry = retry
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: set[Any] = set()

    # -- connections -------------------------------------------------------------
    def new_connection(self) -> Any:
        """Open a fresh py-amqp connection; raise ``BrokerUnreachable`` with one line."""
        p = self.params
        conn = amqp.Connection(
            host=f"{p.host}:{p.port}", userid=p.user, password=p.password,
            virtual_host=p.vhost, ssl=p.ssl, connect_timeout=self.connect_timeout,
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

    def forget_connection(self, conn: Any) -> None:
        """Close ``conn`` quietly (it may be broken already)."""
        with self._lock:
            self._open.discard(conn)
        with contextlib.suppress(Exception):
            conn.close()
        with contextlib.suppress(Exception):
            conn.collect()

    def channel(self) -> Any:
        """This thread's open channel (connecting first when needed)."""
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
            confirms = _Confirms(ch)
            self._local.confirms = confirms
        return confirms

    def reset(self) -> None:
        """Drop this thread's connection (the next call reconnects)."""
        conn = getattr(self._local, "connection", None)
        self._local.connection = None
        self._local.channel = None
        if conn is not None:
            self.forget_connection(conn)

    def close_all(self) -> None:
        """Close every connection opened by any thread; idempotent."""
        with self._lock:
            conns, self._open = list(self._open), set()
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
            except amqp.exceptions.MessageNacked as exc:
                raise OperationalError(f"RabbitMQ at {self.params.masked} refused "
                                       f"(nacked) a published message") from exc
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
        """Publish and wait for the broker's confirm."""
        self.publish_many([envelope])

    def publish_many(self, envelopes: Sequence[Envelope]) -> None:
        """Publish all, then wait once for every confirm (one round trip per batch).

        After a connection error only the messages the broker had not
        confirmed are published again. A nack raises ``OperationalError``
        once every other message of the batch is settled.
        """
        left = [(amqp_message(env), env) for env in envelopes]

        def op(_channel: Any) -> None:
            nonlocal left
            confirms = self._confirms()
            tags: list[int] = []
            try:
                for message, env in left:
                    tags.append(confirms.publish(message, env.exchange, env.routing_key))
                confirms.wait(self.confirm_timeout)
            except BaseException:
                left = [item for i, item in enumerate(left)
                        if i >= len(tags) or tags[i] in confirms.pending]
                raise
            refused = confirms.nacked.intersection(tags)
            confirms.nacked.clear()
            if refused:
                raise amqp.exceptions.MessageNacked(f"{len(refused)} of {len(tags)}")

        self.run(op)

    def queue_length(self, queue: str) -> int:
        """Ready messages in ``queue`` (0 when it does not exist)."""
        try:
            ok = self.run(lambda ch: ch.queue_declare(queue, passive=True))
        except OperationalError as exc:
            if "NOT_FOUND" in str(exc):
                return 0
            raise
        return int(ok.message_count)
