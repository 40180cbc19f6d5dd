"""Every command family against a real prefork worker over real Redis and RabbitMQ.

Each test asserts the command's effect on the worker, not only its reply.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.helpers.control import broadcast_concurrently
from tests.integration.control.conftest import Project, start_worker

from celeriac import Celery
from celeriac.errors import SoftTimeLimitExceeded
from celeriac.protocol.keys import PIDBOX_REPLY_EXCHANGE, binding_set_key


def _until(probe: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    """Ask ``probe`` (which waits for its replies itself) until it returns a truthy value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
    raise AssertionError(f"{what} not seen within {timeout}s")


def _inspect(app: Celery, node: str, method: str) -> Any:
    replies = getattr(app.control.inspect([node], timeout=5.0), method)()
    return (replies or {}).get(node)


def test_status_ping_and_stats_from_the_cli(project: Project, worker: str) -> None:
    out = project.cli("status")
    assert out.returncode == 0, out.stderr
    assert f"->  {worker}: OK" in out.stdout and "1 node online." in out.stdout
    out = project.cli("inspect", "ping", "-d", worker)
    assert out.returncode == 0 and "pong" in out.stdout
    out = project.cli("inspect", "stats", "-d", worker, "--json")
    stats = json.loads(out.stdout)[worker]
    assert stats["pool"]["implementation"] == "prefork" and len(stats["pool"]["processes"]) == 2
    out = project.cli("inspect", "registered", "-d", worker)
    assert "ctl.add" in out.stdout and "ctl.sleep" in out.stdout


def test_nobody_answers_is_an_error(project: Project, worker: str) -> None:
    out = project.cli("inspect", "ping", "-d", "nobody@nowhere", "-t", "0.5")
    assert out.returncode == 69
    assert "No nodes replied within time constraint" in out.stderr


def test_active_shows_the_running_task(project: Project, worker: str) -> None:
    app = project.client()
    result = app.send_task("ctl.sleep", (3,))
    active = _until(lambda: [t for t in _inspect(app, worker, "active") or []
                             if t["id"] == result.id], "the task in active")
    assert active[0]["name"] == "ctl.sleep" and active[0]["args"] == [3]
    # the prefork child that runs it, not the worker's main process (Celery's worker_pid)
    stats = _inspect(app, worker, "stats")
    assert active[0]["worker_pid"] in stats["pool"]["processes"]
    assert active[0]["worker_pid"] != stats["pid"]
    assert result.get(timeout=30) == 3


def test_rate_limit_holds_tasks_back_until_lifted(project: Project, worker: str) -> None:
    app = project.client()
    out = project.cli("control", "rate_limit", "ctl.add", "1/h", "-d", worker)
    assert out.returncode == 0 and "new rate limit set successfully" in out.stdout
    try:
        first = app.send_task("ctl.add", (1, 1))
        assert first.get(timeout=30) == 2
        second = app.send_task("ctl.add", (2, 2))
        _until(lambda: [t for t in _inspect(app, worker, "reserved") or []
                        if t["id"] == second.id], "the rate-limited task in reserved")
        assert second.state == "PENDING"
    finally:
        replies = app.control.rate_limit("ctl.add", None, destination=[worker], reply=True,
                                         timeout=5.0)
    assert replies == [{worker: {"ok": "rate limit disabled successfully"}}]
    assert second.get(timeout=30) == 4


def test_pool_grow_and_shrink_change_the_prefork_children(project: Project, worker: str) -> None:
    app = project.client()

    def children(n: int) -> Callable[[], bool]:
        return lambda: len((_inspect(app, worker, "stats") or {}).get(
            "pool", {}).get("processes", [])) == n

    _until(children(2), "2 children")
    assert app.control.pool_grow(1, destination=[worker], reply=True, timeout=5.0) == [
        {worker: {"ok": "pool will grow"}}]
    _until(children(3), "3 children")
    assert app.control.pool_shrink(1, destination=[worker], reply=True, timeout=5.0) == [
        {worker: {"ok": "pool will shrink"}}]
    _until(children(2), "2 children again")


def test_add_and_cancel_consumer(project: Project, worker: str) -> None:
    app = project.client()
    out = project.cli("control", "add_consumer", "ctl-extra", "-d", worker)
    assert out.returncode == 0 and "add consumer ctl-extra" in out.stdout
    queues = [q["name"] for q in _inspect(app, worker, "active_queues")]
    assert queues == ["ctl-q", "ctl-extra"]
    assert app.send_task("ctl.add", (3, 4), queue="ctl-extra").get(timeout=30) == 7
    out = project.cli("control", "cancel_consumer", "ctl-extra", "-d", worker)
    assert out.returncode == 0 and "no longer consuming from 'ctl-extra'" in out.stdout
    # A fetch that began before the cancel may still cover ctl-extra: one task on
    # ctl-q ends it; fetches after that leave ctl-extra alone.
    assert app.send_task("ctl.add", (0, 0)).get(timeout=30) == 0
    left = app.send_task("ctl.add", (5, 5), queue="ctl-extra")
    assert app.send_task("ctl.add", (0, 1)).get(timeout=30) == 1
    assert [q["name"] for q in _inspect(app, worker, "active_queues")] == ["ctl-q"]
    assert left.state == "PENDING"
    assert app.transport.queue_length_sync("ctl-extra") == 1
    app.transport.close_sync()


