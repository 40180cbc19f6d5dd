"""Per-task rate limits: one token bucket per task name, waited on without polling.

``rate_limit='10/s' | '100/m' | '1000/h'`` (or a number, meaning per second)
gives the task a bucket that fills at that rate and holds one token, as
Celery's: the first call runs at once and the next ones are spaced
``1/rate`` seconds apart. A request waits for its token in the worker's event
loop (a timer, never a busy loop) *before* it is handed to the pool, so a
rate-limited task never occupies an execution slot while it waits and other
tasks keep flowing. It does keep its prefetch slot (it was fetched and is
not acknowledged yet), exactly as Celery holds rate-limited requests in
memory.

Waiters of one task name are served in arrival order (an ``asyncio.Lock`` is
FIFO). :meth:`RateLimiter.set` changes a rate at run time and wakes the
waiters so they re-plan under the new rate at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

from celeriac.errors import ConfigurationError

__all__ = ["RateLimiter", "TokenBucket", "parse_rate"]

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}


def parse_rate(rate: str | float | None) -> float | None:
    """Tokens per second for ``'10/s'``, ``'100/m'``, ``'1000/h'`` or a number (per second).

    ``None``, ``0`` and ``'0'`` mean "no limit" and give ``None``.
    """
    if rate is None:
        return None
    if isinstance(rate, int | float):
        value = float(rate)
    else:
        text = rate.strip()
        count, _, unit = text.partition("/")
        try:
            value = float(count) / _UNITS[unit.strip().lower()[:1] or "s"]
        except (KeyError, ValueError):
            raise ConfigurationError(
                f"bad rate limit {rate!r}: use '<n>/s', '<n>/m', '<n>/h' or a number per second"
            ) from None
    if value < 0:
        raise ConfigurationError(f"bad rate limit {rate!r}: it cannot be negative")
    return value or None


@dataclass(slots=True)
class TokenBucket:
    """A bucket of ``capacity`` tokens refilled at ``rate`` tokens per second."""

    rate: float
    capacity: float = 1.0
    tokens: float = field(default=-1.0)
    stamp: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        if self.tokens < 0:
            self.tokens = self.capacity

    def _refill(self, now: float) -> None:
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait_time(self, now: float | None = None) -> float:
        """Seconds until one token is available (0 when one is there now)."""
        now = time.monotonic() if now is None else now
        self._refill(now)
        return 0.0 if self.tokens >= 1.0 else (1.0 - self.tokens) / self.rate

    def take(self, now: float | None = None) -> bool:
        """Take one token if available; whether it was taken."""
        if self.wait_time(now) > 0:
            return False
        self.tokens -= 1.0
        return True


class _Limit:
    __slots__ = ("bucket", "changed", "lock", "rate")

    def __init__(self, rate: float | None) -> None:
        self.rate = rate
        self.bucket = TokenBucket(rate) if rate else None
        self.lock = asyncio.Lock()
        self.changed = asyncio.Event()


class RateLimiter:
    """The worker's rate limits by task name (``set`` at run time, ``acquire`` per request)."""

    def __init__(self, default: str | float | None = None, *, disabled: bool = False) -> None:
        self.default = parse_rate(default)
        self.disabled = disabled
        self._limits: dict[str, _Limit] = {}
        self._configured: dict[str, float | None] = {}
        # Names seen without a limit (no bucket, so nobody ever holds their lock):
        # try_acquire answers these with one set look-up. set() takes a name out.
        self._unlimited: set[str] = set()

    def configure(self, name: str, rate: str | float | None) -> None:
        """Set the rate of ``name`` from its task option (``None``: the worker default)."""
        self._configured[name] = parse_rate(rate) if rate is not None else self.default
        self._unlimited.discard(name)

    def set(self, name: str, rate: str | float | None) -> None:
        """Change the rate of ``name`` now (``None``/``0`` removes the limit); wakes waiters."""
        value = parse_rate(rate)
        self._configured[name] = value
        self._unlimited.discard(name)
        limit = self._limits.get(name)
        if limit is not None:
            limit.rate = value
            limit.bucket = TokenBucket(value) if value else None
            limit.changed.set()

    def rate(self, name: str) -> float | None:
        """The rate of ``name`` in tokens per second (``None``: unlimited)."""
        if self.disabled:
            return None
        return self._configured.get(name, self.default)

    def limited(self, name: str) -> bool:
        """Whether requests of ``name`` wait for a token."""
        return self.rate(name) is not None

    def _limit(self, name: str, task_rate: str | float | None) -> _Limit:
        if name not in self._configured:
            self.configure(name, task_rate)
        limit = self._limits.get(name)
        if limit is None:
            limit = self._limits[name] = _Limit(self.rate(name))
        return limit

    def try_acquire(self, name: str, task_rate: str | float | None = None) -> bool:
        """Take a token of ``name`` if that needs no wait; whether the request may run now.

        ``True`` when no limit applies or a token was free (and is now taken);
        ``False`` leaves everything as it was: the caller then awaits
        :meth:`acquire` (a token is due later, or earlier requests wait first).
        """
        if self.disabled or name in self._unlimited:
            return True
        limit = self._limit(name, task_rate)
        if limit.lock.locked():
            return False
        if limit.bucket is None:
            self._unlimited.add(name)
            return True
        return limit.bucket.take()

    async def acquire(self, name: str, task_rate: str | float | None = None) -> float:
        """Wait for a token of ``name`` (no-op when unlimited); returns seconds waited.

        ``task_rate`` is the task's own ``rate_limit`` option, used the first
        time ``name`` is seen unless a rate was set for it already.
        """
        if self.disabled:
            return 0.0
        limit = self._limit(name, task_rate)
        if limit.bucket is None and not limit.lock.locked():
            return 0.0
        started = time.monotonic()
        async with limit.lock:
            while limit.bucket is not None and not limit.bucket.take():
                limit.changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(limit.changed.wait(), limit.bucket.wait_time())
        return time.monotonic() - started

    def info(self) -> dict[str, str]:
        """Configured limits as ``{task name: 'n/s'}`` (for ``inspect`` and logs)."""
        return {name: f"{rate:g}/s" for name, rate in self._configured.items() if rate}
