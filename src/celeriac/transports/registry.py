"""Broker URL scheme -> transport class: a plain dict, imported lazily.

:data:`TRANSPORTS` maps each built-in scheme to a :class:`Plugin` naming the
class as ``"module:Class"``; the module is imported only when a URL asks for it,
so a missing optional dependency (``aio-pika`` for ``amqp://``) only matters to
whoever uses that broker, and then fails with the pip extra to install.
Third parties add schemes through the ``celeriac.transports`` entry-point group
(name = scheme, value = ``"module:Class"``); built-in schemes win.

The same machinery serves the result-backend registry
(:mod:`celeriac.backends.registry`).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TypeVar

from celeriac.config.urls import mask_url, scheme_of
from celeriac.errors import BadURLError, ConfigurationError
from celeriac.transports.base import Transport, TransportOptions

__all__ = [
    "ENTRY_POINT_GROUP",
    "TRANSPORTS",
    "Plugin",
    "load_plugin",
    "transport_class",
    "transport_for_url",
]

C = TypeVar("C", bound=type)

#: Entry-point group third-party transports register under.
ENTRY_POINT_GROUP = "celeriac.transports"


@dataclass(frozen=True, slots=True)
class Plugin:
    """Where a class lives (``"module:Class"``), what it is called in errors
    (``family``: ``"amqp"``), and the pip extra its dependencies come with."""

    target: str
    family: str
    extra: str | None = None


_REDIS = Plugin("celeriac.transports.redis:RedisTransport", "redis")
_AMQP = Plugin("celeriac.transports.amqp:AMQPTransport", "amqp", "amqp")
_POSTGRES = Plugin("celeriac.transports.postgres:PostgresTransport", "postgres", "postgres")

#: Built-in broker URL schemes.
TRANSPORTS: dict[str, Plugin] = {
    "memory": Plugin("celeriac.transports.memory:MemoryTransport", "memory"),
    "sqlite": Plugin("celeriac.transports.sqlite:SqliteTransport", "sqlite"),
    "redis": _REDIS,
    "rediss": _REDIS,
    "redis+socket": _REDIS,
    "sentinel": _REDIS,
    "amqp": _AMQP,
    "amqps": _AMQP,
    "pyamqp": _AMQP,
    "postgresql": _POSTGRES,
    "postgres": _POSTGRES,
}


def load_plugin(plugin: Plugin, base: C, role: str) -> C:
    """Import ``plugin.target`` and check that it is a subclass of ``base``.

    ``role`` (``"broker"``, ``"result backend"``) words the errors. A missing
    third-party module raises :class:`~celeriac.errors.ConfigurationError`
    naming the pip extra.
    """
    module_name, _, attr = plugin.target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing == "celeriac" or missing.startswith("celeriac."):
            raise ConfigurationError(
                f"the {plugin.family} {role} is not available in this version of "
                f"celeriac ({module_name} is missing)"
            ) from exc
        if plugin.extra:
            raise ConfigurationError(
                f"the {plugin.family} {role} needs the {plugin.extra!r} extra: "
                f"pip install 'celeriac[{plugin.extra}]' (missing module {missing!r})"
            ) from exc
        raise ConfigurationError(
            f"the {plugin.family} {role} needs the {missing!r} package, which celeriac "
            f"depends on: reinstall with pip install celeriac"
        ) from exc
    cls = getattr(module, attr, None)
    if not isinstance(cls, type) or not issubclass(cls, base):
        raise ConfigurationError(f"{plugin.target} is not a {base.__name__} subclass")
    return cls  # type: ignore[return-value]


def entry_point_plugins(group: str) -> dict[str, Plugin]:
    """Schemes registered by installed distributions under the entry-point ``group``."""
    return {ep.name: Plugin(ep.value, ep.name) for ep in entry_points(group=group)}


def unknown_scheme(url: str, role: str, known: list[str]) -> BadURLError:
    """The error for a URL whose scheme nobody serves (the URL masked)."""
    scheme = scheme_of(url)
    if not scheme:
        return BadURLError(f"{role} URL {mask_url(url)!r} has no scheme: use one of {_list(known)}")
    return BadURLError(
        f"unknown {role} URL scheme {scheme!r} in {mask_url(url)!r}: use one of {_list(known)}"
    )


def _list(schemes: list[str]) -> str:
    return ", ".join(dict.fromkeys(schemes))


def transport_class(url: str) -> type[Transport]:
    """The transport class that serves ``url``'s scheme (imported now)."""
    scheme = scheme_of(url)
    plugin = TRANSPORTS.get(scheme)
    if plugin is None:
        extra = entry_point_plugins(ENTRY_POINT_GROUP)
        plugin = extra.get(scheme)
        if plugin is None:
            raise unknown_scheme(url, "broker", [*TRANSPORTS, *extra])
    return load_plugin(plugin, Transport, "broker")


def transport_for_url(url: str, options: TransportOptions | None = None) -> Transport:
    """Build (without I/O) the transport for a broker ``url``.

    Raises :class:`~celeriac.errors.BadURLError` for an unknown scheme and
    :class:`~celeriac.errors.ConfigurationError` when the broker's optional
    dependency is not installed.
    """
    return transport_class(url)(url, options)
