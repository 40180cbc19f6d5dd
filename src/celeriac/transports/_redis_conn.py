"""Redis URLs and clients, shared by the Redis transport and the Redis backend.

One parser turns every Redis URL form celeriac accepts into a
:class:`RedisTarget`, and two small factories build redis-py's sync and asyncio
clients from it, so both faces (and both the broker and the result backend)
connect the same way:

* ``redis://[[user]:password@]host[:port][/db]``, ``rediss://`` (TLS; query
  ``ssl_cert_reqs=required|optional|none``, ``ssl_ca_certs``, ``ssl_certfile``,
  ``ssl_keyfile``),
* ``redis+socket:///path/to/redis.sock[?virtual_host=db]`` and ``unix://``
  (``?db=N``),
* ``sentinel://host:port[;sentinel://host2:port...][/db]``: the primary is found
  through the sentinels; the service name comes from the transport options
  (``master_name``) or the query (``?master_name=``).

Query options common to all forms: ``socket_timeout``, ``socket_connect_timeout``.

**Timeouts.** Every command (``socket_timeout``, default
:data:`DEFAULT_SOCKET_TIMEOUT`) and every connection attempt
(``socket_connect_timeout``, default :data:`DEFAULT_CONNECT_TIMEOUT`) is bounded,
so a server that stops answering without closing its sockets (stopped, stuck
saving its data during ``SHUTDOWN``, a dead host behind a live route) surfaces
as a connection error that callers log and retry, instead of a wait forever.
A query option in the URL wins over the value the caller passes (from settings
or transport options); ``None`` means no bound. Blocking reads (pub/sub
listens) do not use ``socket_timeout``: they have their own bounded waits.

Library errors are translated by :func:`translate_error` so that no redis-py
exception leaves these modules.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

import hiredis
import redis
import redis.asyncio
import redis.asyncio.sentinel
import redis.exceptions
import redis.sentinel
from redis.backoff import NoBackoff
from redis.retry import Retry

from celeriac.config.urls import mask_url, scheme_of
from celeriac.errors import BadURLError, BrokerUnreachable, ConfigurationError, OperationalError
from celeriac.transports._tls import redis_ssl_kwargs, tls_options

__all__ = [
    "CONNECTION_ERRORS",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_SOCKET_TIMEOUT",
    "RedisTarget",
    "make_async_client",
    "make_sync_client",
    "parse_redis_url",
    "seconds_option",
    "translate_error",
    "translating",
]

#: redis-py errors that mean "the server could not be talked to" (worth a retry).
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.BusyLoadingError,
    redis.exceptions.ReadOnlyError,  # a failed-over primary that became a replica
    ConnectionError,
    OSError,
)

#: Seconds one Redis command may take before it counts as a connection failure.
DEFAULT_SOCKET_TIMEOUT = 5.0
#: Seconds opening a connection may take.
DEFAULT_CONNECT_TIMEOUT = 5.0

_SCHEMES = ("redis", "rediss", "redis+socket", "unix", "sentinel")


@dataclass(frozen=True, slots=True)
class RedisTarget:
    """Where and how to connect, parsed from a URL (no I/O)."""

    url: str
    db: int = 0
    host: str = "127.0.0.1"
    port: int = 6379
    username: str | None = None
    password: str | None = None
    unix_path: str | None = None
    ssl: bool = False
    ssl_options: dict[str, Any] = field(default_factory=dict)
    sentinels: tuple[tuple[str, int], ...] = ()
    master_name: str | None = None
    socket_timeout: float | None = DEFAULT_SOCKET_TIMEOUT
    connect_timeout: float | None = DEFAULT_CONNECT_TIMEOUT

    @property
    def masked(self) -> str:
        """The URL with its password masked, for messages."""
        return mask_url(self.url)


def _int(value: str, what: str, url: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise BadURLError(f"{what} {value!r} is not a number in {mask_url(url)}") from None


def _db_from_path(path: str, url: str) -> int:
    path = path.strip("/")
    return _int(path, "database", url) if path else 0


def seconds_option(value: Any, name: str) -> float | None:
    """A timeout setting: ``None`` (no bound) or a positive number of seconds."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = 0.0
    if not seconds > 0:
        raise ConfigurationError(f"{name} must be a positive number of seconds or None, "
                                 f"not {value!r}")  # fmt: skip
    return seconds


