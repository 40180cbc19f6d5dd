"""``Queue`` and ``Exchange``: the declarations users write in ``task_queues``.

They take kombu's arguments so that settings written for Celery
(``Queue('default', Exchange('default'), routing_key='default')``) work as
written. :func:`queue_spec` turns one (or a kombu ``Queue``, by duck typing)
into the transport-level :class:`~celeriac.transports.base.QueueSpec`.
"""

from __future__ import annotations

from typing import Any

from celeriac.transports.base import QueueSpec

__all__ = ["Exchange", "Queue", "queue_spec"]


class Exchange:
    """A named exchange: ``direct`` (default), ``topic`` or ``fanout``."""

    def __init__(
        self, name: str = "", type: str = "direct", durable: bool = True,  # noqa: A002
        auto_delete: bool = False, **kwargs: Any,
    ) -> None:
        if type not in ("direct", "topic", "fanout", "headers"):
            raise ValueError(
                f"Exchange {name!r}: type must be direct, topic, fanout or headers, got {type!r}"
            )
        self.name = name
        self.type = type
        self.durable = durable
        self.auto_delete = auto_delete
        self.arguments = kwargs.get("arguments") or {}

    def __repr__(self) -> str:
        return f"<Exchange {self.name}({self.type})>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Exchange) and (self.name, self.type) == (other.name, other.type)

    def __hash__(self) -> int:
        return hash((self.name, self.type))


class Queue:
    """A queue and how it is bound; ``routing_key`` defaults to the queue name."""

    def __init__(
        self,
        name: str = "",
        exchange: Exchange | str | None = None,
        routing_key: str | None = None,
        *,
        durable: bool = True,
        exclusive: bool = False,
        auto_delete: bool = False,
        queue_arguments: dict[str, Any] | None = None,
        max_priority: int | None = None,
        **_: Any,
    ) -> None:
        self.name = name
        if isinstance(exchange, str):
            exchange = Exchange(exchange)
        self.exchange = exchange if exchange is not None else Exchange(name)
        self.routing_key = routing_key if routing_key is not None else name
        self.durable = durable
        self.exclusive = exclusive
        self.auto_delete = auto_delete
        self.queue_arguments = dict(queue_arguments or {})
        if max_priority is None and "x-max-priority" in self.queue_arguments:
            max_priority = int(self.queue_arguments["x-max-priority"])
        self.max_priority = max_priority

    def __repr__(self) -> str:
        return f"<Queue {self.name} -> {self.exchange!r} -> {self.routing_key}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Queue) and (self.name, self.exchange, self.routing_key) == (
            other.name, other.exchange, other.routing_key,
        )

    def __hash__(self) -> int:
        return hash((self.name, self.routing_key))


def queue_spec(queue: Any, default_max_priority: int | None = None) -> QueueSpec:
    """Reduce a celeriac or kombu ``Queue`` (or a plain name) to a :class:`QueueSpec`."""
    if isinstance(queue, str):
        return QueueSpec(name=queue, exchange=queue, routing_key=queue,
                         max_priority=default_max_priority)
    exchange = getattr(queue, "exchange", None)
    arguments = dict(getattr(queue, "queue_arguments", None) or {})
    max_priority = getattr(queue, "max_priority", None)
    if max_priority is None:
        max_priority = arguments.get("x-max-priority", default_max_priority)
    return QueueSpec(
        name=queue.name,
        exchange=getattr(exchange, "name", "") or "",
        exchange_type=getattr(exchange, "type", "direct") or "direct",
        routing_key=getattr(queue, "routing_key", None) or queue.name,
        durable=bool(getattr(queue, "durable", True)),
        auto_delete=bool(getattr(queue, "auto_delete", False)),
        exclusive=bool(getattr(queue, "exclusive", False)),
        max_priority=int(max_priority) if max_priority is not None else None,
        arguments=arguments,
    )
