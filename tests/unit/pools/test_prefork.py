"""The prefork pool with real forked children: results, limits, recycling, recovery."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from celeriac import signals
from celeriac.app.context import Context
from celeriac.app.core import App
from celeriac.errors import SoftTimeLimitExceeded
from celeriac.protocol import states
from celeriac.worker.pools.base import Job, PoolOptions
from celeriac.worker.pools.prefork import PreforkPool

WAIT = 8.0  # bound on any single wait in these tests


def _wait_for_file(path: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(path)
        time.sleep(0.005)


async def _until(predicate: Callable[[], bool], timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


async def _file_appears(path: Path) -> None:
    await _until(path.exists)


_init_seen: list[int] = []


@signals.worker_process_init.connect
def _on_process_init(sender: Any = None, **kwargs: Any) -> None:
    _init_seen.append(os.getpid())


@pytest.fixture(scope="module")
def app() -> App:
    app = App("prefork-tests", set_as_current=False)

    @app.task(name="add")
    def add(x: int, y: int) -> int:
        return x + y

    @app.task(name="pid")
    def pid() -> int:
        return os.getpid()

    @app.task(name="noop")
    def noop() -> None:
        return None

    @app.task(name="boom")
    def boom() -> None:
        raise ValueError("boom")

    @app.task(name="whoami", bind=True)
    def whoami(self: Any) -> tuple[str | None, int]:
        return self.request.id, self.request.retries

    @app.task(name="apid")
    async def apid() -> int:
        await asyncio.sleep(0)
        return os.getpid()

    @app.task(name="soft")
    def soft() -> str:
        try:
            time.sleep(WAIT)
        except SoftTimeLimitExceeded:
            return "cleaned up"
        return "not interrupted"

    @app.task(name="block")
    def block(started: str, release: str | None = None, seconds: float = WAIT) -> int:
        # Written whole, then renamed: a waiter that sees the file sees the pid.
        Path(started + ".tmp").write_text(str(os.getpid()))
        os.replace(started + ".tmp", started)
        if release is None:
            time.sleep(seconds)
        else:
            _wait_for_file(release)
        return os.getpid()

    @app.task(name="hog")
    def hog(mib: int) -> int:
        _keep.append(b"x" * (mib << 20))
        return os.getpid()

    @app.task(name="unpicklable")
    def unpicklable() -> Any:
        return lambda: None

    @app.task(name="inited")
    def inited() -> bool:
        return os.getpid() in _init_seen

    return app


_keep: list[bytes] = []

PoolFactory = Callable[..., Awaitable[PreforkPool]]


@pytest.fixture
async def make_pool(app: App) -> AsyncIterator[PoolFactory]:
    pools: list[PreforkPool] = []

    async def make(**kwargs: Any) -> PreforkPool:
        extra = {k: kwargs.pop(k) for k in ("keepalive", "autoscale_interval") if k in kwargs}
        pool = PreforkPool(app, PoolOptions(**kwargs), **extra)
        await pool.start()
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        await pool.stop(cold=True)
        assert pool.pids == []


def job(name: str, *args: Any, task_id: str | None = None, **limits: Any) -> Job:
    ctx = Context(id=task_id or f"id-{name}-{time.perf_counter_ns()}", task=name, args=args)
    return Job(name, ctx, **limits)


async def test_results_match_their_jobs(make_pool: PoolFactory) -> None:
    pool = await make_pool(concurrency=2)
    outs = await asyncio.gather(*(pool.run(job("add", i, i)) for i in range(50)))
    assert [o.status for o in outs] == [states.SUCCESS] * 50
    assert [o.value for o in outs] == [2 * i for i in range(50)]
    assert len(set(pool.pids)) == 2 and os.getpid() not in pool.pids


async def test_task_exception_is_a_failure_outcome(make_pool: PoolFactory) -> None:
    pool = await make_pool()
    out = await pool.run(job("boom"))
    assert out.status == states.FAILURE
    assert out.exc is None  # crossed the pipe in wire form only
    assert out.exc_wire is not None and out.exc_wire["exc_type"] == "ValueError"
    assert out.traceback is not None and "ValueError: boom" in out.traceback


async def test_unknown_task_and_unpicklable_result_fail(make_pool: PoolFactory) -> None:
    pool = await make_pool()
    missing = await pool.run(job("no.such.task"))
    assert missing.status == states.FAILURE
    assert missing.exc_wire is not None and missing.exc_wire["exc_type"] == "NotRegistered"
    bad = await pool.run(job("unpicklable"))
    assert bad.status == states.FAILURE
    assert bad.exc_wire is not None and bad.exc_wire["exc_type"] == "EncodeError"
    assert (await pool.run(job("add", 1, 2))).value == 3


async def test_bound_task_sees_its_request(make_pool: PoolFactory) -> None:
    pool = await make_pool()
    ctx = Context(id="req-1", task="whoami", retries=3)
    out = await pool.run(Job("whoami", ctx))
    assert out.value == ("req-1", 3)


async def test_child_sends_worker_process_init(make_pool: PoolFactory) -> None:
    pool = await make_pool()
    assert (await pool.run(job("inited"))).value is True


async def test_async_task_runs_in_the_child(make_pool: PoolFactory) -> None:
    pool = await make_pool()
    out = await pool.run(job("apid"))
    assert out.status == states.SUCCESS
    assert out.value in pool.pids


async def test_soft_time_limit_raises_inside_the_task(make_pool: PoolFactory) -> None:
    pool = await make_pool()
    started = time.monotonic()
    out = await pool.run(job("soft", soft_time_limit=0.2))
    assert out.value == "cleaned up"
    assert time.monotonic() - started < WAIT / 2
    # the alarm was disarmed: the same child keeps running plain jobs
    assert (await pool.run(job("add", 2, 2))).value == 4


async def test_hard_time_limit_kills_and_replaces_the_child(
    make_pool: PoolFactory, tmp_path: Path
) -> None:
    pool = await make_pool()
    [old] = pool.pids
    out = await pool.run(job("block", str(tmp_path / "s"), time_limit=0.3))
    assert out.status == states.FAILURE
    assert out.exc_wire is not None and out.exc_wire["exc_type"] == "TimeLimitExceeded"
    after = await pool.run(job("pid"))
    assert after.status == states.SUCCESS and after.value != old
    assert pool.pids == [after.value]


async def test_killed_child_loses_its_job_and_requeues_the_next(
    make_pool: PoolFactory, tmp_path: Path
) -> None:
    pool = await make_pool(concurrency=1, per_child_queue=2)
    started = tmp_path / "started"
    running = asyncio.ensure_future(pool.run(job("block", str(started))))
    queued = asyncio.ensure_future(pool.run(job("pid")))  # sent to the same child
    await _file_appears(started)
    victim = int(started.read_text())
    os.kill(victim, signal.SIGKILL)
    lost = await asyncio.wait_for(running, WAIT)
    assert lost.status == states.FAILURE
    assert lost.exc_wire is not None and lost.exc_wire["exc_type"] == "WorkerLostError"
    assert "signal 9 (SIGKILL)" in str(lost.exc_wire["exc_message"])
    rerun = await asyncio.wait_for(queued, WAIT)
    assert rerun.status == states.SUCCESS and rerun.value != victim


async def test_max_tasks_per_child_recycles(make_pool: PoolFactory) -> None:
    pool = await make_pool(concurrency=1, max_tasks_per_child=2, per_child_queue=4)
    outs = await asyncio.gather(*(pool.run(job("pid")) for _ in range(6)))
    pids = [o.value for o in outs]
    assert len(set(pids)) == 3
    assert pids[0] == pids[1] != pids[2] == pids[3] != pids[4] == pids[5]


def _rss_kib() -> int:
    with open("/proc/self/statm", "rb") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


async def test_max_memory_per_child_recycles(make_pool: PoolFactory) -> None:
    pool = await make_pool(concurrency=1, max_memory_per_child=_rss_kib() + 40_000)
    first = (await pool.run(job("pid"))).value
    assert (await pool.run(job("pid"))).value == first  # under the limit: kept
    assert (await pool.run(job("hog", 80))).value == first
    after = (await pool.run(job("pid"))).value
    assert after != first


async def test_terminate_revokes_the_running_job(
    make_pool: PoolFactory, tmp_path: Path
) -> None:
    pool = await make_pool()
    started = tmp_path / "started"
    running = asyncio.ensure_future(pool.run(job("block", str(started), task_id="t-1")))
    await _file_appears(started)
    victim = int(started.read_text())
    assert await pool.terminate("t-1", signal.SIGTERM)
    assert not await pool.terminate("unknown", signal.SIGTERM)
    out = await asyncio.wait_for(running, WAIT)
    assert out.status == states.REVOKED
    assert out.exc_wire is not None and out.exc_wire["exc_type"] == "TaskRevokedError"
    after = await pool.run(job("pid"))
    assert after.status == states.SUCCESS and after.value != victim


async def test_warm_stop_waits_for_running_jobs(app: App, tmp_path: Path) -> None:
    pool = PreforkPool(app, PoolOptions(concurrency=1))
    await pool.start()
    started = tmp_path / "started"
    running = asyncio.ensure_future(pool.run(job("block", str(started), None, 0.5)))
    await _file_appears(started)
    await asyncio.wait_for(pool.stop(), WAIT)
    assert running.done()
    assert running.result().status == states.SUCCESS
    assert pool.pids == []


async def test_cold_stop_requeues_unfinished_jobs(app: App, tmp_path: Path) -> None:
    pool = PreforkPool(app, PoolOptions(concurrency=1, per_child_queue=2))
    await pool.start()
    started = tmp_path / "started"
    futures = [asyncio.ensure_future(pool.run(job("block", str(started))))]
    futures += [asyncio.ensure_future(pool.run(job("pid"))) for _ in range(3)]
    await _file_appears(started)
    began = time.monotonic()
    await asyncio.wait_for(pool.stop(cold=True), WAIT)
    assert time.monotonic() - began < WAIT / 2
    outs = [f.result() for f in futures]
    assert all(o.requeue for o in outs)
    assert all(o.exc_wire and o.exc_wire["exc_type"] == "WorkerLostError" for o in outs)
    assert pool.pids == []


async def test_fair_dispatch_keeps_short_jobs_off_a_busy_child(
    make_pool: PoolFactory, tmp_path: Path
) -> None:
    pool = await make_pool(concurrency=2, per_child_queue=1)
    started, release = tmp_path / "started", tmp_path / "release"
    long = asyncio.ensure_future(pool.run(job("block", str(started), str(release))))
    await _file_appears(started)
    busy = int(started.read_text())
    outs = await asyncio.wait_for(
        asyncio.gather(*(pool.run(job("pid")) for _ in range(5))), WAIT
    )
    assert {o.value for o in outs} == set(pool.pids) - {busy}
    assert not long.done()
    release.touch()
    assert (await asyncio.wait_for(long, WAIT)).value == busy


async def test_grow_and_shrink(make_pool: PoolFactory) -> None:
    pool = await make_pool(concurrency=1)
    await pool.grow(2)
    assert pool.limit == 3 and len(pool.pids) == 3
    outs = await asyncio.gather(*(pool.run(job("add", 1, 1)) for _ in range(10)))
    assert all(o.value == 2 for o in outs)
    await pool.shrink(2)
    assert pool.limit == 1
    await _until(lambda: len(pool.pids) == 1)
    assert (await pool.run(job("add", 2, 3))).value == 5
    assert pool.info()["processes"] == pool.pids


async def test_autoscale_grows_under_load_and_shrinks_when_idle(
    make_pool: PoolFactory, tmp_path: Path
) -> None:
    pool = await make_pool(autoscale=(3, 1), keepalive=0.3, autoscale_interval=0.05)
    assert len(pool.pids) == 1
    release = tmp_path / "release"
    running = [
        asyncio.ensure_future(pool.run(job("block", str(tmp_path / f"s{i}"), str(release))))
        for i in range(3)
    ]
    for i in range(3):
        await _file_appears(tmp_path / f"s{i}")
    assert len(pool.pids) == 3
    release.touch()
    assert len({(await r).value for r in running}) == 3
    await _until(lambda: len(pool.pids) == 1)
    assert pool.limit == 1


async def test_two_thousand_noop_jobs(make_pool: PoolFactory) -> None:
    pool = await make_pool(concurrency=2)
    outs = await asyncio.wait_for(
        asyncio.gather(*(pool.run(job("noop")) for _ in range(2000))), WAIT
    )
    assert sum(o.status == states.SUCCESS for o in outs) == 2000


async def test_uncaught_soft_time_limit_fails_the_task(
    make_pool: PoolFactory, tmp_path: Path
) -> None:
    pool = await make_pool()
    out = await pool.run(job("block", str(tmp_path / "s"), soft_time_limit=0.1))
    assert out.status == states.FAILURE
    assert out.exc_wire is not None and out.exc_wire["exc_type"] == "SoftTimeLimitExceeded"


async def test_terminate_of_a_waiting_job_revokes_it_without_running_it(
    make_pool: PoolFactory, tmp_path: Path
) -> None:
    pool = await make_pool(concurrency=1, per_child_queue=1)
    started, release = tmp_path / "started", tmp_path / "release"
    running = asyncio.ensure_future(pool.run(job("block", str(started), str(release))))
    await _file_appears(started)
    waiting = asyncio.ensure_future(pool.run(job("pid", task_id="t-wait")))
    await asyncio.sleep(0)  # run() registers it; the only child is busy, so it waits
    assert await pool.terminate("t-wait", signal.SIGTERM)
    out = await asyncio.wait_for(waiting, WAIT)
    assert out.status == states.REVOKED and out.runtime == 0.0
    release.touch()
    assert (await asyncio.wait_for(running, WAIT)).status == states.SUCCESS


async def test_terminate_with_a_signal_the_child_ignores_keeps_the_child(
    make_pool: PoolFactory, tmp_path: Path
) -> None:
    pool = await make_pool(concurrency=1)
    started, release = tmp_path / "started", tmp_path / "release"
    running = asyncio.ensure_future(
        pool.run(job("block", str(started), str(release), task_id="t-int"))
    )
    await _file_appears(started)
    assert await pool.terminate("t-int", signal.SIGINT)  # children ignore SIGINT
    release.touch()
    out = await asyncio.wait_for(running, WAIT)
    assert out.status == states.REVOKED
    again = await asyncio.wait_for(pool.run(job("pid")), WAIT)
    assert again.value == int(started.read_text())


async def test_large_arguments_and_results_cross_the_pipes(make_pool: PoolFactory) -> None:
    pool = await make_pool(concurrency=2)
    big = "x" * (1 << 20)  # far over a pipe's buffer: partial writes on both sides
    outs = await asyncio.gather(*(pool.run(job("add", big, str(i))) for i in range(4)))
    assert [o.value for o in outs] == [big + str(i) for i in range(4)]


async def test_run_after_stop_gives_the_job_back(app: App) -> None:
    pool = PreforkPool(app, PoolOptions(concurrency=1))
    with pytest.raises(RuntimeError):
        await pool.run(job("noop"))
    await pool.start()
    await pool.stop()
    out = await pool.run(job("noop"))
    assert out.requeue and out.exc_wire is not None
    assert out.exc_wire["exc_type"] == "WorkerLostError"


def _submitted(pool: PreforkPool, submitted: Job) -> asyncio.Future[Any]:
    """``pool.submit(submitted)`` with its callback's outcome in a future."""
    done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    pool.submit(submitted, done.set_result)
    return done


