"""What the Redis result store does beyond the contract: Celery's bytes, chords, pushes."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import redis

from celeriac.backends.base import BackendOptions, ChordPart
from celeriac.backends.redis import RedisBackend
from celeriac.errors import OperationalError
from celeriac.protocol import keys, states
from celeriac.protocol.results import ResultMeta, encode_meta

pytestmark = pytest.mark.redis

VECTORS = Path("/work/shared/protocol/vectors")
Factory = Callable[..., Awaitable[RedisBackend]]


@pytest.fixture
async def make(redis_url: str) -> AsyncIterator[Factory]:
    made: list[RedisBackend] = []

    async def build(**options: object) -> RedisBackend:
        backend = RedisBackend(redis_url, BackendOptions(**options))  # type: ignore[arg-type]
        await backend.connect()
        made.append(backend)
        return backend

    yield build
    for backend in made:
        await backend.close()
        backend.close_sync()


def success(task_id: str, result: object = 5) -> ResultMeta:
    return ResultMeta(task_id, states.SUCCESS, result, date_done="2026-11-21T07:46:39.653748+00:00")


async def test_stored_and_published_bytes_are_celerys(make: Factory, raw: redis.Redis) -> None:
    backend = await make()
    task_id = str(uuid.uuid4())
    pubsub = raw.pubsub()
    pubsub.subscribe(keys.task_meta_key(task_id))
    assert pubsub.get_message(timeout=2)["type"] == "subscribe"
    meta = success(task_id)
    await backend.store(meta)
    expected = encode_meta(meta)
    # compact JSON (orjson): Celery's keys in Celery's order, the same values
    assert expected.startswith(b'{"status":"SUCCESS","result":5,"traceback":null')
    assert json.loads(expected) == json.loads(encode_meta(meta, exact=True))
    assert raw.get(keys.task_meta_key(task_id)) == expected
    assert 86000 < raw.ttl(keys.task_meta_key(task_id)) <= 86400
    message = pubsub.get_message(timeout=2)
    assert message["data"] == expected
    pubsub.close()


async def test_reads_what_a_celery_worker_stored(make: Factory, raw: redis.Redis) -> None:
    vector = json.loads((VECTORS / "redis_worker_chord.json").read_text())
    setex = next(c["command"] for c in vector["commands"] if c["command"][0] == "SETEX")
    raw.set(setex[1], setex[3])
    task_id = setex[1][len(keys.task_meta_key("")) :]
    backend = await make()
    got = await backend.wait(task_id, 1.0)
    assert (got.status, got.result, got.group_id) == (
        states.SUCCESS,
        2,
        json.loads(setex[3])["group_id"],
    )


async def test_chord_sent_by_a_celery_client_completes_here(
    make: Factory, raw: redis.Redis
) -> None:
    group_id = str(uuid.uuid4())
    chord = keys.chord_keys(group_id)
    raw.delete(chord.lock)  # what the Celery 5.7 client does before sending
    raw.set(chord.size, 2, ex=86400)
    backend = await make()
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    assert await backend.chord_part_return(ChordPart(group_id, first, 0, states.SUCCESS, 2)) is None
    assert raw.zrange(chord.results, 0, -1) == [f'[1, "{first}", "SUCCESS", 2]'.encode()]
    assert raw.smembers(chord.dedupe) == {f"{first}:0".encode()}
    done = await backend.chord_part_return(ChordPart(group_id, second, 1, states.SUCCESS, 4))
    assert done is not None
    assert [(p.task_id, p.index, p.result) for p in done] == [(first, 0, 2), (second, 1, 4)]
    assert raw.get(chord.lock) == b"done"
    assert not raw.exists(chord.results, chord.size, chord.dedupe, chord.total)


async def test_chord_of_fifty_concurrent_and_repeated_parts_completes_once(
    make: Factory,
) -> None:
    backends = [await make() for _ in range(3)]
    group_id, size = str(uuid.uuid4()), 50
    await backends[0].set_chord_size(group_id, size)
    parts = [ChordPart(group_id, str(uuid.uuid4()), i, states.SUCCESS, i) for i in range(size)]
    calls = [backends[i % 3].chord_part_return(p) for i, p in enumerate(parts + parts)]
    outcomes = await asyncio.gather(*calls)
    completed = [o for o in outcomes if o is not None]
    # One task completes the chord; its own repeat may get the parts again (a
    # redelivered completer must be able to send the body), nobody else does.
    winners = {i % size for i, o in enumerate(outcomes) if o is not None}
    assert len(winners) == 1 and 1 <= len(completed) <= 2
    for got in completed:
        assert [p.result for p in got] == list(range(size))
    loser = next(i for i in range(size) if i not in winners)
    assert await backends[1].chord_part_return(parts[loser]) is None


async def test_early_subscription_makes_get_of_a_finished_task_local(make: Factory) -> None:
    client, worker = await make(), await make()
    task_id = str(uuid.uuid4())
    client.subscribe_early(task_id)  # at send time
    await worker.store(success(task_id, "pushed"))
    await asyncio.sleep(0.1)  # the push is in the client's socket by now
    got = await asyncio.to_thread(client.wait_sync, task_id, 2.0)
    assert got.result == "pushed"
    assert client._sync is None


async def test_many_threads_wait_on_one_connection(make: Factory) -> None:
    client, worker = await make(), await make()
    ids = [str(uuid.uuid4()) for _ in range(20)]
    results: dict[str, object] = {}

    def wait(task_id: str) -> None:
        results[task_id] = client.wait_sync(task_id, 5.0).result

    threads = [threading.Thread(target=wait, args=(task_id,)) for task_id in ids]
    for thread in threads:
        thread.start()
    await asyncio.sleep(0.2)
    await worker.store_many([success(task_id, task_id) for task_id in ids])
    for thread in threads:
        await asyncio.to_thread(thread.join, 5.0)
    assert results == {task_id: task_id for task_id in ids}


async def test_wait_survives_killed_connections(
    make: Factory, raw: redis.Redis, redis_db: int
) -> None:
    client, worker = await make(), await make()
    task_id = str(uuid.uuid4())
    waiting = asyncio.create_task(client.wait(task_id, 5.0))
    sync_id = str(uuid.uuid4())
    sync_waiting = asyncio.ensure_future(asyncio.to_thread(client.wait_sync, sync_id, 5.0))
    await asyncio.sleep(0.2)
    for info in raw.client_list():
        if int(info["db"]) == redis_db:
            raw.client_kill_filter(_id=info["id"], skipme=True)
    await asyncio.sleep(0.1)
    started = time.monotonic()
    await worker.store_many([success(task_id, "a"), success(sync_id, "b")])
    assert (await waiting).result == "a"
    assert (await sync_waiting).result == "b"
    assert time.monotonic() - started < 3.0


async def test_unreachable_store_names_the_masked_url() -> None:
    backend = RedisBackend("redis://:secret@127.0.0.1:1/0")
    with pytest.raises(OperationalError) as info:
        backend.get_sync("x")
    assert "redis://:**@127.0.0.1:1/0" in str(info.value)
    assert "secret" not in str(info.value)
    backend.close_sync()
