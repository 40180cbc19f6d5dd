"""Every canvas workflow through a real in-process worker on the SQLite broker and backend."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from types import ModuleType

import pytest
from _canvas_workflows import SYNC_CHECKS, TIMEOUT
from tests.integration.canvas.conftest import tasks_with_worker

from celeriac.canvas import chain, chord, group


@pytest.fixture(scope="module")
def tasks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    directory = tmp_path_factory.mktemp("canvas_sqlite")
    url = f"sqlite:///{directory}/broker.db"
    with tasks_with_worker(directory, url, url) as mod:
        yield mod


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
