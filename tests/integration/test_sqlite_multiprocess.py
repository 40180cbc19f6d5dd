"""Several OS processes sharing one SQLite broker file, as producers and workers do."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from celeriac.protocol.envelope import Envelope
from celeriac.transports.base import TransportOptions
from celeriac.transports.sqlite import SqliteTransport

PRODUCER = textwrap.dedent(
    """
    import sys
    from celeriac.protocol.envelope import Envelope
    from celeriac.transports.sqlite import SqliteTransport

    url, queue, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    transport = SqliteTransport(url)
    for i in range(count):
        transport.publish_sync(Envelope(body=str(i).encode(), routing_key=queue))
    transport.close_sync()
    """
)

CONSUMER = textwrap.dedent(
    """
    import asyncio, json, os, sys
    from celeriac.transports.base import TransportOptions
    from celeriac.transports.sqlite import SqliteTransport

    url, queue, done_file, ready_file = sys.argv[1:5]

    async def main():
        transport = SqliteTransport(url, TransportOptions(poll_interval=0.05))
        await transport.connect()
        open(ready_file, "w").close()
        seen = []
        while True:
            got = await transport.fetch([queue], 7, 0.1)
            seen.extend(int(d.envelope.body) for d in got)
            if got:
                # Hold each batch briefly, as a worker would while running it, so
                # the other consumer gets its share even on a loaded machine.
                await asyncio.sleep(0.02)
            await transport.ack(got)
            if not got and os.path.exists(done_file):
                if await transport.queue_length(queue) == 0:
                    break
        await transport.close()
        print(json.dumps(seen))

    asyncio.run(main())
    """
)

HOLDER = textwrap.dedent(
    """
    import asyncio, sys
    from celeriac.transports.base import TransportOptions
    from celeriac.transports.sqlite import SqliteTransport

    url, queue, lease = sys.argv[1], sys.argv[2], float(sys.argv[3])

    async def main():
        transport = SqliteTransport(url, TransportOptions(lease_seconds=lease))
        held = []
        while len(held) < 5:
            held += await transport.fetch([queue], 5 - len(held), 1.0)
        print("claimed", len(held), flush=True)
        await transport.maintain()  # renews the leases until the process is killed

    asyncio.run(main())
    """
)


def _python(script: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_every_message_delivered_exactly_once_across_processes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.sqlite'}"
    done_file = tmp_path / "producer-done"
    SqliteTransport(url).queue_length_sync("tasks")  # create the file before three openers race
    ready = [tmp_path / f"ready-{i}" for i in range(2)]
    consumers = [_python(CONSUMER, url, "tasks", str(done_file), str(r)) for r in ready]
    producer = None
    try:
        # Both workers must be running before work arrives, or one may take it all.
        deadline = time.monotonic() + 30
        while not all(r.exists() for r in ready):
            assert time.monotonic() < deadline, "consumers did not start"
            assert all(c.poll() is None for c in consumers), "a consumer died"
            time.sleep(0.02)
        producer = _python(PRODUCER, url, "tasks", "200")
        _, err = producer.communicate(timeout=60)
        assert producer.returncode == 0, err
        done_file.touch()
        outputs = [consumer.communicate(timeout=60) for consumer in consumers]
    finally:
        for proc in [*consumers, *([producer] if producer else [])]:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for consumer, (_, err) in zip(consumers, outputs, strict=True):
        assert consumer.returncode == 0, err
    seen = [json.loads(out) for out, _ in outputs]
    assert sorted(seen[0] + seen[1]) == list(range(200))
    # Both workers took part (each claims at most 7 at a time).
    assert seen[0] and seen[1]


async def test_sigkilled_consumers_messages_run_again_after_the_lease(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.sqlite'}"
    lease = 1.0
    transport = SqliteTransport(url, TransportOptions(lease_seconds=lease, poll_interval=0.05))
    await transport.publish_many(
        [(Envelope(body=str(i).encode(), routing_key="tasks"), None) for i in range(5)]
    )
    holder = _python(HOLDER, url, "tasks", str(lease))
    try:
        assert holder.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(holder.stdout.readline), 30)
        assert line.split() == ["claimed", "5"], holder.stderr.read() if holder.stderr else ""
        # Alive, the holder renews its leases: nothing is claimable past one lease.
        assert await transport.fetch(["tasks"], 5, lease * 1.5) == []
        os.kill(holder.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        holder.wait(timeout=10)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
        for stream in (holder.stdout, holder.stderr):
            if stream is not None:
                stream.close()
    got = []
    while len(got) < 5 and time.monotonic() - killed_at < lease + 5:
        got += await transport.fetch(["tasks"], 5 - len(got), 0.5)
    assert sorted(int(d.envelope.body) for d in got) == list(range(5))
    assert all(d.redelivered for d in got)
    assert time.monotonic() - killed_at <= lease + 2.0
    await transport.ack(got)
    assert await transport.queue_length("tasks") == 0
    await transport.close()
