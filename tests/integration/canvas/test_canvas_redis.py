"""Every canvas workflow through a real in-process worker on Redis (broker and backend)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import ModuleType

import pytest
from _canvas_workflows import SYNC_CHECKS, TIMEOUT
from tests.integration.canvas.conftest import tasks_with_worker

from _servers import REDIS_HOST, REDIS_PORT
from celeriac import Celery
from celeriac.canvas import chord, group, signature

pytestmark = pytest.mark.redis


@pytest.fixture(scope="module")
def tasks(tmp_path_factory: pytest.TempPathFactory, redis_db: int) -> Iterator[ModuleType]:
    import redis

    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=redis_db)
    client.flushdb()
    client.close()
    url = f"redis://{REDIS_HOST}:{REDIS_PORT}/{redis_db}"
    with tasks_with_worker(tmp_path_factory.mktemp("canvas_redis"), url, url) as mod:
        yield mod


@pytest.mark.parametrize("check", SYNC_CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
def test_workflow(tasks: ModuleType, check: Callable[[ModuleType], None]) -> None:
    check(tasks)


async def test_async_chord_chain_group(tasks: ModuleType) -> None:
    # A separate client app: its async connections belong to this test's loop,
    # not to the worker thread's loop.
    app = tasks.app
    client = Celery("client", broker=app.conf.broker_url, backend=app.conf.result_backend)
    add = signature(tasks.add.name, app=client)
    tsum = signature(tasks.tsum.name, app=client)
    res = await chord([add.clone((i, i)) for i in range(5)], tsum).aapply_async()
    assert await res.aget(timeout=TIMEOUT) == 20
    res = await (add.clone((1, 1)) | add.clone((2,))).aapply_async()
    assert await res.aget(timeout=TIMEOUT) == 4
    group_res = await group(add.clone((1, 1)), add.clone((2, 2))).aapply_async()
    assert await group_res == [2, 4]
    await client.aclose()
    await client.backend.close()  # App.aclose() leaves the backend's async client open
    client.close()
