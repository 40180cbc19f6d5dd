"""Events across the two implementations, over real Redis:

* a real Celery event receiver (``app.events.Receiver`` feeding Celery's own
  ``State``, as Flower does) follows a celeriac worker started with ``-E``;
* celeriac's receiver and ``ClusterState`` follow a real Celery worker with ``-E``.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from celeriac import Celery
from celeriac.events import ClusterState
from celeriac.protocol import states
from celeriac.protocol.events import event_envelope, probe_event
from celeriac.protocol.keys import EVENT_EXCHANGE
from celeriac.worker.worker import expand_hostname
from tests.helpers.procs import CliProcess
from tests.interop._sides import start_celeriac, start_celery

#: A real Celery receiver: one JSON line per event, with what Celery's State made of it.
_CELERY_RECEIVER = """
import json, sys
from celery import Celery

app = Celery("watch", broker={url!r})
state = app.events.State()

def on_event(event):
    state.event(event)
    line = {{"type": event["type"], "hostname": event.get("hostname"),
             "uuid": event.get("uuid")}}
    task = state.tasks.get(event.get("uuid")) if event.get("uuid") else None
    if task is not None and event["type"].startswith("task-"):
        line["state"] = task.state
        line["name"] = task.name
        line["result"] = task.result
    worker = state.workers.get(event.get("hostname"))
    if worker is not None and event["type"].startswith("worker-"):
        line["alive"] = worker.alive
    print("EVENT " + json.dumps(line), flush=True)

with app.connection() as conn:
    app.events.Receiver(conn, handlers={{"*": on_event}}).capture(limit=None, timeout=None)
"""


class PythonProcess(CliProcess):
    """``python -u -c code`` with the same line collection and waits."""

    binary = sys.executable


def _events_of(proc: CliProcess) -> list[dict[str, Any]]:
    return [json.loads(line.split("EVENT ", 1)[1]) for line in proc.lines if "EVENT " in line]


def _wait_event(proc: CliProcess, what: str, timeout: float = 30.0, **match: Any) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        for event in _events_of(proc):
            if all(event.get(k) == v for k, v in match.items()):
                return event
        if time.monotonic() > deadline or proc.proc.poll() is not None:
            raise AssertionError(f"{what} not seen within {timeout}s:\n{proc.output[-4000:]}")
        time.sleep(0.02)


async def _until_listening(proc: CliProcess, url: str) -> None:
    """Publish probe events until the Celery receiver prints one (it is subscribed)."""
    app = Celery("probe", broker=url)
    transport = app.new_transport()
    await transport.connect()
    try:
        probe = event_envelope(probe_event("interop", hostname="probe", pid=1), hostname="probe")
        async with asyncio.timeout(30):
            while not any(e["type"] == "celeriac-probe" for e in _events_of(proc)):
                await transport.broadcast(EVENT_EXCHANGE, probe)
                await asyncio.sleep(0.05)
    finally:
        await transport.close()


async def test_celery_receiver_follows_a_celeriac_worker(interop_dir: Path,
                                                         interop_url: str) -> None:
    queue = "interop-events-to-celeriac"
    receiver = PythonProcess(["-u", "-c", textwrap.dedent(_CELERY_RECEIVER.format(
        url=interop_url))], interop_dir)
    worker: CliProcess | None = None
    try:
        await _until_listening(receiver, interop_url)
        worker = await asyncio.to_thread(start_celeriac, interop_dir, queue, "-E", "-P", "solo")
        host = expand_hostname(f"celeriac-{queue}@%h")
        client = Celery("client", broker=interop_url, backend=interop_url)
        result = client.send_task("interop.add", (2, 3), queue=queue)
        assert await asyncio.to_thread(result.get, 20) == 5
        online = await asyncio.to_thread(_wait_event, receiver, "worker-online",
                                         type="worker-online", hostname=host)
        assert online["alive"] is True
        done = await asyncio.to_thread(_wait_event, receiver, "task-succeeded",
                                       type="task-succeeded", uuid=result.id)
        assert (done["state"], done["name"], done["result"]) == (states.SUCCESS,
                                                                  "interop.add", "5")
        await asyncio.to_thread(_wait_event, receiver, "a heartbeat",
                                type="worker-heartbeat", hostname=host)
        worker.signal(signal.SIGTERM)
        offline = await asyncio.to_thread(_wait_event, receiver, "worker-offline",
                                          type="worker-offline", hostname=host)
        assert offline["alive"] is False
        seen = [e["type"] for e in _events_of(receiver) if e.get("uuid") == result.id]
        assert seen == ["task-received", "task-started", "task-succeeded"]
    finally:
        if worker is not None:
            worker.stop()
        receiver.proc.kill()
        receiver.wait(10)


async def test_celeriac_receiver_follows_a_celery_worker(interop_dir: Path,
                                                         interop_url: str) -> None:
    queue = "interop-events-to-celery"
    app = Celery("client", broker=interop_url, backend=interop_url)
    state = ClusterState()
    types: list[tuple[str, str | None]] = []
    changed = asyncio.Event()

    def handle(event: dict[str, Any]) -> None:
        state.event(event)
        types.append((event["type"], event.get("uuid")))
        changed.set()

    async def until(check: Any, what: str) -> None:
        async with asyncio.timeout(30):
            while not check():
                changed.clear()
                await changed.wait()

    receiver = app.events.Receiver(handlers={"*": handle})
    capture = asyncio.ensure_future(receiver.acapture(timeout=120))
    await receiver.wait_ready()
    worker = await asyncio.to_thread(start_celery, interop_dir, queue, "-E", "-P", "solo")
    host = expand_hostname(f"celery-{queue}@%h")
    try:
        await until(lambda: host in state.workers, "worker-online")
        assert [w.hostname for w in state.alive_workers()] == [host]
        result = app.send_task("interop.add", (2, 3), queue=queue)
        await until(lambda: result.id in state.tasks
                    and state.tasks[result.id].state == states.SUCCESS, "task-succeeded")
        task = state.tasks[result.id]
        assert task.name == "interop.add" and task.worker == host
        assert task.fields["result"] == "5" and task.fields["args"] == "(2, 3)"
        assert [t for t, u in types if u == result.id] == [
            "task-received", "task-started", "task-succeeded"]
        await until(lambda: ("worker-heartbeat", None) in types, "a heartbeat")
        worker.signal(signal.SIGTERM)
        await until(lambda: not state.workers[host].online, "worker-offline")
        assert state.alive_workers() == []
    finally:
        worker.stop()
        receiver.stop()
        await capture
        app.close()
