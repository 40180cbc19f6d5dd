"""Result handles: ``AsyncResult[R]``, ``GroupResult`` and ``EagerResult``.

A handle is a task id plus the app whose backend holds the outcome. Reading
``state`` asks the backend; ``get()`` waits (push-based where the backend can
push) and returns the value or raises the task's exception, rebuilt as its
original type when that type can be imported safely. Once a result is ready its
meta is cached, so repeated reads cost nothing. ``await result`` works too.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from celeriac.errors import ImproperlyConfigured, TaskRevokedError, TimeoutError  # noqa: A004
from celeriac.protocol import states
from celeriac.protocol.exceptions import exception_from_wire
from celeriac.protocol.results import ResultMeta

if TYPE_CHECKING:
    from celeriac.app.core import App
    from celeriac.backends.base import ResultBackend

__all__ = ["AsyncResult", "EagerResult", "GroupResult", "ResultSet", "result_from_tuple"]

R = TypeVar("R")


class AsyncResult(Generic[R]):
    """The outcome of a task that was sent to a worker."""

    def __init__(
        self,
        id: str,  # noqa: A002 - Celery's parameter name
        app: App | None = None,
        *,
        task_name: str | None = None,
        parent: AsyncResult[Any] | None = None,
        backend: ResultBackend | None = None,
    ) -> None:
        if app is None:
            from celeriac.app.core import current_app  # core imports this module

            app = current_app()
        self.id = id
        self.app = app
        self.task_name = task_name
        self.parent = parent
        self._backend = backend
        self._meta: ResultMeta | None = None

    # -- identity ---------------------------------------------------------------
    @property
    def task_id(self) -> str:
        """Same as :attr:`id` (Celery's old name)."""
        return self.id

    def __repr__(self) -> str:
        return f"<AsyncResult: {self.id}>"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, AsyncResult):
            return self.id == other.id
        if isinstance(other, str):
            return self.id == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.id)

    def as_tuple(self) -> list[Any]:
        """Celery's nested tuple form: ``[[id, parent], None]``."""
        parent = self.parent.as_tuple() if self.parent is not None else None
        return [[self.id, parent], None]

    @property
    def backend(self) -> ResultBackend:
        """The result store this handle reads from."""
        if self._backend is None:
            backend = self.app.backend
            if backend is None:
                raise ImproperlyConfigured(
                    "no result backend is configured: pass backend='sqlite://' (or redis://...) "
                    "to Celery(...) or set result_backend to read task results"
                )
            self._backend = backend
        return self._backend

    # -- state --------------------------------------------------------------------
    def _fetch(self) -> ResultMeta | None:
        if self._meta is not None:
            return self._meta
        meta = self.backend.get_sync(self.id)
        if meta is not None and meta.status in states.READY_STATES:
            self._meta = meta
        return meta

    def _cache(self, meta: ResultMeta) -> ResultMeta:
        if meta.status in states.READY_STATES:
            self._meta = meta
        return meta

    @property
    def state(self) -> str:
        """PENDING, RECEIVED, STARTED, RETRY, SUCCESS, FAILURE, REVOKED or a custom state."""
        meta = self._fetch()
        return meta.status if meta is not None else states.PENDING

    status = state

    def ready(self) -> bool:
        """Whether the task has finished (succeeded, failed or was revoked)."""
        return self.state in states.READY_STATES

    def successful(self) -> bool:
        """Whether the task finished and returned a value."""
        return self.state == states.SUCCESS

    def failed(self) -> bool:
        """Whether the task finished by raising."""
        return self.state == states.FAILURE

    @property
    def result(self) -> Any:
        """The return value, or the exception instance when it failed (no raise)."""
        meta = self._fetch()
        return None if meta is None else _value_of(meta)

    info = result

    @property
    def traceback(self) -> str | None:
        """The formatted traceback of a failed task."""
        meta = self._fetch()
        return None if meta is None else meta.traceback

    @property
    def date_done(self) -> str | None:
        """When the task finished (ISO-8601), if it has."""
        meta = self._fetch()
        return None if meta is None else meta.date_done

    @property
    def children(self) -> list[AsyncResult[Any] | GroupResult] | None:
        """Results of tasks this task started (chain steps, callbacks)."""
        meta = self._fetch()
        if meta is None or not meta.children:
            return [] if meta is not None else None
        return [result_from_tuple(child, self.app) for child in meta.children]

    @property
    def name(self) -> str | None:
        """The task name (needs ``result_extended`` unless known from sending)."""
        meta = self._fetch()
        return (meta.name if meta is not None else None) or self.task_name

    @property
    def args(self) -> Any:
        """Positional arguments (with ``result_extended``)."""
        meta = self._fetch()
        return None if meta is None else meta.args

    @property
    def kwargs(self) -> Any:
        """Keyword arguments (with ``result_extended``)."""
        meta = self._fetch()
        return None if meta is None else meta.kwargs

    # -- waiting --------------------------------------------------------------------
    def get(
        self,
        timeout: float | None = None,
        propagate: bool = True,
        interval: float = 0.5,
        disable_sync_subtasks: bool = True,
        follow_parents: bool = True,
        **_: Any,
    ) -> R:
        """Wait for the task and return its value; re-raise its exception if it failed.

        Raises :class:`celeriac.errors.TimeoutError` after ``timeout`` seconds.
        """
        if follow_parents and propagate and self.parent is not None:
            self.parent._raise_if_failed()
        meta = self._meta if self._meta is not None else self._cache(
            self.backend.wait_sync(self.id, timeout)
        )
        return self._outcome(meta, propagate)

    wait = get

    async def aget(self, timeout: float | None = None, propagate: bool = True) -> R:
        """Async :meth:`get`: waits without blocking the event loop."""
        if self._meta is not None:
            return self._outcome(self._meta, propagate)
        backend = self._backend if self._backend is not None else await self.app.abackend()
        if backend is None:
            backend = self.backend  # raises the "no result backend" error
        meta = self._cache(await backend.wait(self.id, timeout))
        return self._outcome(meta, propagate)

    def __await__(self) -> Generator[Any, None, R]:
        return self.aget().__await__()

    def _outcome(self, meta: ResultMeta, propagate: bool) -> R:
        value = _value_of(meta)
        if propagate and meta.status in states.PROPAGATE_STATES:
            raise value
        result: R = value
        return result

    def _raise_if_failed(self) -> None:
        meta = self._fetch()
        if meta is not None and meta.status in states.PROPAGATE_STATES:
            raise _value_of(meta)
        if self.parent is not None:
            self.parent._raise_if_failed()

    def forget(self) -> None:
        """Delete the stored result."""
        self._meta = None
        self.backend.forget_sync(self.id)

    def revoke(
        self, connection: Any = None, terminate: bool = False, signal: str = "SIGTERM",
        wait: bool = False, timeout: float | None = None,
    ) -> None:
        """Ask every worker not to run this task (or to kill it with ``terminate``)."""
        self.app.revoke(self.id, terminate=terminate, signal=signal)

    # -- graph --------------------------------------------------------------------
    def iterdeps(self, intermediate: bool = False) -> Iterator[tuple[Any, Any]]:
        """Walk this result and its children depth-first as ``(parent, child)`` pairs."""
        stack: list[tuple[Any, Any]] = [(None, self)]
        while stack:
            parent, node = stack.pop()
            yield parent, node
            kids = node.children if isinstance(node, AsyncResult) else node.results
            for child in reversed(kids or []):
                stack.append((node, child))

    def collect(self, intermediate: bool = False, **kwargs: Any) -> Iterator[tuple[Any, Any]]:
        """Like :meth:`iterdeps`, yielding ``(result, value)`` as each becomes ready."""
        for _, node in self.iterdeps(intermediate=intermediate):
            if isinstance(node, AsyncResult):
                yield node, node.get(**kwargs)
            else:
                yield node, node.get(**kwargs)


