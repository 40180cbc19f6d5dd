"""The transport's long-lived loops stop when cancelled, even when redis-py's command
swallows the cancellation (Python 3.11's ``asyncio.wait_for``): a warm shutdown
cancels them and waits for them."""

from __future__ import annotations

import asyncio

import pytest
from tests.integration.redis.conftest import TransportFactory

from celeriac.transports.base import raise_if_cancelled


@pytest.mark.parametrize("turns", [0, 1, 2, 3, 5, 8])
async def test_maintain_stops_when_cancelled_mid_command(make_transport: TransportFactory,
                                                         turns: int) -> None:
    transport = await make_transport(lease=0.3)
    for _ in range(20):
        task = asyncio.ensure_future(transport.maintain())
        for _ in range(turns):
            await asyncio.sleep(0)
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=5.0)
        assert done, f"maintain() still running 5 s after cancel (cancelled after {turns} turns)"
        assert task.cancelled()


async def test_a_loop_that_checks_stops_even_if_a_call_swallowed_the_cancel() -> None:
    swallowed = asyncio.Event()

    async def call_that_swallows() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            swallowed.set()  # what wait_for can do on 3.11: return instead of raising

    async def loop() -> None:
        while True:
            raise_if_cancelled()
            await call_that_swallows()

    task = asyncio.ensure_future(loop())
    await asyncio.sleep(0)
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=5.0)
    assert swallowed.is_set() and done and task.cancelled()
