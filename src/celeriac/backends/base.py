"""The result-store interface every backend implements.

A backend stores :class:`~celeriac.protocol.results.ResultMeta` values under a
task id, lets clients read and wait for them, keeps group results and counts
chord parts. Like transports it has an async face (used by the worker and by
``await result``) and a sync face (used by ``AsyncResult.get()``) over one
implementation of its logic: sync calls use the library's sync client directly.

``wait``/``wait_sync`` return as soon as the task is in a ready state
(SUCCESS, FAILURE, REVOKED); backends that can push (Redis pub/sub, Postgres
NOTIFY, AMQP reply queues) do so instead of polling.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from celeriac.config.urls import mask_url
from celeriac.protocol.results import ResultMeta

if TYPE_CHECKING:
    from celeriac.transports.base import Transport

__all__ = ["BackendOptions", "ChordPart", "ResultBackend"]


@dataclass(frozen=True, slots=True)
class BackendOptions:
    """Explicit backend knobs, filled from settings by the app.

    ``expires`` is the TTL of result keys in seconds (``result_expires``;
    ``None`` keeps them forever); ``serializer`` names the result serializer;
    ``accept`` the content types a client will decode; ``poll_interval`` is the
    longest sleep of a backend that must poll.
    """

    expires: float | None = 86400.0
    serializer: str = "json"
    accept: tuple[str, ...] = ("json",)
    poll_interval: float = 0.2
    extended: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ChordPart:
    """One finished chord header task, as counted by :meth:`ResultBackend.chord_part_return`."""

    group_id: str
    task_id: str
    index: int
    status: str
    result: Any


class ResultBackend(abc.ABC):
    """Base class of result stores. Subclasses live one per module in this package."""

    schemes: ClassVar[tuple[str, ...]] = ()
    #: ``wait`` is woken by a push from the store rather than by polling.
    pushes: ClassVar[bool] = False
    #: The queue results come back on, for backends that have one (rpc://):
    #: tasks sent for this backend carry it as their ``reply_to``.
    reply_to: str | None = None

    def __init__(self, url: str, options: BackendOptions | None = None) -> None:
        self.url = url
        self.options = options or BackendOptions()

    def describe(self) -> str:
        """The URL with any password masked, for banners and error messages."""
        return mask_url(self.url)

    # -- lifecycle ---------------------------------------------------------
    async def connect(self) -> None:
        """Open async connections (lazy backends may do nothing)."""

    async def close(self) -> None:
        """Close async connections; idempotent."""

    def close_sync(self) -> None:
        """Close sync connections; idempotent."""

    def share_broker(self, transport: Transport) -> None:
        """The worker's broker connection, which a backend may ride (rpc:// does:
        its replies go out ahead of the acks). Default: not used."""

    # -- single results: async face -----------------------------------------
    @abc.abstractmethod
    async def store(self, meta: ResultMeta) -> None:
        """Write a task's state (never replaces a ready state with a non-ready one)."""

    async def store_many(self, metas: Sequence[ResultMeta]) -> None:
        """Write several states with as few round trips as the store allows."""
        for meta in metas:
            await self.store(meta)

    @abc.abstractmethod
    async def get(self, task_id: str) -> ResultMeta | None:
        """The stored meta, or ``None`` (PENDING: nothing known)."""

    @abc.abstractmethod
    async def wait(self, task_id: str, timeout: float | None) -> ResultMeta:
        """Return the meta once the task is ready; raise ``celeriac.errors.TimeoutError``."""

    @abc.abstractmethod
    async def forget(self, task_id: str) -> None:
        """Delete what is stored for ``task_id``."""

    # -- single results: sync face ------------------------------------------
    @abc.abstractmethod
    def store_sync(self, meta: ResultMeta) -> None:
        """Blocking :meth:`store` (used by eager mode and revoke)."""

    @abc.abstractmethod
    def get_sync(self, task_id: str) -> ResultMeta | None:
        """Blocking :meth:`get`."""

    @abc.abstractmethod
    def wait_sync(self, task_id: str, timeout: float | None) -> ResultMeta:
        """Blocking :meth:`wait`."""

    @abc.abstractmethod
    def forget_sync(self, task_id: str) -> None:
        """Blocking :meth:`forget`."""

    def subscribe_early(self, task_id: str) -> None:
        """Start listening for ``task_id`` before it is sent (push backends buffer the result,
        so a later ``get()`` of a finished task costs no round trip). Default: nothing."""

    async def asubscribe_early(self, task_id: str) -> None:
        """Async :meth:`subscribe_early` (for ``adelay``; ``await result`` then needs
        no read of the stored state). Default: nothing."""

    # -- groups ---------------------------------------------------------------
    @abc.abstractmethod
    def save_group_sync(self, group_id: str, task_ids: Sequence[str]) -> None:
        """Store the member ids of a group (``GroupResult.save()``)."""

    @abc.abstractmethod
    def restore_group_sync(self, group_id: str) -> list[str] | None:
        """The member ids saved for ``group_id``, or ``None``."""

    def forget_group_sync(self, group_id: str) -> None:
        """Delete a saved group."""

    # -- chords ---------------------------------------------------------------
    @abc.abstractmethod
    def set_chord_size_sync(self, group_id: str, size: int) -> None:
        """Record how many header tasks a chord waits for (done by the sender)."""

    async def set_chord_size(self, group_id: str, size: int) -> None:
        """Async :meth:`set_chord_size_sync` (a worker sending a nested chord)."""
        self.set_chord_size_sync(group_id, size)

    @abc.abstractmethod
    async def chord_part_return(self, part: ChordPart) -> list[ChordPart] | None:
        """Count one finished header task, idempotently per ``task_id``.

        Returns every part ordered by index to the call that completes the
        chord (whose caller then sends the body), and again to a repeated call
        for that same completing task (it was redelivered because its worker died
        before the body was sent), for as long as the chord is remembered. Every
        other call, including a repeated one for another task, returns ``None``.
        """
