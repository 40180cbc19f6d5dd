"""Remote control through real workers (in threads) on the memory and SQLite transports."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from tests.helpers.control import broadcast_concurrently

from celeriac import Celery
from celeriac.cli.control import arguments_for
from celeriac.control.client import _ReplyQueueUsers
from celeriac.testing.worker_thread import run_worker


@pytest.fixture(params=["memory", "sqlite"])
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Celery]:
    memory = request.param == "memory"
    url = f"memory://{tmp_path.name}" if memory else f"sqlite:///{tmp_path}/t.db"
    app = Celery("t", broker=url, backend=url)
    app.conf.task_default_queue = "work"
    gate = threading.Event()

    @app.task(name="t.add")
    def add(x: int, y: int) -> int:
        return x + y

    @app.task(name="t.wait")
    def wait() -> str:
        gate.wait(30)
        return "done"

    app.gate = gate  # type: ignore[attr-defined]
    yield app
    gate.set()


def test_inspect_shapes(app: Celery) -> None:
    with run_worker(app, hostname="w1@t") as worker:
        inspect = app.control.inspect(["w1@t"], timeout=5.0)
        assert inspect.ping() == {"w1@t": {"ok": "pong"}}
        assert app.control.ping(timeout=5.0, limit=1) == [{"w1@t": {"ok": "pong"}}]
        registered = inspect.registered()  # (other tests' shared tasks may be there too)
        assert registered is not None and {"t.add", "t.wait"} <= set(registered["w1@t"])
        stats = inspect.stats()
        assert stats is not None and stats["w1@t"]["pid"] == worker.pid
        queues = inspect.active_queues()
        assert queues is not None and [q["name"] for q in queues["w1@t"]] == ["work"]
        assert inspect.revoked() == {"w1@t": []}
        conf = inspect.conf()
        assert conf is not None and conf["w1@t"]["task_default_queue"] == "work"


def test_active_shows_the_running_task(app: Celery) -> None:
    with run_worker(app, hostname="w1@t"):
        result = app.send_task("t.wait")
        inspect = app.control.inspect(timeout=5.0, limit=1)
        for _ in range(50):
            active = inspect.active() or {}
            if [t["id"] for t in active.get("w1@t", [])] == [result.id]:
                break
        else:
            raise AssertionError(f"active never showed {result.id}: {active}")
        (info,) = active["w1@t"]
        assert info["name"] == "t.wait" and info["hostname"] == "w1@t"
        assert info["time_start"] is not None
        app.gate.set()  # type: ignore[attr-defined]
        assert result.get(timeout=10) == "done"


def test_destination_selects_the_worker(app: Celery) -> None:
    with run_worker(app, hostname="w1@t"), run_worker(app, hostname="w2@t"):
        assert app.control.inspect(timeout=5.0, limit=2).ping() == {
            "w1@t": {"ok": "pong"}, "w2@t": {"ok": "pong"}}
        assert app.control.inspect(["w2@t"], timeout=5.0).ping() == {"w2@t": {"ok": "pong"}}
        assert app.control.inspect("w1@t", timeout=5.0).ping() == {"ok": "pong"}
        assert app.control.inspect(["nobody@t"], timeout=0.3).ping() is None


def test_rate_limit_changes_the_workers_limit(app: Celery) -> None:
    with run_worker(app, hostname="w1@t") as worker:
        replies = app.control.rate_limit("t.add", "10/m", reply=True, timeout=5.0, limit=1)
        assert replies == [{"w1@t": {"ok": "new rate limit set successfully"}}]
        assert worker.rate_limits.rate("t.add") == pytest.approx(10 / 60)
        replies = app.control.rate_limit("t.nope", "1/s", reply=True, timeout=5.0, limit=1)
        assert replies == [{"w1@t": {"error": "unknown task"}}]


def test_time_limit_sets_the_tasks_limits(app: Celery) -> None:
    with run_worker(app, hostname="w1@t"):
        replies = app.control.time_limit("t.add", soft=1, hard=2, reply=True, timeout=5.0, limit=1)
        assert replies == [{"w1@t": {"ok": "time limits set successfully"}}]
        registered = app.control.inspect(timeout=5.0, limit=1).registered()
        assert registered is not None
        assert "t.add [time_limit=2.0 soft_time_limit=1.0]" in registered["w1@t"]


def test_add_and_cancel_consumer(app: Celery) -> None:
    with run_worker(app, hostname="w1@t") as worker:
        replies = app.control.add_consumer("extra", reply=True, timeout=5.0, limit=1)
        assert replies == [{"w1@t": {"ok": "add consumer extra"}}]
        assert worker.queues == ["work", "extra"]
        assert app.send_task("t.add", (1, 2), queue="extra").get(timeout=10) == 3
        replies = app.control.cancel_consumer("extra", reply=True, timeout=5.0, limit=1)
        assert replies == [{"w1@t": {"ok": "no longer consuming from 'extra'"}}]
        assert worker.queues == ["work"]
        replies = app.control.cancel_consumer("work", reply=True, timeout=5.0, limit=1)
        assert replies is not None and "error" in replies[0]["w1@t"]


def test_revoke_with_reply_and_unknown_command(app: Celery) -> None:
    with run_worker(app, hostname="w1@t"):
        replies = app.control.revoke("abc", reply=True, timeout=5.0, limit=1)
        assert replies == [{"w1@t": {"ok": "tasks {'abc'} flagged as revoked"}}]
        assert app.control.inspect(timeout=5.0, limit=1).revoked() == {"w1@t": ["abc"]}
        replies = app.control.broadcast("frobnicate", reply=True, timeout=5.0, limit=1)
        assert replies == [{"w1@t": {"error": "unknown command 'frobnicate'"}}]
        replies = app.control.broadcast("pool_grow", {"n": "many"}, reply=True, timeout=5.0,
                                        limit=1)
        assert replies == [{"w1@t": {"error": "pool_grow needs a whole number n"}}]
        replies = app.control.broadcast("rate_limit", {"task_name": "t.add"}, reply=True,
                                        timeout=5.0, limit=1)  # no rate: removes the limit
        assert replies == [{"w1@t": {"ok": "rate limit disabled successfully"}}]
        assert app.control.inspect(timeout=5.0, limit=1).ping() == {"w1@t": {"ok": "pong"}}


def test_events_switches_turn_task_events_on_and_off(app: Celery) -> None:
    with run_worker(app, hostname="w1@t") as worker:
        assert not worker.events.task_events
        assert app.control.disable_events(reply=True, timeout=5.0, limit=1) == [
            {"w1@t": {"ok": "task events already disabled"}}]
        assert app.control.enable_events(reply=True, timeout=5.0, limit=1) == [
            {"w1@t": {"ok": "task events enabled"}}]
        assert worker.events.task_events
        assert app.control.enable_events(reply=True, timeout=5.0, limit=1) == [
            {"w1@t": {"ok": "task events already enabled"}}]
        assert app.control.disable_events(reply=True, timeout=5.0, limit=1) == [
            {"w1@t": {"ok": "task events disabled"}}]
        assert not worker.events.task_events


def test_shutdown_stops_the_worker_warm(app: Celery) -> None:
    with run_worker(app, hostname="w1@t") as worker:
        result = app.send_task("t.wait")
        for _ in range(50):
            if (app.control.inspect(timeout=5.0, limit=1).active() or {}).get("w1@t"):
                break
        assert app.control.shutdown() is None
        for _ in range(100):
            if worker._stop.is_set():
                break
            threading.Event().wait(0.05)
        assert worker._stop.is_set()
        app.gate.set()  # type: ignore[attr-defined]
    assert result.get(timeout=10) == "done"


def test_remote_control_can_be_switched_off(tmp_path: Path) -> None:
    url = f"memory://{tmp_path.name}-off"
    app = Celery("t", broker=url, backend=url)
    app.conf.worker_enable_remote_control = False
    with run_worker(app, hostname="w1@t"):
        assert app.control.inspect(timeout=0.5).ping() is None


@pytest.mark.parametrize(("command", "values", "expected"), [
    ("rate_limit", ("t.add", "10/m"), {"task_name": "t.add", "rate_limit": "10/m"}),
    ("rate_limit", ("t.add", "0"), {"task_name": "t.add", "rate_limit": None}),
    ("time_limit", ("t.add", "1.5"), {"task_name": "t.add", "soft": 1.5}),
    ("pool_grow", ("2",), {"n": 2}),
    ("pool_shrink", (), {}),
    ("add_consumer", ("q", "ex", "topic", "k"),
     {"queue": "q", "exchange": "ex", "exchange_type": "topic", "routing_key": "k"}),
    ("revoke", ("a", "b"), {"task_id": ["a", "b"], "terminate": False, "signal": "SIGTERM"}),
    ("terminate", ("SIGKILL", "a"), {"signal": "SIGKILL", "task_id": ["a"], "terminate": True}),
])
def test_cli_control_arguments(command: str, values: tuple[str, ...],
                               expected: dict[str, object]) -> None:
    assert arguments_for(command, values) == expected


def test_cli_rejects_bad_usage() -> None:
    from celeriac.cli.main import cli

    runner = CliRunner()
    out = runner.invoke(cli, ["-A", "x", "control", "rate_limit", "t.add"])
    assert out.exit_code == 2 and "usage: control rate_limit TASK_NAME RATE_LIMIT" in out.output
    out = runner.invoke(cli, ["-A", "x", "control", "pool_grow", "many"])
    assert out.exit_code == 2 and "N must be a number" in out.output
    out = runner.invoke(cli, ["-A", "x", "inspect", "everything"])
    assert out.exit_code == 2 and "valid: active, active_queues" in out.output


def test_concurrent_calls_of_one_process_each_get_their_replies(app: Celery) -> None:
    # All calls of a process share the app's reply queue: a call that reads
    # another's reply must keep it for that call, not drop it.
    with run_worker(app, hostname="w1@t"):
        answers = broadcast_concurrently(app, ("ping", "stats", "active_queues", "ping"),
                                         reply=True, timeout=10.0, limit=1)
        assert len(answers) == 12
        for command, got in answers:
            assert isinstance(got, list) and len(got) == 1 and "w1@t" in got[0], (command, got)
            if command == "ping":
                assert got == [{"w1@t": {"ok": "pong"}}]


def test_scheduled_lists_eta_tasks_the_memory_broker_holds(tmp_path: Path) -> None:
    url = f"memory://{tmp_path.name}-eta"
    app = Celery("t", broker=url, backend=url)
    app.conf.task_default_queue = "work"
    eta = datetime.now(UTC) + timedelta(seconds=600)
    with run_worker(app, hostname="w1@t"):
        result = app.send_task("t.later", (1,), {"k": 2}, eta=eta)
        app.send_task("t.later", countdown=600, queue="elsewhere")
        scheduled = app.control.inspect(["w1@t"], timeout=5.0).scheduled()
        assert scheduled is not None
        (entry,) = scheduled["w1@t"]
        assert datetime.fromisoformat(entry["eta"]) == eta
        request = entry["request"]
        assert (request["id"], request["name"], request["args"], request["kwargs"]) == (
            result.id, "t.later", [1], {"k": 2})
        assert request["worker_pid"] is None and request["acknowledged"] is False


def test_clock_moves_with_every_request_and_reply(app: Celery) -> None:
    with run_worker(app, hostname="w1@t") as worker:
        inspect = app.control.inspect(["w1@t"], timeout=5.0)
        first = (inspect.clock() or {})["w1@t"]["clock"]
        assert app.clock.value > first  # the client adjusted to the reply's clock
        # (worker and client share the app here, hence one clock)
        sent = app.clock.adjust(500)
        second = (inspect.clock() or {})["w1@t"]["clock"]
        assert second > sent  # the request carried it; the worker moved past it
        assert worker.app.clock.value > second  # then the reply moved it again
        stats = inspect.stats()
        assert stats is not None and int(stats["w1@t"]["clock"]) > second


def test_the_last_call_deletes_the_reply_queue_and_new_calls_wait_for_it() -> None:
    users = _ReplyQueueUsers()
    order: list[str] = []

    async def main() -> None:
        await users.enter("q")
        await users.enter("q")
        assert not users.leave("q")  # another call still uses it
        assert users.leave("q")  # the last: it deletes the queue now

        async def newcomer() -> None:
            await users.enter("q")
            order.append("entered")

        task = asyncio.ensure_future(newcomer())
        for _ in range(5):
            await asyncio.sleep(0)
        assert order == [] and users.users("q") == 0  # waits for the delete
        order.append("deleted")
        users.deleted("q")
        await asyncio.wait_for(task, 5)
        assert users.users("q") == 1

    asyncio.run(main())
    assert order == ["deleted", "entered"]


def test_a_call_waits_for_a_delete_running_on_another_thread() -> None:
    users = _ReplyQueueUsers()
    entered = threading.Event()

    async def enter() -> None:
        await users.enter("q")
        entered.set()

    asyncio.run(users.enter("q"))
    assert users.leave("q")
    thread = threading.Thread(target=asyncio.run, args=(enter(),))
    thread.start()
    assert not entered.wait(0.2)
    users.deleted("q")
    assert entered.wait(10)
    thread.join(10)