def parse_redis_url(
    url: str,
    master_name: str | None = None,
    *,
    socket_timeout: float | None = DEFAULT_SOCKET_TIMEOUT,
    connect_timeout: float | None = DEFAULT_CONNECT_TIMEOUT,
) -> RedisTarget:
    """Parse any Redis URL form celeriac accepts (see the module docstring).

    ``socket_timeout`` and ``connect_timeout`` apply unless the URL's query
    sets its own.
    """
    scheme = scheme_of(url)
    if scheme not in _SCHEMES:
        raise BadURLError(f"not a Redis URL: {mask_url(url)}")
    timeouts = {"socket_timeout": socket_timeout, "connect_timeout": connect_timeout}
    if scheme == "sentinel":
        return _parse_sentinel(url, master_name, timeouts)
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    common = {**timeouts, **_common_options(query, url)}
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    if scheme in ("redis+socket", "unix"):
        db_text = query.get("virtual_host") or query.get("db") or "0"
        return RedisTarget(
            url=url,
            db=_int(db_text.strip("/"), "database", url),
            unix_path=unquote(parts.path),
            username=username,
            password=password,
            **common,
        )
    try:
        port = parts.port or 6379
    except ValueError:
        raise BadURLError(f"bad port in {mask_url(url)}") from None
    ssl_options: dict[str, Any] = {}
    if scheme == "rediss":
        ssl_options["ssl_cert_reqs"] = query.get("ssl_cert_reqs", "required").lower()
        for key in ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile"):
            if key in query:
                ssl_options[key] = query[key]
    return RedisTarget(
        url=url,
        db=_db_from_path(parts.path, url),
        host=parts.hostname or "127.0.0.1",
        port=port,
        username=username,
        password=password,
        ssl=scheme == "rediss",
        ssl_options=ssl_options,
        **common,
    )


def target_from_options(url: str, extra: Mapping[str, Any], *,
                        connect_default: float | None, setting_prefix: str = "",
                        use_ssl: bool | Mapping[str, Any] | None = None,
                        ssl_setting: str = "broker_use_ssl") -> RedisTarget:
    """:func:`parse_redis_url` with ``master_name`` and the timeouts taken from a
    transport's or backend's options (``socket_timeout``, ``socket_connect_timeout``);
    ``setting_prefix`` names the setting in error messages (``redis_`` for the backend).

    ``use_ssl`` is ``broker_use_ssl`` (or ``redis_backend_use_ssl``, named by
    ``ssl_setting``): a true value turns TLS on for a ``redis://`` URL too, as
    kombu and Celery do, and its options fill in what a ``rediss://`` URL's
    query does not say (the URL's own ``ssl_*`` parameters win).
    """
    target = _parse_with_options(url, extra, connect_default, setting_prefix)
    tls = tls_options(use_ssl, setting=ssl_setting)
    if tls is None:
        return target
    if target.unix_path is not None or target.sentinels:
        kind = "a Unix socket" if target.unix_path is not None else "Sentinel"
        raise ConfigurationError(
            f"setting {ssl_setting!r}: TLS to Redis over {kind} is not supported "
            f"({mask_url(url)}): use a rediss://host:port URL, or unset {ssl_setting}")
    merged = {**redis_ssl_kwargs(tls, setting=ssl_setting), **target.ssl_options}
    reqs = merged["ssl_cert_reqs"]
    if reqs == ssl.CERT_NONE or str(reqs).lower() == "none":
        merged["ssl_check_hostname"] = False  # the URL said none: no name to check
    return replace(target, ssl=True, ssl_options=merged)