class ResultSet:
    """An ordered set of results waited for together."""

    def __init__(self, results: Sequence[AsyncResult[Any]], app: App | None = None) -> None:
        self.results: list[Any] = list(results)
        self.app = app if app is not None else (self.results[0].app if self.results else None)

    def __iter__(self) -> Iterator[AsyncResult[Any]]:
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    def __getitem__(self, index: int) -> AsyncResult[Any]:
        result: AsyncResult[Any] = self.results[index]
        return result

    def ready(self) -> bool:
        """Whether every member has finished."""
        return all(r.ready() for r in self.results)

    def successful(self) -> bool:
        """Whether every member finished successfully."""
        return all(r.successful() for r in self.results)

    def failed(self) -> bool:
        """Whether any member failed."""
        return any(r.failed() for r in self.results)

    def waiting(self) -> bool:
        """Whether any member has not finished."""
        return not self.ready()

    def completed_count(self) -> int:
        """How many members finished successfully."""
        return sum(1 for r in self.results if r.successful())

    def forget(self) -> None:
        """Forget every member's result."""
        for r in self.results:
            r.forget()

    def revoke(self, terminate: bool = False, signal: str = "SIGTERM") -> None:
        """Revoke every member."""
        for r in self.results:
            r.revoke(terminate=terminate, signal=signal)

    def get(self, timeout: float | None = None, propagate: bool = True, **kw: Any) -> list[Any]:
        """Every member's value, in order (see :meth:`join`)."""
        return self.join(timeout=timeout, propagate=propagate)

    def join(self, timeout: float | None = None, propagate: bool = True, **_: Any) -> list[Any]:
        """Wait for all members in order; ``timeout`` bounds the whole wait."""
        deadline = None if timeout is None else time.monotonic() + timeout
        values = []
        for r in self.results:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            if remaining == 0.0 and not r.ready():
                raise TimeoutError(f"the group did not finish within {timeout}s")
            values.append(r.get(timeout=remaining, propagate=propagate))
        return values

    async def aget(self, timeout: float | None = None, propagate: bool = True) -> list[Any]:
        """Async :meth:`join`."""
        return [await r.aget(timeout=timeout, propagate=propagate) for r in self.results]

    def __await__(self) -> Generator[Any, None, list[Any]]:
        return self.aget().__await__()


