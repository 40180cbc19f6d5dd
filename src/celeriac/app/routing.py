"""Routing: which queue, exchange, routing key and priority a task call goes to.

Pure logic. The order of precedence, highest first: options given to the call
(``queue=``, ``routing_key=``, ``exchange=``, ``priority=``), then the routers
from ``task_routes`` (first match wins), then the task's own options
(``@app.task(queue=...)``), then ``task_default_*`` settings.

``task_routes`` may be a dict (exact names, glob patterns such as
``'feed.*'``, compiled regular expressions as keys), a router function
``(name, args, kwargs, options, task=None, **kw) -> dict | str | None``, or a
list/tuple mixing dicts and functions.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from celeriac.errors import ConfigurationError

__all__ = ["Route", "Router"]

RouterFunc = Callable[..., Any]


@dataclass(frozen=True, slots=True)
class Route:
    """Where one call goes."""

    queue: str
    exchange: str
    routing_key: str
    priority: int | None


class _MapRouter:
    """A dict router: exact names first, then globs and regexes in order."""

    def __init__(self, table: Mapping[Any, Any]) -> None:
        self.exact: dict[str, Any] = {}
        self.patterns: list[tuple[re.Pattern[str], Any]] = []
        for key, value in table.items():
            if isinstance(key, re.Pattern):
                self.patterns.append((key, value))
            elif isinstance(key, str) and any(ch in key for ch in "*?["):
                self.patterns.append((re.compile(fnmatch.translate(key)), value))
            elif isinstance(key, str):
                self.exact[key] = value
            else:
                raise ConfigurationError(
                    f"task_routes key {key!r} must be a task name, a glob or a compiled regex"
                )

    def __call__(self, name: str, *_: Any, **__: Any) -> Any:
        if name in self.exact:
            return self.exact[name]
        for pattern, value in self.patterns:
            if pattern.match(name):
                return value
        return None


def _load_routers(routes: Any) -> list[RouterFunc]:
    if routes is None:
        return []
    if isinstance(routes, Mapping):
        return [_MapRouter(routes)]
    if callable(routes):
        return [routes]
    if isinstance(routes, Sequence) and not isinstance(routes, str):
        out: list[RouterFunc] = []
        for item in routes:
            out.extend(_load_routers(item))
        return out
    raise ConfigurationError(
        "task_routes must be a dict, a router function or a list of them, "
        f"got {type(routes).__name__}"
    )


class Router:
    """Resolves the :class:`Route` of each call from the app's settings."""

    def __init__(
        self,
        routes: Any,
        queues: Sequence[Any] | None,
        default_queue: str,
        default_exchange: str = "",
        default_routing_key: str | None = None,
        default_priority: int | None = None,
    ) -> None:
        self.routers = _load_routers(routes)
        self.queues: dict[str, Any] = {q.name: q for q in (queues or ())}
        self.default_queue = default_queue
        self.default_exchange = default_exchange
        self.default_routing_key = default_routing_key
        self.default_priority = default_priority
        self._cache: dict[tuple[str, str | None], Route] = {}

    def same_route_for_every_call(self, options: Mapping[str, Any]) -> bool:
        """True when calls with these options all get one route whatever their
        arguments (no router function would be asked)."""
        if any(options.get(k) is not None for k in ("queue", "exchange", "routing_key")):
            return True
        return all(isinstance(router, _MapRouter) for router in self.routers)

    def route(
        self,
        name: str,
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
        options: Mapping[str, Any],
        task: Any = None,
    ) -> Route:
        """The route for one call of task ``name``."""
        queue = options.get("queue")
        exchange = options.get("exchange")
        routing_key = options.get("routing_key")
        priority = options.get("priority")
        if queue is None and exchange is None and routing_key is None and not self.routers:
            queue = getattr(task, "queue", None)
            cached = self._cache.get((name, queue))
            if cached is not None:
                return cached if priority is None else _with_priority(cached, priority)
            route = self._resolve(queue, None, None, getattr(task, "priority", None))
            self._cache[(name, queue)] = route
            return route if priority is None else _with_priority(route, priority)
        if queue is None and exchange is None and routing_key is None:
            found = self._ask_routers(name, args, kwargs, options, task)
            if found:
                queue = found.get("queue")
                exchange = found.get("exchange")
                routing_key = found.get("routing_key")
                if priority is None:
                    priority = found.get("priority")
        if queue is None and exchange is None and routing_key is None:
            queue = getattr(task, "queue", None)
        if priority is None:
            priority = getattr(task, "priority", None)
        return self._resolve(queue, exchange, routing_key, priority)

    def _ask_routers(
        self, name: str, args: Sequence[Any], kwargs: Mapping[str, Any],
        options: Mapping[str, Any], task: Any,
    ) -> dict[str, Any] | None:
        for router in self.routers:
            if isinstance(router, _MapRouter):
                found = router(name)
            else:
                found = router(name, args, kwargs, options, task=task)
            if found is None:
                continue
            if isinstance(found, str):
                return {"queue": found}
            if isinstance(found, Mapping):
                route = dict(found)
                if hasattr(route.get("queue"), "name"):
                    q = route["queue"]
                    route["queue"] = q.name
                    route.setdefault("routing_key", getattr(q, "routing_key", None))
                    route.setdefault("exchange",
                                     getattr(getattr(q, "exchange", None), "name", None))
                if hasattr(route.get("exchange"), "name"):
                    route["exchange"] = route["exchange"].name
                return route
            if hasattr(found, "name"):
                return {"queue": found.name}
            raise ConfigurationError(
                f"router {router!r} returned {found!r} for task {name!r}: expected a dict, "
                "a queue name or None"
            )
        return None

    def _resolve(
        self, queue: str | None, exchange: str | None, routing_key: str | None,
        priority: int | None,
    ) -> Route:
        if queue is None and routing_key is not None and exchange:
            # Explicit exchange + key: the broker routes by binding; name the queue
            # after the key for transports that only have queues.
            queue = routing_key
        elif queue is None and routing_key is not None:
            # A key alone (``apply_async(routing_key='for_task_A')``): the declared
            # queue bound with that key, else the default queue.
            queue = next((q.name for q in self.queues.values()
                          if getattr(q, "routing_key", None) == routing_key), None)
        queue = queue or self.default_queue
        declared = self.queues.get(queue)
        if declared is not None and exchange is None:
            declared_exchange = getattr(declared, "exchange", None)
            if getattr(declared_exchange, "type", "direct") != "direct":
                exchange = getattr(declared_exchange, "name", None)
                if routing_key is None:
                    routing_key = getattr(declared, "routing_key", None) or queue
        if exchange is None or exchange == "":
            # Celery 5 publishes task messages to the default exchange with the
            # queue name as routing key, whatever the queue's own binding is.
            return Route(queue, "", queue, priority)
        return Route(queue, exchange, routing_key or queue, priority)


def _with_priority(route: Route, priority: int) -> Route:
    return Route(route.queue, route.exchange, route.routing_key, priority)
