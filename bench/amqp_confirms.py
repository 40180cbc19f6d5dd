"""Bare py-amqp publish costs on RabbitMQ: one confirm each, a window, none.

    python bench/amqp_confirms.py [N]     # RabbitMQ on 127.0.0.1:5672, vhost /, guest

The physics behind docs/decisions-amqp.md (issue 6, enqueue): what any client
pays when ``delay()`` returns only after the broker confirmed the message, by
persistence and queue kind. Each case declares and deletes its own queue
``physics.<kind>``.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from typing import Any

import amqp

N = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 2000
BODY = json.dumps(
    [[1], {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]
).encode()
HEADERS = {
    "lang": "py", "task": "tasks.noop", "id": "x" * 36, "root_id": "x" * 36,
    "parent_id": None, "group": None, "retries": 0, "eta": None, "expires": None,
    "timelimit": [None, None], "argsrepr": "(1,)", "kwargsrepr": "{}",
    "origin": "gen1@host", "ignore_result": True,
}

# (queue kind, queue arguments, wait for: "each" | "window" | "none", delivery mode, window)
CASES: list[tuple[str, dict[str, Any], str, int, int]] = [
    ("classic", {}, "each", 2, 1),
    ("classic", {}, "each", 1, 1),
    ("classic", {}, "none", 2, 0),
    ("classic", {}, "window", 2, 16),
    ("classic", {}, "window", 2, 64),
    ("classic", {}, "window", 2, 256),
    ("classic-v2", {"x-queue-version": 2}, "each", 2, 1),
    ("lazy", {"x-queue-mode": "lazy"}, "each", 2, 1),
    ("quorum", {"x-queue-type": "quorum"}, "each", 2, 1),
    ("quorum", {"x-queue-type": "quorum"}, "window", 2, 64),
]


def cpu_seconds() -> float:
    """User + system CPU time of this process."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run(queue: str, arguments: dict[str, Any], mode: str, delivery_mode: int,
        window: int) -> tuple[float, float, float]:
    """(publishes/s, wall us per publish, client CPU us per publish) of one case."""
    conn = amqp.Connection("127.0.0.1:5672", userid="guest", password="guest",
                           confirm_publish=False)
    conn.connect()
    channel = conn.channel()
    channel.queue_delete(queue)
    channel.queue_declare(queue, durable=True, auto_delete=False, arguments=arguments)
    pending: set[int] = set()
    if mode != "none":
        channel.confirm_select()

        def on_ack(tag: int, multiple: bool) -> None:
            done = [t for t in pending if t <= tag] if multiple else [tag]
            pending.difference_update(done)

        channel.events["basic_ack"].add(on_ack)
    message = amqp.Message(BODY, content_type="application/json", content_encoding="utf-8",
                           application_headers=HEADERS, delivery_mode=delivery_mode,
                           priority=0, correlation_id="x" * 36, reply_to="r")
    started, cpu_started = time.perf_counter(), cpu_seconds()
    for tag in range(1, N + 1):
        channel.basic_publish(message, "", queue)
        if mode == "none":
            continue
        pending.add(tag)
        while len(pending) >= window:
            conn.drain_events(timeout=5)
    while pending:
        conn.drain_events(timeout=5)
    if mode == "none":
        channel.queue_declare(queue, passive=True)  # one round trip: all before it is processed
    wall, cpu = time.perf_counter() - started, cpu_seconds() - cpu_started
    channel.queue_delete(queue)
    conn.close()
    return N / wall, wall / N * 1e6, cpu / N * 1e6


def main() -> None:
    """Print one line per case."""
    for kind, arguments, mode, delivery_mode, window in CASES:
        rate, wall_us, cpu_us = run(f"physics.{kind}", arguments, mode, delivery_mode, window)
        print(f"{kind:11s} wait={mode:6s} window={window:<4d} delivery_mode={delivery_mode}: "
              f"{rate:8.0f}/s  wall {wall_us:7.1f} us  cpu {cpu_us:6.1f} us", flush=True)


if __name__ == "__main__":
    main()
