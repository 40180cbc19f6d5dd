"""Bare py-amqp publish costs on RabbitMQ: per-confirm, windowed, none; persistent or not; queue kinds.

    python bench/amqp_confirms.py [N]     # RabbitMQ on 127.0.0.1:5672, vhost /, guest

The physics behind docs/decisions-amqp.md (issue 6, enqueue). Each case declares and
deletes its own queue `physics.<kind>`.
"""
from __future__ import annotations

import json
import resource
import sys
import time

import amqp

N = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
body = json.dumps([[1], {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]).encode()
headers = {"lang": "py", "task": "tasks.noop", "id": "x"*36, "root_id": "x"*36, "parent_id": None,
           "group": None, "retries": 0, "eta": None, "expires": None, "timelimit": [None, None],
           "argsrepr": "(1,)", "kwargsrepr": "{}", "origin": "gen1@host", "ignore_result": True}


def conn():
    c = amqp.Connection("127.0.0.1:5672", userid="guest", password="guest",
                        confirm_publish=False)
    c.connect()
    return c


def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def run(qname, args, mode, dm, window=None):
    c = conn(); ch = c.channel()
    ch.queue_delete(qname)
    ch.queue_declare(qname, durable=True, auto_delete=False, arguments=args)
    pending = set(); sent = [0]
    if mode != "none":
        ch.confirm_select()
        def ack(tag, multiple):
            if multiple:
                for t in [t for t in pending if t <= tag]: pending.discard(t)
            else: pending.discard(tag)
        ch.events["basic_ack"].add(ack)
    msg = amqp.Message(body, content_type="application/json", content_encoding="utf-8",
                       application_headers=headers, delivery_mode=dm, priority=0,
                       correlation_id="x"*36, reply_to="r")
    t0 = time.perf_counter(); c0 = cpu()
    for i in range(N):
        ch.basic_publish(msg, "", qname)
        if mode == "none": continue
        sent[0] += 1; pending.add(sent[0])
        w = 1 if mode == "each" else window
        while len(pending) >= w:
            c.drain_events(timeout=5)
    while pending: c.drain_events(timeout=5)
    if mode == "none":
        ch.queue_declare(qname, passive=True)  # one round trip: everything before it was processed
    wall = time.perf_counter() - t0; cp = cpu() - c0
    ch.queue_delete(qname); c.close()
    return N / wall, wall / N * 1e6, cp / N * 1e6

cases = [
    ("classic", {}, "each", 2), ("classic", {}, "each", 1), ("classic", {}, "none", 2),
    ("classic", {}, "win", 2, 16), ("classic", {}, "win", 2, 64), ("classic", {}, "win", 2, 256),
    ("classic-v2", {"x-queue-version": 2}, "each", 2),
    ("lazy", {"x-queue-mode": "lazy"}, "each", 2),
    ("quorum", {"x-queue-type": "quorum"}, "each", 2),
    ("quorum", {"x-queue-type": "quorum"}, "win", 2, 64),
]
for case in cases:
    name, args, mode, dm = case[:4]; w = case[4] if len(case) > 4 else None
    rate, us, cus = run("physics." + name, args, mode, dm, w)
    print(f"{name:11s} mode={mode:4s} window={w!s:4s} dm={dm}: {rate:8.0f}/s  wall {us:7.1f} us  cpu {cus:6.1f} us", flush=True)
