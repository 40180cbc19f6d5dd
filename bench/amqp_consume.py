"""CPU per delivery of the async RabbitMQ consumer: preloaded messages drained by fetch/ack.

    PYTHONPATH=src python bench/amqp_consume.py [N] [--profile out.prof]

Preloads N Celery-shaped task messages (bare py-amqp, no confirms) into the
queue ``bench.consume`` on vhost ``/``, then drains them through
``AMQPTransport.fetch(limit=64)`` and ``ack`` (what the worker's consumer
does, without the worker) and prints the consumer's CPU per delivery.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import amqp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.amqp_confirms import BODY, HEADERS, cpu_seconds
from celeriac.transports.amqp import AMQPTransport

N = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 20000
QUEUE = "bench.consume"
URL = "amqp://guest:guest@127.0.0.1:5672//"


def preload() -> None:
    """Fill the queue with N task messages."""
    conn = amqp.Connection("127.0.0.1:5672", userid="guest", password="guest")
    conn.connect()
    channel = conn.channel()
    channel.queue_delete(QUEUE)
    channel.queue_declare(QUEUE, durable=True, auto_delete=False)
    message = amqp.Message(BODY, content_type="application/json", content_encoding="utf-8",
                           application_headers=HEADERS, delivery_mode=2, priority=0,
                           correlation_id="x" * 36, reply_to="r")
    for _ in range(N):
        channel.basic_publish(message, "", QUEUE)
    while channel.queue_declare(QUEUE, passive=True).message_count < N:
        time.sleep(0.05)
    conn.close()


async def drain() -> tuple[float, float]:
    """(wall s, CPU s) to fetch and ack N deliveries."""
    transport = AMQPTransport(URL)
    await transport.connect()
    started, cpu_started = time.perf_counter(), cpu_seconds()
    got = 0
    while got < N:
        batch = await transport.fetch([QUEUE], 64, 5.0)
        if not batch:
            raise SystemExit(f"only {got} of {N} delivered")
        got += len(batch)
        await transport.ack(batch)
    wall, cpu = time.perf_counter() - started, cpu_seconds() - cpu_started
    await transport.close()
    return wall, cpu


def main() -> None:
    """Preload, drain, print."""
    preload()
    if "--profile" in sys.argv:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
        wall, cpu = asyncio.run(drain())
        profiler.disable()
        profiler.dump_stats(sys.argv[sys.argv.index("--profile") + 1])
    else:
        wall, cpu = asyncio.run(drain())
    print(f"{N} deliveries: {N / wall:,.0f}/s, consumer CPU {cpu / N * 1e6:.1f} us per delivery")


if __name__ == "__main__":
    main()
