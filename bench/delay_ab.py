"""A/B of a confirmed ``noop.delay(i)`` (results off) against the bare Redis round trip.

    python bench/delay_ab.py OLD_SRC NEW_SRC [--rounds 5] [--n 5000] [--db 11]

Each round runs one fresh process per tree (alternating which goes first), with
``PYTHONPATH`` set to that tree's ``src``. A process warms up, then runs ``n``
calls in chunks of 500, each chunk followed by 500 bare ``PING`` round trips on
a plain socket (as :func:`limits.round_trip_ms` measures it), so both see the
same machine. It reports CPU (``time.process_time``) per ``delay()``, the mean
and median wall time of a ``delay()`` and of a PING, and their ratios (median
to median, mean to mean). The table gives the median of the rounds per tree.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CHUNK = 500


def child(n: int, db: int) -> dict[str, float]:
    """Measure in this process (run by the parent with the tree's PYTHONPATH)."""
    queue = f"bench.delay_ab.{os.getpid()}"
    os.environ.update({
        "BENCH_SYSTEM": "celeriac", "BENCH_QUEUE": queue, "BENCH_BACKEND": "",
        "BENCH_BROKER": f"redis://127.0.0.1:6379/{db}",
    })
    sys.path.insert(0, str(HERE))
    import redis
    import tasks

    delay = tasks.noop.delay
    sock = socket.create_connection(("127.0.0.1", 6379))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    ping = b"*1\r\n$4\r\nPING\r\n"
    for i in range(1000):
        delay(i)
        sock.sendall(ping)
        sock.recv(64)
    cpu = wall = 0.0
    pings: list[float] = []
    delays: list[float] = []
    clock = time.perf_counter
    for start in range(0, n, CHUNK):
        c0, t0 = time.process_time(), clock()
        for i in range(start, start + CHUNK):
            t1 = clock()
            delay(i)
            delays.append(clock() - t1)
        wall += clock() - t0
        cpu += time.process_time() - c0
        for _ in range(CHUNK):
            t0 = time.perf_counter()
            sock.sendall(ping)
            sock.recv(64)
            pings.append(time.perf_counter() - t0)
    sock.close()
    raw = redis.Redis(db=db)
    for key in raw.scan_iter(match=f"*{queue}*"):  # the lists and kombu's binding sets
        raw.delete(key)
    calls = (n // CHUNK) * CHUNK
    return {
        "cpu_us": cpu / calls * 1e6,
        "wall_us": wall / calls * 1e6,
        "wall_median_us": statistics.median(delays) * 1e6,
        "ping_median_us": statistics.median(pings) * 1e6,
        "ping_mean_us": statistics.fmean(pings) * 1e6,
    }


def run_one(src: str, n: int, db: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": src}
    out = subprocess.run([sys.executable, __file__, "--child", "--n", str(n), "--db", str(db)],
                         env=env, capture_output=True, text=True, check=True)
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    result["ratio"] = result["wall_median_us"] / result["ping_median_us"]
    result["ratio_of_means"] = result["wall_us"] / result["ping_mean_us"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("trees", nargs="*")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--db", type=int, default=11)
    parser.add_argument("--child", action="store_true")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.n, args.db)))
        return
    names = ["A (old)", "B (new)"]
    results: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    for rnd in range(args.rounds):
        order = [0, 1] if rnd % 2 == 0 else [1, 0]
        for index in order:
            got = run_one(args.trees[index], args.n, args.db)
            results[names[index]].append(got)
            print(f"round {rnd + 1} {names[index]}: " + ", ".join(
                f"{k} {v:.2f}" if k.startswith("ratio") else f"{k} {v:.1f}"
                for k, v in got.items()),
                flush=True)
    print("\n| tree | CPU us/call | wall us/call mean | median | PING mean us | median "
          "| delay/PING medians | means |\n|---|---:|---:|---:|---:|---:|---:|---:|")
    for name in names:
        rows = results[name]

        def med(key: str, rows: list[dict[str, float]] = rows) -> float:
            return statistics.median(r[key] for r in rows)

        print(f"| {name} | {med('cpu_us'):.1f} | {med('wall_us'):.1f} | "
              f"{med('wall_median_us'):.1f} | {med('ping_mean_us'):.1f} | "
              f"{med('ping_median_us'):.1f} | {med('ratio'):.2f} | {med('ratio_of_means'):.2f} |")


if __name__ == "__main__":
    main()
