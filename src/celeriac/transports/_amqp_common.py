"""What the sync and async AMQP faces share: URL parsing, error wording, declarations.

Both faces (py-amqp for blocking ``delay()``, aiormq for the worker and async
clients) declare the same entities and say the same thing when the broker
cannot be had; the logic lives here once, the I/O in each face.
"""

from __future__ import annotations

import ssl as _ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from celeriac.config.urls import mask_url
from celeriac.errors import BadURLError, BrokerUnreachable, ImproperlyConfigured, OperationalError
from celeriac.protocol.amqp_topology import (
    DEAD_LETTER_EXCHANGE,
    celery_exchange,
    dead_letter_queue,
)
from celeriac.transports._tls import (
    TLSOptions,
    py_amqp_ssl,
    ssl_context,
    tls_options,
    verify_hint,
)
from celeriac.transports.base import QueueSpec

__all__ = [
    "AMQPParams",
    "DeclareExchange",
    "DeclareQueue",
    "Plan",
    "connect_error",
    "dead_letter_plan",
    "parse_amqp_url",
    "plan_declarations",
]

_DEFAULT_PORTS = {"amqp": 5672, "pyamqp": 5672, "amqps": 5671, "rpc": 5672}


@dataclass(frozen=True, slots=True)
class AMQPParams:
    """Where and as whom to connect, parsed once from a broker URL."""

    url: str
    host: str
    port: int
    user: str
    password: str
    vhost: str
    ssl: bool
    heartbeat: int
    #: How to open TLS (``None``: plain TCP); set when ``ssl`` is.
    tls: TLSOptions | None = None

    @property
    def masked(self) -> str:
        """The URL with its password masked, for messages."""
        return mask_url(self.url)

    @property
    def server_hostname(self) -> str | None:
        """The name TLS sends and checks (``None`` without TLS)."""
        return None if self.tls is None else self.tls.server_hostname or self.host

    def ssl_context(self) -> _ssl.SSLContext | None:
        """The TLS context of the async faces (``None`` without TLS)."""
        return None if self.tls is None else ssl_context(self.tls)

    def aiormq_kwargs(self) -> dict[str, Any]:
        """``aiormq.connect`` arguments for TLS (none without it)."""
        if self.tls is None:
            return {}
        return {"context": ssl_context(self.tls), "server_hostname": self.server_hostname}

    def py_amqp_ssl(self) -> bool | dict[str, Any]:
        """py-amqp's ``ssl`` argument (``False`` without TLS)."""
        return False if self.tls is None else py_amqp_ssl(self.tls, self.host)

    def aiormq_url(self) -> str:
        """The URL in the form aiormq parses (``amqp``/``amqps``, quoted vhost)."""
        scheme = "amqps" if self.ssl else "amqp"
        path = "/" if self.vhost == "/" else "/" + quote(self.vhost, safe="")
        auth = f"{quote(self.user, safe='')}:{quote(self.password, safe='')}"
        return f"{scheme}://{auth}@{self.host}:{self.port}{path}?heartbeat={self.heartbeat}"


