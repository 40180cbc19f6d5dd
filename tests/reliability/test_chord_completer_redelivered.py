"""A chord's completing header task, redelivered after its worker died, still sends the body."""

from __future__ import annotations

from pathlib import Path

import pytest

from celeriac.backends.base import ChordPart, ResultBackend
from celeriac.backends.redis import RedisBackend
from celeriac.backends.sqlite import SqliteBackend


@pytest.fixture(params=["sqlite", "redis"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> ResultBackend:
    if request.param == "sqlite":
        store: ResultBackend = SqliteBackend(f"sqlite:///{tmp_path}/chord.db")
    else:
        redis_url = request.getfixturevalue("redis_url")
        store = RedisBackend(redis_url)
    await store.connect()
    yield store  # type: ignore[misc]
    await store.close()


async def test_only_the_completer_gets_the_parts_again(backend: ResultBackend) -> None:
    group = f"g-{id(backend)}"
    await backend.set_chord_size(group, 3)
    parts = [ChordPart(group, f"t{i}", i, "SUCCESS", i * 10) for i in range(3)]
    assert await backend.chord_part_return(parts[1]) is None
    assert await backend.chord_part_return(parts[0]) is None
    done = await backend.chord_part_return(parts[2])
    assert done is not None and [p.result for p in done] == [0, 10, 20]
    # The completer is redelivered: it gets the same ordered parts again ...
    again = await backend.chord_part_return(parts[2])
    assert again is not None and [(p.task_id, p.result) for p in again] == [
        ("t0", 0), ("t1", 10), ("t2", 20)
    ]
    # ... while any other header task re-run gets nothing.
    assert await backend.chord_part_return(parts[0]) is None
