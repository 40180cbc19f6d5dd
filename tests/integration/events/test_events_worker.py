"""A real ``celeriac worker -E`` subprocess on real Redis and RabbitMQ, watched by
celeriac's receiver: worker and task events arrive in order with Celery's fields."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from _event_log import EventLog, write_tasks
from tests.helpers.procs import CliProcess

from celeriac import Celery
from celeriac.events import ClusterState, EventReceiver
from celeriac.protocol import states
from celeriac.protocol.events import event_envelope, task_event, worker_event
from celeriac.protocol.keys import EVENT_EXCHANGE
from celeriac.worker.worker import expand_hostname

QUEUE = "events-test"


@pytest.fixture(params=["redis", "amqp"])
def broker(request: pytest.FixtureRequest) -> str:
    """The broker URL of this run (one test per broker)."""
    return str(request.getfixturevalue(f"{request.param}_url"))


@pytest.fixture
async def watched(broker: str, redis_url: str) -> AsyncIterator[tuple[Celery, EventLog,
                                                                      ClusterState]]:
    """A client app and an event log fed by a live receiver (subscribed before return)."""
    app = Celery("client", broker=broker, backend=redis_url)
    app.conf.task_default_queue = QUEUE
    app.conf.task_send_sent_event = True
    log, state = EventLog(), ClusterState()

    def handle(event: dict[str, Any]) -> None:
        state.event(event)
        log(event)

    receiver = app.events.Receiver(handlers={"*": handle})
    capture = asyncio.ensure_future(receiver.acapture(timeout=120))
    await receiver.wait_ready()
    yield app, log, state
    receiver.stop()
    await capture
    app.close()


def _start_worker(tmp_path: Path, broker: str, backend: str, *flags: str) -> CliProcess:
    write_tasks(tmp_path, broker, backend, QUEUE)
    return CliProcess(["-A", "evtasks", "worker", "-P", "solo", "-n", "ev1@%h", "-l", "INFO",
                       "-Q", QUEUE, *flags], cwd=tmp_path)


async def _online_worker(log: EventLog, tmp_path: Path, broker: str,
                         backend: str) -> tuple[str, CliProcess]:
    """A worker without -E, started and seen online; its hostname and process."""
    host = expand_hostname("ev1@%h")
    worker = _start_worker(tmp_path, broker, backend)
    try:
        await log.wait_for(lambda: log.of("worker-online", hostname=host), "worker-online")
    except BaseException:
        worker.stop()
        raise
    return host, worker


async def test_worker_with_E_sends_worker_and_task_events_in_order(
        watched: tuple[Celery, EventLog, ClusterState], broker: str, redis_url: str,
        tmp_path: Path) -> None:
    app, log, state = watched
    host = expand_hostname("ev1@%h")
    worker = _start_worker(tmp_path, broker, redis_url, "-E")
    try:
        await log.wait_for(lambda: log.of("worker-online", hostname=host), "worker-online")
        assert [w.hostname for w in state.alive_workers()] == [host]
        ok = app.send_task("ev.add", (2, 3))
        bad = app.send_task("ev.fail", ("boom",))
        await log.wait_for(lambda: log.of("task-succeeded", uuid=ok.id)
                           and log.of("task-failed", uuid=bad.id), "task outcomes")
        await log.wait_for(lambda: log.of("worker-heartbeat", hostname=host), "a heartbeat")
        worker.signal(signal.SIGTERM)
        await log.wait_for(lambda: log.of("worker-offline", hostname=host), "worker-offline")
        assert await asyncio.to_thread(worker.wait, 30) == 0
    finally:
        worker.stop()

    order = [log.position(t, uuid=ok.id) for t in
             ("task-sent", "task-received", "task-started", "task-succeeded")]
    assert order == sorted(order)
    assert log.position("worker-online", hostname=host) < log.position("task-received",
                                                                        uuid=ok.id)
    assert log.position("task-succeeded", uuid=ok.id) < log.position("worker-offline",
                                                                      hostname=host)
    sent = log.of("task-sent", uuid=ok.id)[0]
    assert (sent["name"], sent["args"], sent["kwargs"], sent["queue"]) == (
        "ev.add", "(2, 3)", "{}", QUEUE)
    assert sent["hostname"] == app.origin
    received = log.of("task-received", uuid=ok.id)[0]
    assert (received["hostname"], received["name"], received["args"]) == (host, "ev.add",
                                                                          "(2, 3)")
    assert received["root_id"] == ok.id and received["retries"] == 0
    succeeded = log.of("task-succeeded", uuid=ok.id)[0]
    assert succeeded["result"] == "5" and isinstance(succeeded["runtime"], float)
    failed = log.of("task-failed", uuid=bad.id)[0]
    assert failed["exception"] == "ValueError('boom')"
    assert "ValueError: boom" in failed["traceback"]
    mine = [e for e in log.events if e["hostname"] == host]
    clocks = [e["clock"] for e in mine]
    assert clocks == sorted(clocks) and len(set(clocks)) == len(clocks)
    beat = log.of("worker-heartbeat", hostname=host)[0]
    assert beat["freq"] == 2.0 and beat["sw_ident"] == "py-celeriac"
    assert len(beat["loadavg"]) == 3
    offline = log.of("worker-offline", hostname=host)[0]
    assert offline["processed"] == 2 and offline["active"] == 0
    # the cluster state followed along
    assert state.tasks[ok.id].state == states.SUCCESS
    assert state.tasks[bad.id].state == states.FAILURE
    assert state.tasks[ok.id].name == "ev.add" and state.tasks[ok.id].worker == host
    assert set(state.tasks[ok.id].timestamps) == {"sent", "received", "started", "succeeded"}
    assert state.alive_workers() == []


async def test_worker_without_E_sends_worker_events_only(
        watched: tuple[Celery, EventLog, ClusterState], broker: str, redis_url: str,
        tmp_path: Path) -> None:
    app, log, _ = watched
    app.conf.task_send_sent_event = False
    host, worker = await _online_worker(log, tmp_path, broker, redis_url)
    try:
        result = app.send_task("ev.add", (2, 3))
        assert await asyncio.to_thread(result.get, 20) == 5
        await log.wait_for(lambda: log.of("worker-heartbeat", hostname=host, processed=1),
                           "a heartbeat after the task")
        worker.signal(signal.SIGTERM)
        await log.wait_for(lambda: log.of("worker-offline", hostname=host), "worker-offline")
    finally:
        worker.stop()
    assert [e for e in log.events if e["type"].startswith("task-")] == []


async def test_receiver_limit_and_binding_keys(broker: str) -> None:
    app = Celery("client", broker=broker)
    seen: list[str] = []
    receiver = EventReceiver(app, {"*": lambda e: seen.append(e["type"])},
                             binding_keys=("worker.#",))
    capture = asyncio.ensure_future(receiver.acapture(limit=2, timeout=30))
    await receiver.wait_ready()
    transport = app.new_transport()
    await transport.connect()
    try:
        await transport.broadcast(EVENT_EXCHANGE, event_envelope(
            [task_event("task-started", hostname="x", pid=1, clock=1, uuid="u")],
            hostname="x"))
        for clock in (2, 3, 4):
            await transport.broadcast(EVENT_EXCHANGE, event_envelope(
                worker_event("worker-heartbeat", hostname="x", pid=1, clock=clock),
                hostname="x"))
        assert await capture == 2
    finally:
        await transport.close()
    assert seen == ["worker-heartbeat", "worker-heartbeat"]


async def test_clients_send_task_sent_from_async_and_bulk_sends(
        watched: tuple[Celery, EventLog, ClusterState]) -> None:
    app, log, _ = watched
    one = await app.asend_task("ev.add", (1, 1))
    many = app.send_many("ev.add", [(2, 2), (3, 3)])
    ids = [one.id, *(r.id for r in many)]
    await log.wait_for(lambda: all(log.of("task-sent", uuid=i) for i in ids), "task-sent x3")
    sent = [log.of("task-sent", uuid=i)[0] for i in ids]
    assert [e["args"] for e in sent] == ["(1, 1)", "(2, 2)", "(3, 3)"]
    assert {e["routing_key"] for e in sent} == {QUEUE}
    assert [e["clock"] for e in sent] == sorted(e["clock"] for e in sent)


async def test_enable_events_by_remote_control_turns_task_events_on_and_off(
        watched: tuple[Celery, EventLog, ClusterState], broker: str, redis_url: str,
        tmp_path: Path) -> None:
    app, log, _ = watched
    app.conf.task_send_sent_event = False
    host, worker = await _online_worker(log, tmp_path, broker, redis_url)
    try:
        before = app.send_task("ev.add", (1, 1))
        assert await asyncio.to_thread(before.get, 20) == 2
        replies = await asyncio.to_thread(app.control.enable_events, reply=True, timeout=5.0,
                                          destination=[host])
        assert replies == [{host: {"ok": "task events enabled"}}]
        during = app.send_task("ev.add", (2, 3))
        assert await asyncio.to_thread(during.get, 20) == 5
        await log.wait_for(lambda: log.of("task-succeeded", uuid=during.id), "task events")
        replies = await asyncio.to_thread(app.control.disable_events, reply=True, timeout=5.0,
                                          destination=[host])
        assert replies == [{host: {"ok": "task events disabled"}}]
        after = app.send_task("ev.add", (3, 4))
        assert await asyncio.to_thread(after.get, 20) == 7
        # Two heartbeats later any task event of `after` would have been flushed
        # (they go out within 0.1 s, on the heartbeat's connection, in order).
        beats = len(log.of("worker-heartbeat", hostname=host))
        await log.wait_for(lambda: len(log.of("worker-heartbeat", hostname=host)) >= beats + 2,
                           "two heartbeats after the last task")
    finally:
        worker.stop()
    assert log.of("task-received", uuid=before.id) == []
    assert log.of("task-started", uuid=during.id) and log.of("task-received", uuid=during.id)
    assert log.of("task-received", uuid=after.id) == []


@pytest.mark.parametrize("eta_on_queue", [False, True])
async def test_an_eta_task_is_received_once(
        watched: tuple[Celery, EventLog, ClusterState], broker: str, redis_url: str,
        tmp_path: Path, eta_on_queue: bool) -> None:
    # eta_on_queue: the message waits on its queue with its eta header, as a Celery
    # client sends it; on Redis the worker moves it to the delayed store and takes
    # it again when due. Either way one task-received, then the task runs on time.
    app, log, _ = watched
    if eta_on_queue:
        app.conf.broker_transport_options = {"eta_on_queue": True}
    host = expand_hostname("ev1@%h")
    worker = _start_worker(tmp_path, broker, redis_url, "-E")
    try:
        await log.wait_for(lambda: log.of("worker-online", hostname=host), "worker-online")
        sent_at = time.time()
        result = app.send_task("ev.add", (4, 4), countdown=2)
        assert await asyncio.to_thread(result.get, 30) == 8
        await log.wait_for(lambda: log.of("task-succeeded", uuid=result.id), "task-succeeded")
        # the events of one worker leave in order: a second task-received would have
        # come before this heartbeat
        beats = len(log.of("worker-heartbeat", hostname=host))
        await log.wait_for(lambda: len(log.of("worker-heartbeat", hostname=host)) > beats,
                           "a heartbeat after the task")
    finally:
        worker.stop()
    (received,) = log.of("task-received", uuid=result.id)
    assert received["eta"] is not None
    started = log.of("task-started", uuid=result.id)[0]
    assert started["timestamp"] >= sent_at + 2.0 - 0.05


async def test_event_clocks_are_the_apps_lamport_clock(
        watched: tuple[Celery, EventLog, ClusterState], broker: str, redis_url: str,
        tmp_path: Path) -> None:
    app, log, _ = watched
    host, worker = await _online_worker(log, tmp_path, broker, redis_url)
    try:
        # The receiver moved the client's clock past every event it handled.
        assert app.clock.value > max(e["clock"] for e in log.events)
        # A control call carries the client's clock; the worker's clock moves past it,
        # and its next events are stamped after it.
        app.clock.adjust(10_000)
        asked = app.clock.value
        replies = await asyncio.to_thread(app.control.inspect([host], timeout=5.0).clock)
        assert replies is not None and replies[host]["clock"] > asked
        beats = len(log.of("worker-heartbeat", hostname=host))
        await log.wait_for(lambda: len(log.of("worker-heartbeat", hostname=host)) > beats,
                           "a heartbeat after the call")
        assert log.of("worker-heartbeat", hostname=host)[-1]["clock"] > replies[host]["clock"]
    finally:
        worker.stop()
