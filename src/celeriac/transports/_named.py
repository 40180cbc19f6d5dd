"""Process-wide registries of named in-memory stores (``memory://name``), written once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["NamedStores"]

S = TypeVar("S")


class NamedStores(Generic[S]):
    """Name -> store, created on first use; shared by everything in the process."""

    def __init__(self, factory: Callable[[], S]) -> None:
        self._factory = factory
        self._stores: dict[str, S] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> S:
        """The store called ``name``, made now if it does not exist yet."""
        with self._lock:
            store = self._stores.get(name)
            if store is None:
                store = self._stores[name] = self._factory()
            return store

    def drop(self, name: str) -> None:
        """Forget the store called ``name`` and everything in it."""
        with self._lock:
            self._stores.pop(name, None)
