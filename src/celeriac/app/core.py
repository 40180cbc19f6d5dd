"""``App``: the definition side of celeriac (Celery's ``Celery`` object).

An app holds the configuration (``app.conf``), the task registry
(``app.tasks``), the router, and lazily created connections to the broker
(``app.transport``) and the result store (``app.backend``). It sends tasks
(``send_task``/``asend_task``) and makes result handles (``AsyncResult``).
Nothing connects until the first send or read.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import os
import socket
import threading
import uuid
import weakref
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from typing import Any, Concatenate, Literal, ParamSpec, TypeVar, overload

from celeriac import signals
from celeriac.app.broadcast import abroadcast, broadcast
from celeriac.app.builtins import register_builtins
from celeriac.app.producer import Producer
from celeriac.app.registry import TaskRegistry
from celeriac.app.result import AsyncResult, GroupResult
from celeriac.app.routing import Router
from celeriac.app.security import setup_security
from celeriac.app.task import Task, default_task_name
from celeriac.backends.base import BackendOptions, ResultBackend
from celeriac.backends.registry import backend_for_url
from celeriac.canvas import set_app_resolver
from celeriac.config import Config
from celeriac.errors import AppImportError, TaskRevokedError
from celeriac.protocol import states
from celeriac.protocol.clock import LamportClock
from celeriac.protocol.exceptions import exception_to_wire
from celeriac.protocol.message import new_task_id
from celeriac.protocol.results import ResultMeta, now_iso
from celeriac.protocol.revoke import revoke_request
from celeriac.transports.base import Transport, TransportOptions
from celeriac.transports.registry import transport_for_url

__all__ = ["App", "current_app", "shared_task"]

P = ParamSpec("P")
R = TypeVar("R")

_current: App | None = None
_shared: list[tuple[Callable[..., Any], dict[str, Any]]] = []
_shared_lock = threading.Lock()


def current_app() -> App:
    """The app most recently created (or set current); a default one if none."""
    global _current
    if _current is None:
        _current = App("default")
    return _current


# Signatures made without an app (``signature("tasks.add")``) resolve it here.
set_app_resolver(current_app)


class App:
    """A celeriac application: configuration, tasks and connections."""

    def __init__(
        self,
        main: str | None = None,
        *,
        broker: str | None = None,
        backend: str | None = None,
        include: Sequence[str] | None = None,
        config_source: Any = None,
        set_as_current: bool = True,
        task_cls: type[Task[Any, Any]] | None = None,
        autofinalize: bool = True,
        namespace: str | None = None,
        **settings: Any,
    ) -> None:
        self.main = main
        self.conf = Config()
        if config_source is not None:
            self.conf.config_from_object(config_source, namespace=namespace)
        if settings:
            self.conf.update(settings)
        if broker is not None:
            self.conf.broker_url = broker
        if backend is not None:
            self.conf.result_backend = backend
        if include:
            self.conf.include = tuple(self.conf.include or ()) + tuple(include)
        self.task_cls: type[Task[Any, Any]] = task_cls or Task
        self.tasks = TaskRegistry()
        self.oid = str(uuid.uuid4())
        #: The app's Lamport clock: events and control messages carry it (as in Celery).
        self.clock = LamportClock()
        self.origin = f"gen{os.getpid()}@{socket.gethostname()}"
        self.on_after_configure = signals.Signal("on_after_configure")
        self.on_after_finalize = signals.Signal("on_after_finalize")
        self._finalized = False
        self._producer: Producer | None = None
        self._router: Router | None = None
        self._router_key: Any = None
        self._transport: Transport | None = None
        # Async clients are bound to the event loop that made them: one per loop.
        self._atransports: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Transport] = (
            weakref.WeakKeyDictionary()
        )
        self._abackends: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, ResultBackend
        ] = weakref.WeakKeyDictionary()
        self._backend: ResultBackend | None = None
        self._backend_resolved = False
        self._lock = threading.Lock()
        self._loop_count = 0
        register_builtins(self)
        with _shared_lock:
            for fun, opts in _shared:
                self._register(fun, opts)
        if set_as_current:
            global _current
            _current = self

    def __repr__(self) -> str:
        return f"<Celeriac {self.main or '__main__'} at {id(self):#x}>"

    # -- tasks ------------------------------------------------------------------
    @overload
    def task(self, fun: Callable[P, Coroutine[Any, Any, R]]) -> Task[P, R]: ...

    @overload
    def task(self, fun: Callable[P, R]) -> Task[P, R]: ...

    @overload
    def task(
        self, fun: None = None, *, bind: Literal[True], **options: Any
    ) -> _BoundTaskDecorator: ...

    @overload
    def task(
        self, fun: None = None, *, bind: Literal[False] = ..., **options: Any
    ) -> _TaskDecorator: ...

    def task(self, fun: Callable[..., Any] | None = None, **options: Any) -> Any:
        """Register a function as a task: ``@app.task`` or ``@app.task(name=..., bind=True)``."""
        if fun is not None and callable(fun) and not options:
            return self._register(fun, {})

        def decorator(f: Callable[..., Any]) -> Task[Any, Any]:
            return self._register(f, options)

        return decorator

    def _register(self, fun: Callable[..., Any], options: dict[str, Any]) -> Task[Any, Any]:
        opts = dict(options)
        base = opts.pop("base", None) or self.task_cls
        name = opts.get("name") or default_task_name(fun, self.main)
        existing: Task[Any, Any] | None = self.tasks.get(name)
        if existing is not None and existing.run is fun:
            return existing
        task: Task[Any, Any] = base(self, fun, **opts)
        self.tasks.register(task)
        return task

    def send_task(
        self,
        name: str,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        *,
        task: Any = None,
        **options: Any,
    ) -> AsyncResult[Any]:
        """Send task ``name`` (registered here or not) and return its result handle."""
        if task is None:
            task = self.tasks.get(name)
        producer = self.producer
        plan = producer.plain(name, task) if not options else None
        if plan is not None:
            # A call with no options (``delay()``): the same message, with the
            # work that is the same for every call of this task done once.
            task_id = new_task_id()
            if not plan.ignore_result:
                backend = self.backend
                if backend is not None and backend.pushes:
                    backend.subscribe_early(task_id)
            producer.send_plain_sync(plan, task_id, tuple(args or ()), dict(kwargs or {}))
            return AsyncResult(task_id, self, task_name=name)
        out = producer.build(name, tuple(args or ()), dict(kwargs or {}), options, task)
        backend = self.backend
        if backend is not None and backend.pushes and not out.message.ignore_result:
            backend.subscribe_early(out.message.id)
        producer.send_sync(out, options)
        return AsyncResult(out.message.id, self, task_name=name)

    async def asend_task(
        self,
        name: str,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        *,
        task: Any = None,
        **options: Any,
    ) -> AsyncResult[Any]:
        """Async :meth:`send_task`: publishes over the transport's async client."""
        if task is None:
            task = self.tasks.get(name)
        backend = self.backend
        if backend is not None and backend.pushes:
            # The loop's own backend: the one ``await result`` reads on this loop.
            backend = await self.abackend()
            if backend is not None and backend.reply_to and "reply_to" not in options:
                options = {**options, "reply_to": backend.reply_to}
        else:
            backend = None
        out = self.producer.build(name, tuple(args or ()), dict(kwargs or {}), options, task)
        if backend is not None and not out.message.ignore_result:
            await backend.asubscribe_early(out.message.id)
        await self.producer.send_async(out, options)
        return AsyncResult(out.message.id, self, task_name=name)

    def send_many(
        self,
        name: str,
        args_list: Iterable[Sequence[Any]],
        kwargs_list: Iterable[Mapping[str, Any]] | None = None,
        *,
        task: Any = None,
        chunk_size: int = 1000,
        **options: Any,
    ) -> list[AsyncResult[Any]]:
        """Send task ``name`` once per item of ``args_list``, batched per ``chunk_size``.

        The bulk form of :meth:`send_task`: the same options apply to every call
        (except ``task_id``: each call gets a fresh one), and each chunk is one
        transport batch (one round trip on Redis) instead of one per task.
        ``kwargs_list``, when given, pairs with ``args_list`` item by item.
        ``countdown`` and ``expires`` count from one clock reading for the whole
        send. Each chunk's headers are built once and only the ids, arguments and
        bodies per call (see :meth:`Producer.build_batches`).
        """
        task = self.tasks.get(name) if task is None else task
        results: list[AsyncResult[Any]] = []
        producer = self.producer
        for chunk in producer.build_batches(name, args_list, kwargs_list, options, task,
                                            chunk_size):
            if isinstance(chunk, list):
                producer.send_many_sync(chunk, options)
                ids = [o.message.id for o in chunk]
            else:
                producer.send_batch_sync(chunk, options)
                ids = chunk.ids
            results += [AsyncResult(i, self, task_name=name) for i in ids]
        return results

    async def asend_many(
        self,
        name: str,
        args_list: Iterable[Sequence[Any]],
        kwargs_list: Iterable[Mapping[str, Any]] | None = None,
        *,
        task: Any = None,
        chunk_size: int = 1000,
        **options: Any,
    ) -> list[AsyncResult[Any]]:
        """Async :meth:`send_many`."""
        task = self.tasks.get(name) if task is None else task
        results: list[AsyncResult[Any]] = []
        producer = self.producer
        for chunk in producer.build_batches(name, args_list, kwargs_list, options, task,
                                            chunk_size):
            if isinstance(chunk, list):
                await producer.send_many_async(chunk, options)
                ids = [o.message.id for o in chunk]
            else:
                await producer.send_batch_async(chunk, options)
                ids = chunk.ids
            results += [AsyncResult(i, self, task_name=name) for i in ids]
        return results

    def AsyncResult(self, task_id: str, **kwargs: Any) -> AsyncResult[Any]:
        """A result handle for ``task_id``."""
        return AsyncResult(task_id, self, **kwargs)

    def GroupResult(self, group_id: str | None = None, results: Sequence[Any] = ()) -> GroupResult:
        """A group result handle."""
        return GroupResult(group_id, list(results), app=self)

    def store_state(self, task_id: str, state: str, meta: Any) -> None:
        """Write a custom state for ``task_id`` (``Task.update_state``)."""
        backend = self.backend
        if backend is None:
            return
        result = exception_to_wire(meta) if isinstance(meta, BaseException) else meta
        backend.store_sync(ResultMeta(task_id, state, result, date_done=now_iso()))

    def revoke(self, task_id: str | Sequence[str], *, terminate: bool = False,
               signal: str | int = "SIGTERM", destination: Sequence[str] | None = None) -> None:
        """Revoke one task id (or several) on every worker (Celery's ``control.revoke``).

        The ids are stored REVOKED in the result store and a pidbox ``revoke``
        request is broadcast: workers discard those messages (now or when they
        arrive) and, with ``terminate=True``, stop them if running, sending
        ``signal`` to the prefork child. Workers started with ``--statedb``
        remember revoked ids across restarts.
        """
        ids = [task_id] if isinstance(task_id, str) else list(task_id)
        self._store_revoked(ids)
        broadcast(self, revoke_request(ids, terminate=terminate, signal=signal,
                                       destination=destination))

    async def arevoke(self, task_id: str | Sequence[str], *, terminate: bool = False,
                      signal: str | int = "SIGTERM",
                      destination: Sequence[str] | None = None) -> None:
        """Async :meth:`revoke` (the result store is written off the loop)."""
        ids = [task_id] if isinstance(task_id, str) else list(task_id)
        await asyncio.to_thread(self._store_revoked, ids)
        await abroadcast(self, revoke_request(ids, terminate=terminate, signal=signal,
                                              destination=destination))

    def _store_revoked(self, ids: Sequence[str]) -> None:
        backend = self.backend
        if backend is None:
            return
        wire = exception_to_wire(TaskRevokedError("revoked"))
        for one in ids:
            backend.store_sync(ResultMeta(one, states.REVOKED, wire, children=None,
                                          date_done=now_iso()))

    def attach_worker_rooms(self, worker: Any) -> None:
        """Called by each worker this app builds, before it runs: rooms above the
        worker (remote control) attach to it here. The plain App attaches none;
        ``celeriac.Celery`` attaches the remote-control service."""

    def setup_security(self, allowed_serializers: Sequence[str] | None = None,
                       key: str | None = None, key_password: bytes | str | None = None,
                       cert: str | None = None, store: str | None = None,
                       digest: str | None = None, serializer: str = "json") -> None:
        """Sign task messages (the ``auth`` serializer) and refuse unsigned ones.

        Paths default to ``security_key``, ``security_certificate`` and
        ``security_cert_store``; see :mod:`celeriac.app.security`.
        """
        setup_security(self, allowed_serializers, key, key_password, cert, store, digest,
                       serializer)

    # -- configuration --------------------------------------------------------------
    def config_from_object(self, obj: Any, *, namespace: str | None = None,
                           silent: bool = False, force: bool = False) -> None:
        """Load settings from a module, module name, class or object (Celery's API)."""
        self.conf.config_from_object(obj, namespace=namespace, silent=silent)

    def config_from_envvar(self, variable_name: str, *, silent: bool = False) -> None:
        """Load settings from the module named by an environment variable."""
        self.conf.config_from_envvar(variable_name, silent=silent)

    def autodiscover_tasks(self, packages: Iterable[str] | Callable[[], Iterable[str]] = (),
                           related_name: str = "tasks", force: bool = False) -> None:
        """Import ``<package>.<related_name>`` for each package (Celery's API)."""
        names = packages() if callable(packages) else packages
        for package in names:
            module = f"{package}.{related_name}" if related_name else package
            try:
                importlib.import_module(module)
            except ModuleNotFoundError as exc:
                if exc.name != module:
                    raise

    def loader_import_default_modules(self) -> None:
        """Import every module in ``include``/``imports`` (the worker calls this)."""
        settings = self.conf.settings
        for module in tuple(settings.include) + tuple(settings.imports):
            try:
                importlib.import_module(module)
            except ImportError as exc:
                raise AppImportError(
                    f"cannot import module {module!r} listed in include/imports: {exc}"
                ) from exc

    def finalize(self) -> None:
        """Import configured modules and fire ``on_after_configure``/``on_after_finalize``."""
        if self._finalized:
            return
        self._finalized = True
        self.loader_import_default_modules()
        self.on_after_configure.send(sender=self, source=self.conf)
        self.on_after_finalize.send(sender=self)

    def add_periodic_task(self, schedule: Any, sig: Any, args: Sequence[Any] = (),
                          kwargs: Mapping[str, Any] | None = None, name: str | None = None,
                          **opts: Any) -> str:
        """Add an entry to ``beat_schedule`` (as ``sender.add_periodic_task`` in Celery)."""
        sig_dict = sig.as_dict() if hasattr(sig, "as_dict") else dict(sig)
        key = name or f"{sig_dict['task']}({sig_dict.get('args')!r}, {sig_dict.get('kwargs')!r})"
        schedule_table = dict(self.conf.beat_schedule or {})
        schedule_table[key] = {
            "task": sig_dict["task"],
            "schedule": schedule,
            "args": tuple(sig_dict.get("args") or args),
            "kwargs": dict(sig_dict.get("kwargs") or kwargs or {}),
            "options": {**(sig_dict.get("options") or {}), **opts},
        }
        self.conf.beat_schedule = schedule_table
        return key

    # -- connections --------------------------------------------------------------
    @property
    def producer(self) -> Producer:
        """The shared message producer."""
        if self._producer is None:
            self._producer = Producer(self)
        return self._producer

    @property
    def router(self) -> Router:
        """The router built from ``task_routes``/``task_queues`` (rebuilt when they change)."""
        settings = self.conf.settings
        key = id(settings)
        if self._router is None or self._router_key != key:
            self._router = Router(
                settings.task_routes, settings.task_queues, settings.task_default_queue,
                settings.task_default_exchange, settings.task_default_routing_key,
                settings.task_default_priority,
            )
            self._router_key = key
        return self._router

    def transport_options(self) -> TransportOptions:
        """Explicit transport knobs from the settings."""
        s = self.conf.settings
        extra = dict(s.broker_transport_options or {})
        return TransportOptions(
            lease_seconds=float(extra.pop("lease_seconds", s.worker_lease_seconds)),
            poll_interval=float(extra.pop("polling_interval", 0.5)),
            connect_timeout=float(s.broker_connection_timeout),
            connect_retry=bool(s.broker_connection_retry),
            connect_max_retries=s.broker_connection_max_retries,
            ssl=s.broker_use_ssl,
            extra=extra,
        )

    def backend_options(self) -> BackendOptions:
        """Explicit backend knobs from the settings."""
        s = self.conf.settings
        accept = s.result_accept_content or s.accept_content
        return BackendOptions(
            expires=s.result_expires,
            serializer=s.result_serializer,
            accept=tuple(accept),
            extended=bool(s.result_extended),
            extra={
                # Redis result stores (the transport options may override them).
                "socket_timeout": s.redis_socket_timeout,
                "socket_connect_timeout": s.redis_socket_connect_timeout,
                "use_ssl": s.redis_backend_use_ssl,
                **(s.result_backend_transport_options or {}),
            },
        )

    def new_transport(self) -> Transport:
        """A fresh transport for the configured broker (the caller owns it)."""
        return transport_for_url(self.conf.settings.effective_broker_url(),
                                 self.transport_options())

    @property
    def transport(self) -> Transport:
        """The transport used by sync sends in this process."""
        if self._transport is None:
            with self._lock:
                if self._transport is None:
                    self._transport = self.new_transport()
        return self._transport

    async def atransport(self) -> Transport:
        """The connected transport used by async sends on the running loop."""
        loop = asyncio.get_running_loop()
        transport = self._atransports.get(loop)
        if transport is None:
            transport = self.new_transport()
            await transport.connect()
            self._atransports[loop] = transport
        return transport

    async def abackend(self) -> ResultBackend | None:
        """The connected result backend for async reads on the running loop."""
        loop = asyncio.get_running_loop()
        backend = self._abackends.get(loop)
        if backend is None:
            # Each loop gets its own reply queue (rpc://): two consumers of one
            # queue, a sync get() and an await, would split each other's replies.
            self._loop_count += 1
            backend = self.new_backend(reply_queue=f"{self.oid}.{self._loop_count}")
            if backend is None:
                return None
            await backend.connect()
            self._abackends[loop] = backend
        return backend

    def new_backend(self, *, reply_queue: str | None = None) -> ResultBackend | None:
        """A fresh result backend, or ``None`` when results are disabled.

        ``reply_queue`` names the queue replies come back on for backends that
        use one (rpc://); by default the app's ``oid``, the tasks' ``reply_to``.
        """
        url = self.conf.settings.effective_result_backend()
        if not url:
            return None
        options = self.backend_options()
        if url.partition("://")[0].lower() == "rpc":
            # Replies travel over the broker to this app's reply queue (its tasks' reply_to).
            extra = {"broker_url": self.conf.settings.effective_broker_url(),
                     "broker_use_ssl": self.conf.settings.broker_use_ssl,
                     "oid": reply_queue or self.oid}
            options = dataclasses.replace(options, extra={**extra, **options.extra})
        return backend_for_url(url, options)

    @property
    def backend(self) -> ResultBackend | None:
        """The result store of this process (``None`` when results are disabled)."""
        if not self._backend_resolved:
            with self._lock:
                if not self._backend_resolved:
                    self._backend = self.new_backend()
                    self._backend_resolved = True
        return self._backend

    def after_fork(self) -> None:
        """Forget connections inherited from the parent (prefork children call this).

        The sockets belong to the parent: they are dropped, not closed, and new
        ones open lazily on first use in the child.
        """
        self._transport = None
        self._atransports = weakref.WeakKeyDictionary()
        self._abackends = weakref.WeakKeyDictionary()
        self._backend = None
        self._backend_resolved = False
        self._producer = None

    def close(self) -> None:
        """Close the sync connections this app opened."""
        if self._transport is not None:
            self._transport.close_sync()
            self._transport = None
        if self._backend is not None:
            self._backend.close_sync()
            self._backend = None
            self._backend_resolved = False

    async def aclose(self) -> None:
        """Close the async connections this app opened on the running loop."""
        loop = asyncio.get_running_loop()
        transport = self._atransports.pop(loop, None)
        if transport is not None:
            await transport.close()
        backend = self._abackends.pop(loop, None)
        if backend is not None:
            await backend.close()


