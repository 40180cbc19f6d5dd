"""The Lamport clock Celery messages carry."""

from __future__ import annotations

import threading

from celeriac import Celery
from celeriac.protocol.clock import LamportClock


def test_forward_and_adjust() -> None:
    clock = LamportClock()
    assert (clock.forward(), clock.forward()) == (1, 2)
    assert clock.adjust(10) == 11  # past what we received
    assert clock.adjust(3) == 12  # an older value still moves it on
    assert clock.value == 12


def test_forward_from_threads_never_repeats_a_value() -> None:
    clock = LamportClock()
    seen: list[int] = []

    def run() -> None:
        values = [clock.forward() for _ in range(2_000)]
        seen.extend(values)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(seen) == list(range(1, 8_001))


def test_each_app_keeps_one() -> None:
    a, b = Celery("a", broker="memory://"), Celery("b", broker="memory://")
    a.clock.forward()
    assert (a.clock.value, b.clock.value) == (1, 0)
