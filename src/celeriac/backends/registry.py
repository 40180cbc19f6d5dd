"""Result-backend URL scheme -> backend class: a plain dict, imported lazily.

Works like :mod:`celeriac.transports.registry`: :data:`BACKENDS` names each
built-in class as ``"module:Class"``, optional dependencies fail with the pip
extra to install, and third parties register schemes under the
``celeriac.backends`` entry-point group.

SQLAlchemy-style ``db+<dialect>+<driver>://`` URLs are looked up by
``db+<dialect>``. ``db+sqlite://`` (common in Celery's docs) is served by
celeriac's own SQLite backend, which needs no extra.
"""

from __future__ import annotations

from celeriac.backends.base import BackendOptions, ResultBackend
from celeriac.config.urls import scheme_of
from celeriac.transports.registry import (
    Plugin,
    entry_point_plugins,
    load_plugin,
    unknown_scheme,
)

__all__ = ["BACKENDS", "ENTRY_POINT_GROUP", "backend_class", "backend_for_url"]

#: Entry-point group third-party result backends register under.
ENTRY_POINT_GROUP = "celeriac.backends"

_REDIS = Plugin("celeriac.backends.redis:RedisBackend", "redis")
_DATABASE = Plugin("celeriac.backends.database:DatabaseBackend", "database", "sql")
_MEMCACHED = Plugin("celeriac.backends.memcached:MemcachedBackend", "memcached", "memcached")
_SQLITE = Plugin("celeriac.backends.sqlite:SqliteBackend", "sqlite")
_MEMORY = Plugin("celeriac.backends.memory:MemoryBackend", "memory")

#: Built-in result-backend URL schemes.
BACKENDS: dict[str, Plugin] = {
    "redis": _REDIS,
    "rediss": _REDIS,
    "sentinel": _REDIS,
    "rpc": Plugin("celeriac.backends.rpc:RPCBackend", "rpc", "amqp"),
    "db+postgresql": _DATABASE,
    "db+mysql": _DATABASE,
    "memcached": _MEMCACHED,
    "cache+memcached": _MEMCACHED,
    "sqlite": _SQLITE,
    "db+sqlite": _SQLITE,
    "memory": _MEMORY,
    "cache+memory": _MEMORY,
}


def _lookup(scheme: str) -> Plugin | None:
    plugin = BACKENDS.get(scheme)
    if plugin is None and scheme.startswith("db+"):
        dialect = scheme.split("+")[1]
        plugin = BACKENDS.get(f"db+{dialect}")
    return plugin


def backend_class(url: str) -> type[ResultBackend]:
    """The result-backend class that serves ``url``'s scheme (imported now)."""
    scheme = scheme_of(url)
    plugin = _lookup(scheme)
    if plugin is None:
        extra = entry_point_plugins(ENTRY_POINT_GROUP)
        plugin = extra.get(scheme)
        if plugin is None:
            raise unknown_scheme(url, "result backend", [*BACKENDS, *extra])
    return load_plugin(plugin, ResultBackend, "result backend")


def backend_for_url(url: str, options: BackendOptions | None = None) -> ResultBackend:
    """Build (without I/O) the result backend for ``url``.

    Raises :class:`~celeriac.errors.BadURLError` for an unknown scheme and
    :class:`~celeriac.errors.ConfigurationError` when the backend's optional
    dependency is not installed.
    """
    return backend_class(url)(url, options)