class _TaskDecorator:
    """The type of ``app.task(...)`` with options: a decorator keeping the signature."""

    @overload
    def __call__(self, fun: Callable[P, Coroutine[Any, Any, R]]) -> Task[P, R]: ...

    @overload
    def __call__(self, fun: Callable[P, R]) -> Task[P, R]: ...

    def __call__(self, fun: Callable[..., Any]) -> Any:  # pragma: no cover - typing only
        raise TypeError


class _BoundTaskDecorator:
    """The type of ``app.task(bind=True, ...)``: the first parameter is the task itself."""

    @overload
    def __call__(
        self, fun: Callable[Concatenate[Any, P], Coroutine[Any, Any, R]]
    ) -> Task[P, R]: ...

    @overload
    def __call__(self, fun: Callable[Concatenate[Any, P], R]) -> Task[P, R]: ...

    def __call__(self, fun: Callable[..., Any]) -> Any:  # pragma: no cover - typing only
        raise TypeError


def shared_task(*args: Any, **options: Any) -> Any:
    """Define a task for every app (Celery's ``@shared_task``), with or without options."""

    def register(fun: Callable[..., Any]) -> Task[Any, Any]:
        with _shared_lock:
            _shared.append((fun, options))
        return current_app()._register(fun, options)

    if len(args) == 1 and callable(args[0]) and not options:
        return register(args[0])
    return register
