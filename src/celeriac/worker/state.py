"""Worker state: revoked ids (optionally persisted) and counters."""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from pathlib import Path

__all__ = ["WorkerState"]


class WorkerState:
    """Revoked task ids with their expiry, and how many tasks of each name ran.

    With ``statedb`` (``--statedb``) revoked ids are written to a JSON file so
    they survive a restart. Ids are kept for ``revoke_expires`` seconds.
    """

    def __init__(self, statedb: str | None = None, revoke_expires: float = 10800.0) -> None:
        self.statedb = Path(statedb) if statedb else None
        self.revoke_expires = revoke_expires
        self.revoked: dict[str, float] = {}
        self.total: Counter[str] = Counter()
        if self.statedb is not None and self.statedb.exists():
            try:
                data = json.loads(self.statedb.read_text())
                now = time.time()
                self.revoked = {k: v for k, v in data.get("revoked", {}).items() if v > now}
            except (OSError, ValueError):
                self.revoked = {}

    def revoke(self, task_id: str) -> None:
        """Remember ``task_id`` as revoked."""
        self.revoke_many([task_id])

    def revoke_many(self, task_ids: list[str]) -> None:
        """Remember several ids as revoked (one write of ``statedb``)."""
        until = time.time() + self.revoke_expires
        for task_id in task_ids:
            self.revoked[task_id] = until
        self.save()

    def is_revoked(self, task_id: str) -> bool:
        """Whether ``task_id`` was revoked and the mark has not expired."""
        if not self.revoked:
            return False
        until = self.revoked.get(task_id)
        return until is not None and until > time.time()

    def processed(self, name: str) -> None:
        """Count one finished task of ``name``."""
        self.total[name] += 1

    def save(self) -> None:
        """Write the revoked ids to ``statedb`` atomically, if configured."""
        if self.statedb is None:
            return
        tmp = self.statedb.with_suffix(".tmp")
        tmp.write_text(json.dumps({"revoked": self.revoked}))
        os.replace(tmp, self.statedb)
