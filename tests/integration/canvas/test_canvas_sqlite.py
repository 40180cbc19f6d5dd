"""Every canvas workflow through a real in-process worker on the SQLite broker and backend."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable, Iterator
from types import ModuleType

import pytest
from _canvas_workflows import SYNC_CHECKS, TIMEOUT, load_tasks, write_tasks

from celeriac.canvas import chain, chord, group
from celeriac.testing.worker_thread import run_worker


@pytest.fixture(scope="module")
def tasks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    directory = tmp_path_factory.mktemp("canvas_sqlite")
    url = f"sqlite:///{directory}/broker.db"
    old = {k: os.environ.get(k) for k in ("CANVAS_BROKER", "CANVAS_BACKEND")}
    os.environ["CANVAS_BROKER"] = url
    os.environ["CANVAS_BACKEND"] = url
    try:
        mod = load_tasks(write_tasks(directory), f"canvas_tasks_{uuid.uuid4().hex}")
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    with run_worker(mod.app, pool="threads", concurrency=4):
        yield mod
    mod.app.close()


@pytest.mark.parametrize("check", SYNC_CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
def test_workflow(tasks: ModuleType, check: Callable[[ModuleType], None]) -> None:
    check(tasks)


async def test_async_apply_and_await(tasks: ModuleType) -> None:
    res = await chain(tasks.add.s(1, 2), tasks.add.s(3)).aapply_async()
    assert await asyncio.wait_for(res.aget(), TIMEOUT) == 6
    group_res = await group(tasks.add.s(1, 1), tasks.add.s(2, 2)).aapply_async()
    assert await group_res == [2, 4]
    chord_res = await chord([tasks.add.s(1, 1), tasks.add.s(2, 2)], tasks.tsum.s()).aapply_async()
    assert await chord_res.aget(timeout=TIMEOUT) == 6
    await tasks.app.aclose()
