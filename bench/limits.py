"""What the hardware allows, measured with bare redis-py in the same run.

* the Redis round trip (a bare ``PING`` on a plain socket, median),
* pipelined ``LPUSH`` of kombu-sized elements (the ceiling of any enqueue),
* the ``INCR`` loop: pop 100 elements per call, decode each, one ``INCR`` round
  trip per element (the ceiling of one process running the drain workload).
"""

from __future__ import annotations

import json
import socket
import statistics
import time
import uuid
from urllib.parse import urlsplit

import redis

# A kombu Redis element of the size a ``noop(i)`` task message has (~1 KiB).
_ELEMENT = json.dumps({
    "body": "W1sxMjNdLCB7fSwgeyJjYWxsYmFja3MiOiBudWxsLCAiZXJyYmFja3MiOiBudWxsLCAiY2hhaW4iOiBudWxsLCAiY2hvcmQiOiBudWxsfV0=",  # noqa: E501
    "content-encoding": "utf-8", "content-type": "application/json",
    "headers": {"lang": "py", "task": "tasks.noop", "id": str(uuid.uuid4()), "shadow": None,
                "eta": None, "expires": None, "group": None, "group_index": None,
                "retries": 0, "timelimit": [None, None], "root_id": str(uuid.uuid4()),
                "parent_id": None, "argsrepr": "(123,)", "kwargsrepr": "{}",
                "origin": "gen1234@bench", "ignore_result": True},
    "properties": {"correlation_id": str(uuid.uuid4()), "reply_to": str(uuid.uuid4()),
                   "delivery_mode": 2, "delivery_info": {"exchange": "", "routing_key": "q"},
                   "priority": 0, "body_encoding": "base64", "delivery_tag": str(uuid.uuid4())},
}).encode()


def round_trip_ms(url: str, n: int = 2000) -> float:
    """Median time of one bare ``PING`` round trip, in ms.

    A plain TCP socket (``TCP_NODELAY``) writes the RESP command and reads the
    ``+PONG`` reply: the network and Redis, without any client library's own
    CPU (redis-py's ``ping()`` adds ~20-40 us here, which would flatter every
    figure compared with this one).
    """
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379))
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if parts.password:
            _command(sock, b"AUTH", *([parts.username.encode()] if parts.username else []),
                     parts.password.encode())
        ping = b"*1\r\n$4\r\nPING\r\n"
        samples = []
        for _ in range(n + 100):
            t0 = time.perf_counter()
            sock.sendall(ping)
            reply = sock.recv(64)
            samples.append(time.perf_counter() - t0)
            if reply != b"+PONG\r\n":
                raise RuntimeError(f"unexpected PING reply {reply!r}")
        return statistics.median(samples[100:]) * 1000
    finally:
        sock.close()


def _command(sock: socket.socket, *args: bytes) -> bytes:
    sock.sendall(b"*%d\r\n" % len(args)
                 + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args))
    reply = sock.recv(4096)
    if reply.startswith(b"-"):
        raise RuntimeError(f"Redis refused: {reply!r}")
    return reply


def lpush_rate(url: str, n: int = 20000, batch: int = 1000) -> float:
    """Pipelined ``LPUSH`` of task-sized elements; messages per second."""
    client = redis.Redis.from_url(url)
    key = f"bench.limit.{uuid.uuid4().hex[:8]}"
    try:
        started = time.perf_counter()
        for start in range(0, n, batch):
            pipe = client.pipeline(transaction=False)
            for _ in range(min(batch, n - start)):
                pipe.lpush(key, _ELEMENT)
            pipe.execute()
        return n / (time.perf_counter() - started)
    finally:
        client.delete(key)
        client.close()


def incr_loop_rate(url: str, n: int = 20000, batch: int = 100) -> float:
    """Pop ``batch`` at a time, decode, one ``INCR`` round trip each; messages per second."""
    client = redis.Redis.from_url(url)
    key = f"bench.limit.{uuid.uuid4().hex[:8]}"
    counter = key + ":count"
    try:
        pipe = client.pipeline(transaction=False)
        for _ in range(n):
            pipe.lpush(key, _ELEMENT)
        pipe.execute()
        started = time.perf_counter()
        while True:
            items = client.rpop(key, batch)
            if not items:
                break
            for raw in items:
                json.loads(raw)
                client.incr(counter)
        seconds = time.perf_counter() - started
        if int(client.get(counter) or 0) != n:
            raise RuntimeError("INCR loop lost messages")
        return n / seconds
    finally:
        client.delete(key, counter)
        client.close()