def parse_amqp_url(url: str, heartbeat: int = 60,
                   use_ssl: bool | Mapping[str, Any] | None = False) -> AMQPParams:
    """Parse ``amqp://user:pw@host:port/vhost`` as Celery reads it.

    ``pyamqp://`` is an alias; ``amqps://`` uses TLS on 5671. An empty path
    and ``//`` both mean the vhost ``/``; ``%2F`` is unquoted. ``use_ssl`` is
    ``broker_use_ssl``: its options apply to ``amqps://``, and a true value
    turns TLS on for ``amqp://`` too (then on 5671 unless a port is given),
    as kombu does.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise BadURLError(f"cannot parse broker URL {mask_url(url)!r}: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise BadURLError(f"{mask_url(url)!r} is not an amqp://, amqps:// or pyamqp:// URL")
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    vhost = unquote(path) or "/"
    tls = tls_options(use_ssl, url_tls=scheme == "amqps")
    return AMQPParams(
        url=url,
        host=parts.hostname or "localhost",
        port=port or (_DEFAULT_PORTS["amqps"] if tls is not None else _DEFAULT_PORTS[scheme]),
        user=unquote(parts.username) if parts.username else "guest",
        password=unquote(parts.password) if parts.password else "guest",
        vhost=vhost,
        ssl=tls is not None,
        heartbeat=heartbeat,
        tls=tls,
    )


def connect_error(params: AMQPParams, exc: BaseException) -> OperationalError:
    """One line saying why connecting to ``params`` failed (the password masked)."""
    text = f"{exc}"
    name = type(exc).__name__
    refused = (
        "ACCESS_REFUSED" in text
        or "NOT_ALLOWED" in text
        or "AccessRefused" in name
        or "Authentication" in name
        or "NotAllowed" in name
        # aiormq reports a refused vhost as an unexpected Connection.Close frame
        or ("Connection.Close" in text and "OpenOk" in text)
    )
    if refused:
        return BrokerUnreachable(
            f"RabbitMQ refused login for user {params.user!r} on {params.masked}: "
            f"check the user, password and vhost"
        )
    reason = verify_hint(exc) or text.strip() or name
    return BrokerUnreachable(f"cannot connect to RabbitMQ at {params.masked}: {reason}")


def lost_error(params: AMQPParams, exc: BaseException | str) -> OperationalError:
    """The error for a connection or channel that broke while in use."""
    reason = exc if isinstance(exc, str) else (f"{exc}".strip() or type(exc).__name__)
    return OperationalError(f"RabbitMQ connection to {params.masked} lost: {reason}")


# -- declarations ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeclareExchange:
    """``exchange.declare`` with these flags."""

    name: str
    type: str
    durable: bool
    auto_delete: bool = False


@dataclass(frozen=True, slots=True)
class DeclareQueue:
    """``queue.declare`` with these flags, then bind it to each ``(exchange, key)``."""

    name: str
    durable: bool
    exclusive: bool
    auto_delete: bool
    arguments: dict[str, Any] = field(default_factory=dict)
    bindings: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Plan:
    """The ordered entities a set of :class:`QueueSpec` needs (exchanges first)."""

    exchanges: tuple[DeclareExchange, ...]
    queues: tuple[DeclareQueue, ...]


def _queue_arguments(spec: QueueSpec) -> dict[str, Any]:
    arguments = dict(spec.arguments)
    quorum = arguments.get("x-queue-type") == "quorum"
    if quorum and (spec.exclusive or spec.auto_delete or not spec.durable):
        raise ImproperlyConfigured(
            f"queue {spec.name!r}: a quorum queue must be durable, not exclusive and not "
            f"auto-delete (RabbitMQ refuses it otherwise)"
        )
    if spec.max_priority is not None and not quorum:
        arguments.setdefault("x-max-priority", int(spec.max_priority))
    return arguments


def plan_declarations(specs: Sequence[QueueSpec]) -> Plan:
    """What to declare for ``specs``, as Celery declares it.

    A queue with an exchange is bound to it with its routing key (fanout
    bindings ignore the key). A queue without one needs no binding: the
    default exchange routes by queue name. Quorum queues drop
    ``x-max-priority`` (RabbitMQ 3.x refuses it on them).
    """
    exchanges: dict[str, DeclareExchange] = {}
    queues: list[DeclareQueue] = []
    for spec in specs:
        bindings: tuple[tuple[str, str], ...] = ()
        if spec.exchange:
            facts = celery_exchange(spec.exchange)
            exchanges.setdefault(
                spec.exchange,
                DeclareExchange(spec.exchange, facts.type, facts.durable)
                if facts is not None
                else DeclareExchange(spec.exchange, spec.exchange_type or "direct", spec.durable),
            )
            bindings = ((spec.exchange, spec.routing_key or spec.name),)
        queues.append(
            DeclareQueue(
                name=spec.name,
                durable=spec.durable,
                exclusive=spec.exclusive,
                auto_delete=spec.auto_delete,
                arguments=_queue_arguments(spec),
                bindings=bindings,
            )
        )
    return Plan(tuple(exchanges.values()), tuple(queues))


def dead_letter_plan(queue: str) -> Plan:
    """The dead-letter exchange and the dead queue of ``queue`` (bound by queue name)."""
    return Plan(
        (DeclareExchange(DEAD_LETTER_EXCHANGE, "direct", True),),
        (
            DeclareQueue(
                dead_letter_queue(queue),
                durable=True,
                exclusive=False,
                auto_delete=False,
                bindings=((DEAD_LETTER_EXCHANGE, queue),),
            ),
        ),
    )