async def test_submitted_jobs_report_through_their_callbacks(make_pool: PoolFactory) -> None:
    pool = await make_pool(concurrency=2)
    assert pool.submits
    outs = await asyncio.wait_for(
        asyncio.gather(*(_submitted(pool, job("add", i, i)) for i in range(50))), WAIT)
    assert [o.value for o in outs] == [2 * i for i in range(50)]
    failed = await asyncio.wait_for(_submitted(pool, job("boom")), WAIT)
    assert failed.status == states.FAILURE


async def test_submitted_job_of_a_killed_child_is_lost_and_the_next_reruns(
    make_pool: PoolFactory, tmp_path: Path
) -> None:
    pool = await make_pool(concurrency=1, per_child_queue=2)
    started = tmp_path / "started"
    running = _submitted(pool, job("block", str(started)))
    queued = _submitted(pool, job("pid"))  # sent to the same child
    await _file_appears(started)
    victim = int(started.read_text())
    os.kill(victim, signal.SIGKILL)
    lost = await asyncio.wait_for(running, WAIT)
    assert lost.exc_wire is not None and lost.exc_wire["exc_type"] == "WorkerLostError"
    rerun = await asyncio.wait_for(queued, WAIT)
    assert rerun.status == states.SUCCESS and rerun.value != victim


async def test_submitted_jobs_come_back_on_cold_stop_and_after_stop(
    app: App, tmp_path: Path
) -> None:
    pool = PreforkPool(app, PoolOptions(concurrency=1, per_child_queue=2))
    await pool.start()
    started = tmp_path / "started"
    outs = [_submitted(pool, job("block", str(started)))]
    outs += [_submitted(pool, job("pid")) for _ in range(3)]
    await _file_appears(started)
    await asyncio.wait_for(pool.stop(cold=True), WAIT)
    late = _submitted(pool, job("noop"))
    for out in [*outs, late]:
        result = await asyncio.wait_for(out, WAIT)
        assert result.requeue and result.exc_wire["exc_type"] == "WorkerLostError"