def _parse_with_options(url: str, extra: Mapping[str, Any], connect_default: float | None,
                        setting_prefix: str) -> RedisTarget:
    return parse_redis_url(
        url,
        master_name=extra.get("master_name"),
        socket_timeout=seconds_option(extra.get("socket_timeout", DEFAULT_SOCKET_TIMEOUT),
                                      f"{setting_prefix}socket_timeout"),
        connect_timeout=seconds_option(extra.get("socket_connect_timeout", connect_default),
                                       f"{setting_prefix}socket_connect_timeout"),
    )


def _common_options(query: dict[str, str], url: str) -> dict[str, Any]:
    options: dict[str, Any] = {}
    try:
        if "socket_timeout" in query:
            options["socket_timeout"] = float(query["socket_timeout"])
        if "socket_connect_timeout" in query:
            options["connect_timeout"] = float(query["socket_connect_timeout"])
    except ValueError:
        raise BadURLError(f"bad timeout in {mask_url(url)}") from None
    return options


def _parse_sentinel(url: str, master_name: str | None, timeouts: dict[str, Any]) -> RedisTarget:
    sentinels: list[tuple[str, int]] = []
    password: str | None = None
    username: str | None = None
    db = 0
    query: dict[str, str] = {}
    for piece in url.split(";"):
        piece = piece.strip()
        if not piece:
            continue
        if scheme_of(piece) != "sentinel":
            raise BadURLError(f"each part of a sentinel URL must be sentinel://: {mask_url(url)}")
        parts = urlsplit(piece)
        try:
            sentinels.append((parts.hostname or "127.0.0.1", parts.port or 26379))
        except ValueError:
            raise BadURLError(f"bad port in {mask_url(url)}") from None
        if parts.password is not None:
            password = unquote(parts.password)
            username = unquote(parts.username) if parts.username else None
        if parts.path.strip("/"):
            db = _db_from_path(parts.path, url)
        query.update(parse_qsl(parts.query))
    name = master_name or query.get("master_name")
    if not name:
        raise ConfigurationError(
            f"sentinel URL {mask_url(url)} needs a service name: set broker_transport_options"
            " = {'master_name': 'mymaster'} (or ?master_name= in the URL)"
        )
    return RedisTarget(
        url=url,
        db=db,
        username=username,
        password=password,
        sentinels=tuple(sentinels),
        master_name=name,
        **{**timeouts, **_common_options(query, url)},
    )


def _client_kwargs(target: RedisTarget, retries: int) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "db": target.db,
        "username": target.username,
        "password": target.password,
        "socket_timeout": target.socket_timeout,
        "socket_connect_timeout": target.connect_timeout,
        # redis-py's own retry hides whether a command ran; callers that care
        # (the fetch script) ask for 0 and recover themselves.
        "retry": Retry(NoBackoff(), retries),
        "health_check_interval": 0,
    }
    if target.ssl:
        kwargs["ssl"] = True
        kwargs.update(target.ssl_options)
    return kwargs


def make_sync_client(target: RedisTarget, *, retries: int = 1) -> redis.Redis:
    """A redis-py sync client (pooled) for ``target``; no I/O happens here."""
    kwargs = _client_kwargs(target, retries)
    if target.sentinels:
        kwargs.pop("db")
        sentinel = redis.sentinel.Sentinel(  # type: ignore[no-untyped-call]
            list(target.sentinels),
            socket_timeout=target.connect_timeout,
            sentinel_kwargs={"password": target.password} if target.password else None,
        )
        client: redis.Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
            target.master_name or "", db=target.db, **kwargs
        )
        return client
    if target.unix_path:
        kwargs.pop("ssl", None)
        return redis.Redis(unix_socket_path=target.unix_path, **kwargs)
    return redis.Redis(host=target.host, port=target.port, **kwargs)


