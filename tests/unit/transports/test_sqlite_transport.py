"""SQLite broker details beyond the contract suite."""

from __future__ import annotations

import asyncio
from pathlib import Path

from celeriac.protocol.envelope import Envelope
from celeriac.transports.base import TransportOptions
from celeriac.transports.sqlite import SqliteTransport


async def test_cancelled_fetch_does_not_hold_messages(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'b.sqlite'}"
    options = TransportOptions(lease_seconds=60.0)
    consumer, other = SqliteTransport(url, options), SqliteTransport(url, options)
    cancelled = 0
    for i in range(20):
        await other.publish(Envelope(body=b"%d" % i, routing_key="q"))
        fetching = asyncio.create_task(consumer.fetch(["q"], 1, 5.0))
        await asyncio.sleep(0)  # let it start its claim in the database thread
        fetching.cancel()
        try:
            got = await fetching
        except asyncio.CancelledError:
            cancelled += 1
            got = []
        await consumer.ack(got)
        # Whatever a cancelled fetch claimed was handed back at once, not after 60 s.
        assert await other.queue_length("q") == (0 if got else 1)
        await other.ack(await other.fetch(["q"], 1, 0.0))
    assert cancelled > 0
    await consumer.close()
    await other.close()


async def test_idle_poll_backs_off_and_resets(tmp_path: Path) -> None:
    transport = SqliteTransport(
        f"sqlite:///{tmp_path / 'b.sqlite'}", TransportOptions(poll_interval=0.08)
    )
    assert await transport.fetch(["q"], 1, 0.3) == []
    assert transport._backoff.next() == 0.08  # idle: at the longest delay
    transport.publish_sync(Envelope(body=b"x", routing_key="q"))
    got = await transport.fetch(["q"], 1, 1.0)
    assert len(got) == 1
    assert transport._backoff.next() == 0.005  # found work: quick again
    await transport.close()


async def test_unroutable_message_is_dead_lettered(tmp_path: Path) -> None:
    from celeriac.transports.base import QueueSpec

    transport = SqliteTransport(f"sqlite:///{tmp_path / 'b.sqlite'}")
    await transport.declare([QueueSpec(name="videos", exchange="media", routing_key="video")])
    await transport.publish(Envelope(body=b"x", exchange="media", routing_key="audio"))
    dead = await transport.dead_letters("audio")
    assert [(e.body, r) for e, r in dead] == [
        (b"x", "unroutable: no queue bound to exchange 'media' for routing key 'audio'")
    ]
    assert await transport.queue_length("videos") == 0
    await transport.close()
