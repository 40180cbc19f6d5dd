"""Where beat keeps its state: run marks, the leader lease and dynamic entries.

The interface is :class:`BeatStore` (see ``_store_base``); the stores are
:class:`MemoryStore`, :class:`FileStore`, :class:`RedisStore` and
:class:`SqliteStore`. :func:`open_store` picks the one an app should use.
"""

from __future__ import annotations

from typing import Any

from celeriac.beat._store_base import BeatStore, Claim, FileStore, MemoryStore, store_namespace
from celeriac.beat._store_redis import RedisStore
from celeriac.beat._store_sqlite import SqliteStore
from celeriac.config.urls import scheme_of
from celeriac.errors import ConfigurationError

__all__ = [
    "STORE_KINDS",
    "BeatStore",
    "Claim",
    "FileStore",
    "MemoryStore",
    "RedisStore",
    "SqliteStore",
    "open_store",
    "store_namespace",
]

#: The ``--store`` choices.
STORE_KINDS = ("auto", "file", "redis", "sqlite", "memory")


def open_store(app: Any, *, kind: str = "auto", path: str | None = None) -> BeatStore:
    """The beat store for ``app``.

    ``kind``: ``auto`` (Redis when the broker or the result backend is
    ``redis://``, SQLite when the broker is ``sqlite://``, memory for
    ``memory://``, else the file), or ``file``, ``redis``, ``sqlite``,
    ``memory``. A ``path`` (``--schedule``) chooses the file store unless
    ``kind`` names another.
    """
    settings = app.conf.settings
    broker = settings.effective_broker_url()
    backend = settings.effective_result_backend() or ""
    namespace = store_namespace(app.main)
    if kind == "auto":
        kind = _auto_kind(broker, backend, path)
    if kind == "file":
        return FileStore(path or settings.beat_schedule_filename)
    if kind == "memory":
        return MemoryStore()
    if kind == "redis":
        url = broker if scheme_of(broker) in _REDIS_SCHEMES else backend
        if scheme_of(url) not in _REDIS_SCHEMES:
            raise ConfigurationError(
                "the redis beat store needs a redis:// broker or result backend"
            )
        return RedisStore(url, namespace)
    if kind == "sqlite":
        if scheme_of(broker) != "sqlite":
            raise ConfigurationError("the sqlite beat store needs a sqlite:// broker")
        return SqliteStore(broker, namespace)
    raise ConfigurationError(
        f"unknown beat store {kind!r}: use auto, file, redis, sqlite or memory"
    )


_REDIS_SCHEMES = ("redis", "rediss", "redis+socket", "unix", "sentinel")


def _auto_kind(broker: str, backend: str, path: str | None) -> str:
    if path is not None:
        return "file"
    if scheme_of(broker) in _REDIS_SCHEMES or scheme_of(backend) in _REDIS_SCHEMES:
        return "redis"
    if scheme_of(broker) == "sqlite":
        return "sqlite"
    if scheme_of(broker) == "memory":
        return "memory"
    return "file"