def make_async_client(target: RedisTarget, *, retries: int = 1) -> redis.asyncio.Redis:
    """A redis-py asyncio client (pooled) for ``target``; no I/O happens here.

    Its connections write as :class:`BoundedWrite` says (no task per command).
    """
    kwargs = _client_kwargs(target, retries)
    aclient: redis.asyncio.Redis
    if target.sentinels:
        kwargs.pop("db")
        sentinel = redis.asyncio.sentinel.Sentinel(  # type: ignore[no-untyped-call]
            list(target.sentinels),
            socket_timeout=target.connect_timeout,
            sentinel_kwargs={"password": target.password} if target.password else None,
        )
        aclient = sentinel.master_for(target.master_name or "", db=target.db, **kwargs)
    elif target.unix_path:
        kwargs.pop("ssl", None)
        aclient = redis.asyncio.Redis(unix_socket_path=target.unix_path, **kwargs)
    else:
        aclient = redis.asyncio.Redis(host=target.host, port=target.port, **kwargs)
    pool = aclient.connection_pool
    pool.connection_class = bounded_write_class(pool.connection_class)
    return aclient


class BoundedWrite:
    """Mixed into redis-py's asyncio connection classes: a command write that costs
    no task and no loop turn, and still cannot hang.

    redis-py bounds every write by the socket timeout with ``asyncio.wait_for``,
    which runs the write as a task of its own: three loop turns and a task per
    command, about half the event-loop work of a worker's round trip. Here the
    command is handed to the transport, and only when the transport could not
    pass it all to the kernel at once (its buffer is not empty: a server that
    stopped reading, a reply backlog) is the flow-control wait bounded, by
    ``asyncio.timeout`` (no task either). With an empty buffer the stream is
    not paused, so ``drain()`` returns without waiting (it still reports a lost
    connection). Errors are redis-py's, as from its own write: a timeout is
    ``TimeoutError("Timeout writing to socket")``, a socket error a
    ``ConnectionError``, and the connection is dropped after any failure (a
    half-written command must not reach the next caller).
    """

    socket_timeout: float | None
    _writer: Any

    if TYPE_CHECKING:
        @property
        def is_connected(self) -> bool: ...

        async def connect_check_health(self, check_health: bool = True) -> None: ...

        async def check_health(self) -> None: ...

        async def disconnect(self, nowait: bool = False) -> None: ...

    async def send_packed_command(
        self, command: bytes | str | Iterable[bytes], check_health: bool = True
    ) -> None:
        if not self.is_connected:
            await self.connect_check_health(check_health=False)
        if check_health:
            await self.check_health()
        if isinstance(command, str):
            command = command.encode()
        if isinstance(command, bytes):
            command = [command]
        writer = self._writer
        try:
            writer.writelines(command)
            if self.socket_timeout and writer.transport.get_write_buffer_size():
                async with asyncio.timeout(self.socket_timeout):
                    await writer.drain()
            else:
                await writer.drain()
        except TimeoutError:
            await self.disconnect(nowait=True)
            raise redis.exceptions.TimeoutError("Timeout writing to socket") from None
        except OSError as exc:
            await self.disconnect(nowait=True)
            code, text = exc.args if len(exc.args) == 2 else ("UNKNOWN", exc)
            raise redis.exceptions.ConnectionError(
                f"Error {code} while writing to socket. {text}.") from exc
        except BaseException:
            await self.disconnect(nowait=True)
            raise


_BOUNDED: dict[type, type] = {}


def bounded_write_class(base: type) -> type:
    """``base`` (a redis-py asyncio connection class) with :class:`BoundedWrite` mixed in."""
    if issubclass(base, BoundedWrite):
        return base
    made = _BOUNDED.get(base)
    if made is None:
        made = _BOUNDED[base] = type(f"BoundedWrite{base.__name__}", (BoundedWrite, base), {})
    return made