class GroupResult(ResultSet):
    """The results of a group, with an id that can be saved and restored."""

    def __init__(
        self,
        id: str | None = None,  # noqa: A002
        results: Sequence[AsyncResult[Any]] = (),
        parent: AsyncResult[Any] | None = None,
        app: App | None = None,
    ) -> None:
        super().__init__(results, app=app)
        self.id = id
        self.parent = parent

    def __repr__(self) -> str:
        return f"<GroupResult: {self.id} [{', '.join(r.id for r in self.results)}]>"

    @property
    def children(self) -> list[AsyncResult[Any]]:
        """The member results."""
        return self.results

    def as_tuple(self) -> list[Any]:
        """Celery's nested tuple form of a group result."""
        parent = self.parent.as_tuple() if self.parent is not None else None
        return [[self.id, parent], [r.as_tuple() for r in self.results]]

    def _raise_if_failed(self) -> None:
        # A failed member surfaces through what follows the group (a chord body
        # stores ChordError naming it), so only the group's own parents are checked.
        if self.parent is not None:
            self.parent._raise_if_failed()

    def save(self, backend: ResultBackend | None = None) -> None:
        """Store the member ids so :meth:`restore` can rebuild this result."""
        store = backend or self._app().backend
        if store is None or self.id is None:
            raise ImproperlyConfigured("GroupResult.save() needs a result backend and a group id")
        store.save_group_sync(self.id, [r.id for r in self.results])

    def delete(self, backend: ResultBackend | None = None) -> None:
        """Remove the saved group."""
        store = backend or self._app().backend
        if store is not None and self.id is not None:
            store.forget_group_sync(self.id)

    @classmethod
    def restore(
        cls, id: str, backend: ResultBackend | None = None, app: App | None = None  # noqa: A002
    ) -> GroupResult | None:
        """Rebuild a saved group result, or ``None`` when nothing was saved."""
        if app is None:
            from celeriac.app.core import current_app

            app = current_app()
        store = backend or app.backend
        if store is None:
            raise ImproperlyConfigured("GroupResult.restore() needs a result backend")
        ids = store.restore_group_sync(id)
        if ids is None:
            return None
        return cls(id, [AsyncResult(i, app) for i in ids], app=app)

    def _app(self) -> App:
        if self.app is None:
            from celeriac.app.core import current_app

            return current_app()
        return self.app


class EagerResult(AsyncResult[R]):
    """The outcome of a task run in this process (``apply`` / ``task_always_eager``)."""

    def __init__(
        self, id: str, meta: ResultMeta, app: App, exc: BaseException | None = None  # noqa: A002
    ) -> None:
        super().__init__(id, app)
        self._meta = meta
        self._exc = exc

    @property
    def backend(self) -> ResultBackend:
        raise ImproperlyConfigured("an eager result is not stored in a backend")

    def _outcome(self, meta: ResultMeta, propagate: bool) -> R:
        if self._exc is not None and propagate and meta.status in states.PROPAGATE_STATES:
            raise self._exc
        return super()._outcome(meta, propagate)

    @property
    def result(self) -> Any:
        if self._exc is not None:
            return self._exc
        assert self._meta is not None
        return _value_of(self._meta)

    def forget(self) -> None:
        """Nothing is stored for an eager result."""


def _value_of(meta: ResultMeta) -> Any:
    if meta.status in states.EXCEPTION_STATES:
        if meta.status == states.REVOKED and not isinstance(meta.result, dict):
            return TaskRevokedError("revoked")
        if isinstance(meta.result, dict) and "exc_type" in meta.result:
            return exception_from_wire(meta.result)
    return meta.result


def result_from_tuple(value: Any, app: App) -> AsyncResult[Any] | GroupResult:
    """Rebuild a result (or group result) from Celery's nested tuple form."""
    if isinstance(value, AsyncResult | GroupResult):
        return value
    (task_id, parent_tuple), kids = value[0], value[1] if len(value) > 1 else None
    parent = result_from_tuple(parent_tuple, app) if parent_tuple else None
    if kids is not None:
        return GroupResult(
            task_id, [result_from_tuple(k, app) for k in kids],  # type: ignore[misc]
            parent=parent if isinstance(parent, AsyncResult) else None, app=app,
        )
    return AsyncResult(task_id, app, parent=parent if isinstance(parent, AsyncResult) else None)
