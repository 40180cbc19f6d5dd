"""``Slots``: the asyncio pool's concurrency limit (a FIFO semaphore whose
uncontended take is synchronous)."""

from __future__ import annotations

import asyncio

from celeriac.worker.pools._inprocess import Slots


def test_free_slots_are_taken_without_waiting() -> None:
    slots = Slots(2)
    assert slots.try_take() and slots.try_take()
    assert not slots.try_take()
    slots.give()
    assert slots.try_take()


async def test_waiters_get_released_slots_in_arrival_order() -> None:
    slots = Slots(1)
    assert slots.try_take()
    order: list[int] = []

    async def job(n: int) -> None:
        await slots.take()
        order.append(n)

    waiters = [asyncio.ensure_future(job(n)) for n in range(3)]
    await asyncio.sleep(0)
    assert not order and not slots.try_take()  # nobody jumps the line
    for _ in range(3):
        slots.give()
        await asyncio.sleep(0)
    await asyncio.wait_for(asyncio.gather(*waiters), 5)
    assert order == [0, 1, 2]
    assert slots.free == 0  # every slot went to a waiter, none was lost


async def test_a_cancelled_waiter_leaves_the_line_without_a_slot() -> None:
    slots = Slots(1)
    assert slots.try_take()
    waiter = asyncio.ensure_future(slots.take())
    await asyncio.sleep(0)
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    slots.give()
    assert slots.free == 1 and slots.try_take()


async def test_a_waiter_cancelled_after_being_handed_a_slot_passes_it_on() -> None:
    slots = Slots(1)
    assert slots.try_take()
    first = asyncio.ensure_future(slots.take())
    second = asyncio.ensure_future(slots.take())
    await asyncio.sleep(0)
    slots.give()  # handed to `first`, which has not resumed yet
    first.cancel()
    await asyncio.gather(first, return_exceptions=True)
    await asyncio.wait_for(second, 5)  # the slot went on to the next in line
    assert slots.free == 0