def test_time_limit_applies_to_the_next_run(project: Project, worker: str) -> None:
    app = project.client()
    out = project.cli("control", "time_limit", "ctl.sleep", "1", "2", "-d", worker)
    assert out.returncode == 0 and "time limits set successfully" in out.stdout
    try:
        with pytest.raises(SoftTimeLimitExceeded):
            app.send_task("ctl.sleep", (20,)).get(timeout=30)
    finally:
        app.control.time_limit("ctl.sleep", None, None, destination=[worker], reply=True,
                               timeout=5.0)


def test_revoke_and_terminate_with_replies(project: Project, worker: str) -> None:
    app = project.client()
    out = project.cli("control", "revoke", "ctl-id-1", "-d", worker)
    assert out.returncode == 0 and "tasks {'ctl-id-1'} flagged as revoked" in out.stdout
    assert "ctl-id-1" in _inspect(app, worker, "revoked")
    result = app.send_task("ctl.sleep", (60,))
    _until(lambda: [t for t in _inspect(app, worker, "active") or [] if t["id"] == result.id],
           "the task in active")
    out = project.cli("control", "terminate", "SIGTERM", result.id, "-d", worker)
    assert out.returncode == 0 and "flagged as revoked" in out.stdout
    _until(lambda: result.state == "REVOKED", "REVOKED")


def test_shutdown_is_warm_and_loses_nothing(project: Project) -> None:
    name = f"ctl-stop-{project.kind}@testhost"
    proc = start_worker(project, name, "-Q", "ctl-stop")
    app = project.client()
    try:
        result = app.send_task("ctl.sleep", (2,), queue="ctl-stop")
        _until(lambda: [t for t in _inspect(app, name, "active") or []
                        if t["id"] == result.id], "the task in active")
        out = project.cli("control", "shutdown", "-d", name)
        assert out.returncode == 0 and f"->  {name}: OK" in out.stdout
        assert proc.wait(60) == 0
    finally:
        proc.stop()
    assert result.get(timeout=10) == 2
    assert app.transport.queue_length_sync("ctl-stop") == 0
    app.transport.close_sync()


def test_scheduled_lists_the_eta_tasks_of_the_workers_queues(project: Project,
                                                              worker: str) -> None:
    # RabbitMQ cannot hold an ETA message: the worker keeps it, unacked, until due.
    # Redis holds it in celeriac's delayed store: scheduled reads it from there.
    app = project.client()
    eta = datetime.now(UTC) + timedelta(seconds=600)
    result = app.send_task("ctl.add", (8, 8), eta=eta, priority=3)
    other = app.send_task("ctl.add", (1, 1), countdown=600, queue="ctl-not-consumed")
    try:
        held = _until(lambda: [e for e in _inspect(app, worker, "scheduled") or []
                               if e["request"]["id"] == result.id], "the ETA task")
        (entry,) = held
        assert datetime.fromisoformat(entry["eta"]) == eta
        request = entry["request"]
        assert (request["name"], request["args"], request["kwargs"]) == ("ctl.add", [8, 8], {})
        assert request["hostname"] == worker and request["acknowledged"] is False
        assert request["time_start"] is None and request["worker_pid"] is None
        assert request["delivery_info"]["routing_key"] == "ctl-q"
        assert isinstance(entry["priority"], int)
        ids = [e["request"]["id"] for e in _inspect(app, worker, "scheduled")]
        assert other.id not in ids  # not a queue this worker consumes
    finally:
        app.control.revoke([result.id, other.id])


def test_clock_is_a_lamport_clock(project: Project, worker: str) -> None:
    app = project.client()
    first = _inspect(app, worker, "clock")["clock"]
    # the reply moved the client's clock past the worker's
    assert first > 0 and app.clock.value > first
    app.clock.adjust(first + 1_000)
    sent = app.clock.value
    second = _inspect(app, worker, "clock")["clock"]
    assert second > sent  # the request carried our clock; the worker moved past it
    assert int(_inspect(app, worker, "stats")["clock"]) > second
    out = project.cli("inspect", "clock", "-d", worker, "--json")
    assert out.returncode == 0 and json.loads(out.stdout)[worker]["clock"] > second


def test_concurrent_calls_share_the_reply_queue_and_the_last_deletes_it(
        project: Project, worker: str) -> None:
    app = project.client()
    answers = broadcast_concurrently(app, ("ping", "clock", "active_queues", "ping"),
                                     destination=[worker], reply=True, timeout=10.0)
    assert len(answers) == 12
    for command, got in answers:
        assert isinstance(got, list) and len(got) == 1 and worker in got[0], (command, got)
    if project.kind == "redis":
        import redis

        client = redis.Redis.from_url(project.broker)
        try:
            members = client.smembers(binding_set_key(PIDBOX_REPLY_EXCHANGE))
            assert not [m for m in members if app.oid.encode() in m]
            assert not client.keys(f"{app.oid}*")
        finally:
            client.close()
