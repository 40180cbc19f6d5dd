"""Helpers of the events tests: collect received events and wait on them with a bound."""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

TASKS = """
from celeriac import Celery

app = Celery("evtasks", broker={broker!r}, backend={backend!r})
app.conf.task_default_queue = {queue!r}
app.conf.task_send_sent_event = True


@app.task(name="ev.add")
def add(x, y):
    return x + y


@app.task(name="ev.fail")
def fail(message):
    raise ValueError(message)
"""


def write_tasks(directory: Path, broker: str, backend: str, queue: str) -> None:
    """Write ``evtasks.py`` (the app of the worker subprocess and of the client)."""
    (directory / "evtasks.py").write_text(
        textwrap.dedent(TASKS.format(broker=broker, backend=backend, queue=queue)))


class EventLog:
    """Every event a receiver handed over, in arrival order, with bounded waits."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._changed = asyncio.Condition()

    def __call__(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def of(self, type_: str, **match: Any) -> list[dict[str, Any]]:
        """Events of ``type_`` whose fields equal ``match``."""
        return [e for e in self.events if e["type"] == type_
                and all(e.get(k) == v for k, v in match.items())]

    async def wait_for(self, predicate: Callable[[], Any], what: str,
                       timeout: float = 20.0) -> None:
        """Wait until ``predicate()`` holds; fail with the events seen so far."""
        try:
            async with asyncio.timeout(timeout):
                async with self._changed:
                    await self._changed.wait_for(predicate)
        except TimeoutError:
            seen = "\n".join(f"{e['type']} {e.get('hostname')} {e.get('uuid', '')}"
                             f" {e.get('processed', '')}" for e in self.events[-40:])
            raise AssertionError(f"{what} not received within {timeout}s; saw:\n{seen}") from None

    def position(self, type_: str, **match: Any) -> int:
        """Index of the first matching event."""
        for index, event in enumerate(self.events):
            if event["type"] == type_ and all(event.get(k) == v for k, v in match.items()):
                return index
        raise AssertionError(f"no {type_} {match}")
