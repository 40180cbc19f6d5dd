"""Control test helpers: several threads of one client broadcasting at once."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

__all__ = ["broadcast_concurrently"]


def broadcast_concurrently(app: Any, commands: Sequence[str], *, rounds: int = 3,
                           **options: Any) -> list[tuple[str, Any]]:
    """One thread per command, each broadcasting it ``rounds`` times with
    ``options`` (``reply=True`` and a timeout, say); every ``(command, replies)``."""
    answers: list[tuple[str, Any]] = []
    lock = threading.Lock()

    def ask(command: str) -> None:
        for _ in range(rounds):
            got = app.control.broadcast(command, {}, **options)
            with lock:
                answers.append((command, got))

    threads = [threading.Thread(target=ask, args=(c,)) for c in commands]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return answers
