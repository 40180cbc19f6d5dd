"""Tasks through a real worker (in a thread) on the memory and SQLite transports."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from celeriac import Celery
from celeriac.errors import RemoteTaskError
from celeriac.errors import TimeoutError as ResultTimeout
from celeriac.testing.worker_thread import run_worker


@pytest.fixture(params=["memory", "sqlite"])
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Celery:
    if request.param == "memory":
        url = f"memory://{tmp_path.name}"
        app = Celery("t", broker=url, backend=url)
    else:
        url = f"sqlite:///{tmp_path}/t.db"
        app = Celery("t", broker=url, backend=url)

    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    @app.task(bind=True)
    def whoami(self, tag: str) -> dict:  # type: ignore[no-untyped-def]
        r = self.request
        return {"id": r.id, "retries": r.retries, "hostname": r.hostname, "tag": tag,
                "queue": r.delivery_info["routing_key"], "eager": r.is_eager}

    @app.task
    async def aadd(x: int, y: int) -> int:
        await asyncio.sleep(0.01)
        return x + y

    @app.task
    def raise_custom() -> None:
        class Local(Exception):
            pass

        raise Local("not importable")

    return app


@pytest.mark.parametrize("pool", ["threads", "asyncio", "solo"])
def test_round_trip_and_request_context(app: Celery, pool: str) -> None:
    with run_worker(app, pool=pool, hostname="unit@%h"):
        assert app.tasks[f"{__name__}.add"].delay(2, 3).get(timeout=10) == 5
        r = app.tasks[f"{__name__}.whoami"].apply_async(("x",))
        info = r.get(timeout=10)
        assert info["id"] == r.id and info["retries"] == 0 and info["tag"] == "x"
        assert info["hostname"].startswith("unit@") and info["queue"] == "celery"
        assert info["eager"] is False
        assert app.tasks[f"{__name__}.aadd"].delay(1, 1).get(timeout=10) == 2


def test_async_client_api(app: Celery) -> None:
    aadd = app.tasks[f"{__name__}.aadd"]

    async def client() -> tuple[int, int]:
        r1 = await aadd.adelay(20, 22)
        r2 = await app.tasks[f"{__name__}.add"].aapply_async((1, 2))
        return await r1, await r2.aget(timeout=10)

    with run_worker(app, pool="asyncio"):
        assert asyncio.run(client()) == (42, 3)
        asyncio.run(app.aclose())


def test_unimportable_exception_gets_a_stand_in_that_names_it(app: Celery) -> None:
    with run_worker(app):
        r = app.tasks[f"{__name__}.raise_custom"].delay()
        with pytest.raises(RemoteTaskError) as info:
            r.get(timeout=10)
        assert "Local" in str(info.value) and "not importable" in str(info.value)
        assert r.state == "FAILURE" and "Local" in (r.traceback or "")


def test_get_times_out_with_celeriac_timeout(app: Celery) -> None:
    r = app.tasks[f"{__name__}.add"].delay(1, 1)
    with pytest.raises(ResultTimeout):
        r.get(timeout=0.2)
    assert r.state == "PENDING"


def test_countdown_and_expires(app: Celery) -> None:
    add = app.tasks[f"{__name__}.add"]
    with run_worker(app):
        later = add.apply_async((1, 2), countdown=0.5)
        expired = add.apply_async((1, 2), expires=-1)
        assert later.get(timeout=10) == 3
        with pytest.raises(Exception, match=r"expired|revoked"):
            expired.get(timeout=10)
        assert expired.state == "REVOKED"


def test_forget_removes_the_result(app: Celery) -> None:
    with run_worker(app):
        r = app.tasks[f"{__name__}.add"].delay(1, 2)
        assert r.get(timeout=10) == 3
    fresh = app.AsyncResult(r.id)
    assert fresh.state == "SUCCESS"
    fresh.forget()
    assert app.AsyncResult(r.id).state == "PENDING"