def translate_error(
    exc: BaseException,
    target: RedisTarget,
    doing: str,
    unreachable: type[OperationalError] = BrokerUnreachable,
) -> OperationalError:
    """The celeriac error for a redis-py failure while ``doing`` something.

    Connection failures become ``unreachable`` (``BrokerUnreachable`` for the
    broker; result stores pass plain ``OperationalError``).
    """
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, CONNECTION_ERRORS):
        return unreachable(f"cannot reach Redis at {target.masked} ({doing}): {detail}")
    return OperationalError(f"Redis at {target.masked} failed ({doing}): {detail}")


@contextmanager
def translating(
    target: RedisTarget, doing: str, unreachable: type[OperationalError] = BrokerUnreachable
) -> Iterator[None]:
    """Translate any redis-py error raised inside the block (sync code only)."""
    try:
        yield
    except OperationalError:
        raise
    except (redis.exceptions.RedisError, OSError) as exc:
        raise translate_error(exc, target, doing, unreachable) from exc


class AsyncScriptCaller:
    """One bare EVALSHA per call, on asyncio (the sync one is ``_redis_sync_script``).

    A worker's hot calls (the fetch script, the result write) are one script
    each; redis-py's command path around them (pool checkout and return,
    argument inspection, hooks, retry wrapper) costs as much client CPU as the
    round trip. One connection of the pool is kept for these calls; a call made
    while another is in flight on it borrows a pooled connection instead. The
    kept connection is checked before each use as the pool checks its own (a
    readable socket -- closed by a restart, a stray reply -- is reconnected),
    and dropped on any error but a whole error reply, so a cancelled or
    half-read call never leaves bytes for the next one. Errors are redis-py's.
    """

    def __init__(self, client: redis.asyncio.Redis) -> None:
        self._client = client
        self._shas: dict[str, str] = {}
        self._conn: Any = None
        self._busy = False

    async def __call__(self, source: str, keys: list[str], args: list[Any]) -> Any:
        """Run ``source`` with ``keys`` and ``args``; return Redis's raw reply."""
        sha = self._shas.get(source)
        if sha is None:
            sha = self._shas[source] = str(await self._client.script_load(source))
        if self._busy:
            pool = self._client.connection_pool
            conn = await pool.get_connection()  # type: ignore[no-untyped-call]
            try:
                return await self._run(conn, source, sha, keys, args)
            finally:
                await pool.release(conn)
        self._busy = True
        try:
            return await self._run(await self._kept(), source, sha, keys, args)
        finally:
            self._busy = False

    async def _kept(self) -> Any:
        conn = self._conn
        if conn is None:
            conn = self._conn = await self._client.connection_pool.get_connection()  # type: ignore[no-untyped-call]
            return conn
        if not conn.is_connected:  # dropped after an error: a new socket
            await conn.connect()
            return conn
        try:
            ready = not await conn.can_read()
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError):
            ready = False
        if not ready:
            await conn.disconnect()
            await conn.connect()
        return conn

    @staticmethod
    async def _run(conn: Any, source: str, sha: str, keys: list[str], args: list[Any]) -> Any:
        try:
            await conn.send_packed_command(
                [hiredis.pack_command(("EVALSHA", sha, len(keys), *keys, *args))], False)
            try:
                return await conn.read_response()
            except redis.exceptions.NoScriptError:
                await conn.send_packed_command(
                    [hiredis.pack_command(("EVAL", source, len(keys), *keys, *args))], False)
                return await conn.read_response()
        except redis.exceptions.ResponseError:
            raise  # a whole error reply was read: the connection is fine
        except BaseException:
            # a half-written command or half-read reply must not reach the next caller
            await conn.disconnect(nowait=True)
            raise

    async def close(self) -> None:
        """Give the kept connection back to the pool (before the pool is closed)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            await self._client.connection_pool.release(conn)
