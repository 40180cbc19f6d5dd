"""The Lamport clock Celery messages carry (``clock`` in events and pidbox headers).

Every Celery app keeps one logical clock: sending an event, a control request
or a control reply moves it forward and stamps the message with the new value;
receiving a stamped message moves it past the value received. Monitors order
events of one worker by it and ``inspect clock`` shows it. Values are plain
ints on the wire.
"""

from __future__ import annotations

import threading

__all__ = ["LamportClock"]


class LamportClock:
    """A thread-safe Lamport clock (``forward`` to send, ``adjust`` on receipt)."""

    __slots__ = ("_lock", "value")

    def __init__(self, initial: int = 0) -> None:
        self.value = initial
        self._lock = threading.Lock()

    def forward(self) -> int:
        """Advance for a message sent now; the value to stamp it with."""
        with self._lock:
            self.value += 1
            return self.value

    def adjust(self, other: int) -> int:
        """Take a received value into account: past both our value and ``other``."""
        with self._lock:
            self.value = max(self.value, other) + 1
            return self.value

    def __repr__(self) -> str:
        return f"<LamportClock: {self.value}>"
