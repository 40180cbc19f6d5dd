"""``RateLimiter.try_acquire``: the no-wait check the consumer makes before running a
request inline. It takes a free token, and never lets a request jump the queue."""

from __future__ import annotations

import asyncio

from celeriac.worker.ratelimit import RateLimiter


def test_unlimited_and_disabled_always_run_now() -> None:
    assert RateLimiter().try_acquire("free")
    assert RateLimiter("1/h", disabled=True).try_acquire("limited", "1/h")


def test_takes_the_free_token_then_says_wait() -> None:
    limiter = RateLimiter()
    assert limiter.try_acquire("paced", "1/h")  # the bucket starts with one token
    assert not limiter.try_acquire("paced", "1/h")  # the next is an hour away
    assert limiter.rate("paced") == 1 / 3600


async def test_a_waiting_request_keeps_its_turn() -> None:
    limiter = RateLimiter()
    assert limiter.try_acquire("paced", "20/s")
    waiter = asyncio.ensure_future(limiter.acquire("paced"))
    await asyncio.sleep(0)  # the waiter holds the FIFO lock now
    # Even once a token is due, a newcomer does not overtake the waiter.
    assert not limiter.try_acquire("paced")
    assert await asyncio.wait_for(waiter, 5) > 0


def test_a_limit_set_on_a_name_seen_unlimited_applies_at_once() -> None:
    # try_acquire remembers unlimited names (one set look-up per request);
    # a rate set at run time (remote control's rate_limit) takes it back out.
    limiter = RateLimiter()
    assert limiter.try_acquire("task", None)
    assert limiter.try_acquire("task", None)
    limiter.set("task", "1/h")
    assert limiter.try_acquire("task")  # the new bucket's one token
    assert not limiter.try_acquire("task")
    limiter.set("task", None)
    assert limiter.try_acquire("task") and limiter.try_acquire("task")
