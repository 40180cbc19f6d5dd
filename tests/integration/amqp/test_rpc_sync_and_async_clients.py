"""One process waiting on rpc:// results both with get() and with await."""

from __future__ import annotations

import asyncio

from celeriac import Celery
from celeriac.testing.worker_thread import run_worker


def test_sync_get_and_await_in_one_process_each_get_their_replies(amqp_url: str) -> None:
    app = Celery("rpcmix", broker=amqp_url, backend="rpc://")

    @app.task
    def double(x: int) -> int:
        return 2 * x

    async def awaited() -> list[int]:
        results = [await double.adelay(i) for i in range(10)]
        values = [await r for r in results]
        await app.aclose()
        return values

    with run_worker(app, pool="threads", concurrency=4):
        sync_results = [double.delay(i) for i in range(10)]
        assert asyncio.run(awaited()) == [2 * i for i in range(10)]
        assert [r.get(timeout=10) for r in sync_results] == [2 * i for i in range(10)]
    app.close()
