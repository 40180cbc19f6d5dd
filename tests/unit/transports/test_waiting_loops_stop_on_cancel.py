"""The memory and SQLite transports' waiting loops stop when cancelled, even when the
cancel lands as their wake-up event fires (Python 3.11's ``asyncio.wait_for`` then
returns normally): a worker's warm shutdown cancels them and waits for them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from celeriac.protocol.envelope import Envelope
from celeriac.transports.base import Transport, TransportOptions
from celeriac.transports.memory import MemoryTransport
from celeriac.transports.sqlite import SqliteTransport


@pytest.fixture(params=["memory", "sqlite"])
async def pair(request: pytest.FixtureRequest,
               tmp_path: Path) -> AsyncIterator[tuple[Transport, Transport]]:
    url = (f"memory://{tmp_path.name}" if request.param == "memory"
           else f"sqlite:///{tmp_path}/b.db")
    cls = MemoryTransport if request.param == "memory" else SqliteTransport
    made = [cls(url, TransportOptions(poll_interval=0.5)) for _ in range(2)]
    for transport in made:
        await transport.connect()
    yield made[0], made[1]
    for transport in made:
        await transport.close()


def _envelope(key: str) -> Envelope:
    return Envelope(body=b"{}", headers={}, routing_key=key)


async def _cancel_as_it_wakes(task: asyncio.Task[object], wake: object, turns: int) -> None:
    """Fire the wake-up, let ``turns`` loop turns pass, cancel: the task must end."""
    await asyncio.sleep(0.05)  # the loop is waiting on its event by now
    await wake  # type: ignore[misc]
    for _ in range(turns):
        await asyncio.sleep(0)
    requested = task.cancel()  # False: it had already returned (a fetch that got its message)
    done, _ = await asyncio.wait({task}, timeout=5.0)
    assert done, "the loop kept running after cancel"
    if requested:
        assert task.cancelled(), "a cancelled call returned normally (the cancel was lost)"


@pytest.mark.parametrize("turns", [0, 1, 2, 3, 4])
async def test_subscribe_stops_when_cancelled_as_a_broadcast_arrives(
        pair: tuple[Transport, Transport], turns: int) -> None:
    listener, sender = pair
    for i in range(5):
        seen: list[Envelope] = []
        task = asyncio.ensure_future(listener.subscribe("ex", [], seen.append))
        await _cancel_as_it_wakes(task, sender.broadcast("ex", _envelope(f"k{i}")), turns)


@pytest.mark.parametrize("turns", [0, 1, 2, 3, 4])
async def test_fetch_stops_when_cancelled_as_a_message_arrives(
        pair: tuple[Transport, Transport], turns: int) -> None:
    consumer, producer = pair
    for _ in range(5):
        task = asyncio.ensure_future(consumer.fetch(["q"], 1, 30.0))
        await _cancel_as_it_wakes(task, producer.publish(_envelope("q")), turns)
