"""Sync result waits on Redis: early subscriptions need no read; unsubscribes are batched."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid

import pytest
import redis
import redis.exceptions

from celeriac.backends import _redis_waiters
from celeriac.backends._redis_push import PushConnection
from celeriac.backends.redis import RedisBackend
from celeriac.protocol import keys, states
from celeriac.protocol.results import ResultMeta, now_iso

pytestmark = pytest.mark.redis


def never_read() -> None:
    raise AssertionError("an early subscription must not read the key")


@pytest.fixture
def long_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    """Trust the push alone for the whole test (the fallback read is tested apart)."""
    monkeypatch.setattr(_redis_waiters, "EARLY_GRACE", 60.0)


def wait_subscribed(client: redis.Redis, task_id: str) -> None:
    """Until the server has applied the SUBSCRIBE (a task's trip through a worker
    guarantees as much: Redis orders commands per connection only)."""
    channel = keys.task_meta_key(task_id)
    for _ in range(500):
        if dict(client.pubsub_numsub(channel)).get(channel.encode(), 0):
            return
        threading.Event().wait(0.01)
    raise AssertionError(f"SUBSCRIBE {channel} never took effect")


@pytest.mark.usefixtures("long_grace")
def test_early_subscription_waits_on_the_push_alone(redis_url: str) -> None:
    backend = RedisBackend(redis_url)
    client = redis.Redis.from_url(redis_url)
    try:
        listener = backend._listener()
        task_id = str(uuid.uuid4())
        listener.subscribe(task_id)
        wait_subscribed(client, task_id)
        meta = ResultMeta(task_id, states.SUCCESS, 42, None, [], now_iso())
        timer = threading.Timer(0.05, lambda: backend.store_sync(meta))
        timer.start()
        got = listener.wait(task_id, 10, never_read)  # type: ignore[arg-type]
        timer.join()
        assert got.result == 42
        # Ready before get(): still no read, the push is already in the socket.
        other = str(uuid.uuid4())
        listener.subscribe(other)
        wait_subscribed(client, other)
        backend.store_sync(ResultMeta(other, states.SUCCESS, 7, None, [], now_iso()))
        assert listener.wait(other, 10, never_read).result == 7  # type: ignore[arg-type]
    finally:
        client.close()
        backend.close_sync()


def test_a_push_that_overtook_the_early_subscription_is_read_after_the_grace(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The result's PUBLISH reached Redis before the SUBSCRIBE: no push will come.
    monkeypatch.setattr(_redis_waiters, "EARLY_GRACE", 0.2)
    backend = RedisBackend(redis_url)
    try:
        task_id = str(uuid.uuid4())
        backend.store_sync(ResultMeta(task_id, states.SUCCESS, "raced", None, [], now_iso()))
        backend.subscribe_early(task_id)
        assert backend.wait_sync(task_id, 10).result == "raced"
    finally:
        backend.close_sync()


async def test_async_push_that_overtook_the_early_subscription_is_read_after_the_grace(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_redis_waiters, "EARLY_GRACE", 0.2)
    backend = RedisBackend(redis_url)
    try:
        task_id = str(uuid.uuid4())
        await backend.store(ResultMeta(task_id, states.SUCCESS, "raced", None, [], now_iso()))
        await backend.asubscribe_early(task_id)
        assert (await backend.wait(task_id, 10)).result == "raced"
    finally:
        await backend.close()


def test_a_late_subscription_still_reads_a_stored_result(redis_url: str) -> None:
    backend = RedisBackend(redis_url)
    try:
        task_id = str(uuid.uuid4())
        backend.store_sync(ResultMeta(task_id, states.SUCCESS, "old", None, [], now_iso()))
        assert backend.wait_sync(task_id, 5).result == "old"
    finally:
        backend.close_sync()


@pytest.mark.usefixtures("long_grace")
def test_unsubscribes_go_out_in_batches(redis_url: str) -> None:
    backend = RedisBackend(redis_url)
    client = redis.Redis.from_url(redis_url)
    try:
        listener = backend._listener()
        ids = [str(uuid.uuid4()) for _ in range(64)]
        for task_id in ids:
            listener.subscribe(task_id)
            wait_subscribed(client, task_id)
            backend.store_sync(ResultMeta(task_id, states.SUCCESS, 1, None, [], now_iso()))
            assert listener.wait(task_id, 10, never_read).result == 1  # type: ignore[arg-type]
        channels = [keys.task_meta_key(task_id) for task_id in ids]
        # The 64th get() sent one UNSUBSCRIBE for all 64; the server applies it
        # once it reads it: poll with a bounded deadline.
        for _ in range(200):
            counts = dict(client.pubsub_numsub(*channels))
            if not any(counts.values()):
                break
            threading.Event().wait(0.01)
        assert not any(counts.values())
    finally:
        client.close()
        backend.close_sync()


@pytest.mark.usefixtures("long_grace")
async def test_async_unsubscribes_go_out_in_batches(redis_url: str) -> None:
    backend = RedisBackend(redis_url)
    client = redis.Redis.from_url(redis_url)

    async def never() -> None:
        raise AssertionError("an early subscription must not read the key")

    try:
        listener = backend._alistener()
        ids = [str(uuid.uuid4()) for _ in range(64)]
        channels = [keys.task_meta_key(task_id) for task_id in ids]
        for n, task_id in enumerate(ids):
            await backend.asubscribe_early(task_id)
            await asyncio.to_thread(wait_subscribed, client, task_id)
            await backend.store(ResultMeta(task_id, states.SUCCESS, n, None, [], now_iso()))
            assert (await listener.wait(task_id, 10, never)).result == n  # type: ignore[arg-type]
            if n == 0:
                # Left but not unsubscribed yet: waiting on it again needs no
                # SUBSCRIBE, and a new result still arrives.
                await backend.asubscribe_early(task_id)
                await backend.store(ResultMeta(task_id, states.SUCCESS, "again", None, [],
                                               now_iso()))
                got = await listener.wait(task_id, 10, never)  # type: ignore[arg-type]
                assert got.result == "again"
            if n == 62:  # 63 gets done: all still subscribed (nothing sent yet)
                assert dict(client.pubsub_numsub(channels[0]))[channels[0].encode()] == 1
        # The 64th get() sent one UNSUBSCRIBE for all 64.
        deadline = time.monotonic() + 5
        while any(dict(client.pubsub_numsub(*channels)).values()):
            assert time.monotonic() < deadline, "the batched UNSUBSCRIBE never took effect"
            await asyncio.sleep(0.01)
    finally:
        client.close()
        await backend.close()


@pytest.mark.usefixtures("long_grace")
async def test_async_early_subscription_waits_on_the_push_alone(redis_url: str) -> None:
    backend = RedisBackend(redis_url)
    client = redis.Redis.from_url(redis_url)
    try:
        task_id = str(uuid.uuid4())
        await backend.asubscribe_early(task_id)
        await asyncio.to_thread(wait_subscribed, client, task_id)
        listener = backend._alistener()

        async def never() -> None:
            raise AssertionError("an early subscription must not read the key")

        async def later() -> None:
            await asyncio.sleep(0.05)
            await backend.store(ResultMeta(task_id, states.SUCCESS, 5, None, [], now_iso()))

        writer = asyncio.ensure_future(later())
        got = await listener.wait(task_id, 10, never)  # type: ignore[arg-type]
        await writer
        assert got.result == 5
        # A plain wait (no early subscription) still reads what is stored already.
        done = str(uuid.uuid4())
        await backend.store(ResultMeta(done, states.SUCCESS, "x", None, [], now_iso()))
        assert (await backend.wait(done, 5)).result == "x"
    finally:
        client.close()
        await backend.close()


@pytest.mark.usefixtures("long_grace")
def test_a_result_pushed_before_get_is_taken_without_touching_the_socket(redis_url: str) -> None:
    backend = RedisBackend(redis_url)
    client = redis.Redis.from_url(redis_url)
    try:
        listener = backend._listener()
        first, second = str(uuid.uuid4()), str(uuid.uuid4())
        for task_id in (first, second):
            listener.subscribe(task_id)
            wait_subscribed(client, task_id)
        backend.store_sync(ResultMeta(first, states.SUCCESS, 1, None, [], now_iso()))
        backend.store_sync(ResultMeta(second, states.SUCCESS, 2, None, [], now_iso()))
        # Both pushes are in the socket before the first wait: one read takes both
        # (two PUBLISHes on one connection arrive in order).
        got = listener.wait(first, 10, never_read)  # type: ignore[arg-type]
        assert got.result == 1
        if not listener._box.ready(second):
            listener._pump(lambda: listener._box.ready(second), time.monotonic() + 10)

        def no_read(timeout: float) -> list[object]:
            raise AssertionError("a buffered result must not read the socket")

        listener._push.read = no_read  # type: ignore[method-assign]
        assert listener.wait(second, 10, never_read).result == 2  # type: ignore[arg-type]
        assert second not in listener._box.waiters  # dropped: UNSUBSCRIBE batched
    finally:
        client.close()
        backend.close_sync()


def test_a_wait_survives_its_connection_being_killed(redis_url: str) -> None:
    # The server drops the pub/sub connection after the early SUBSCRIBE: the
    # wait reconnects, subscribes again and reads the key (a push may be lost).
    backend = RedisBackend(redis_url)
    client = redis.Redis.from_url(redis_url)
    try:
        listener = backend._listener()
        task_id = str(uuid.uuid4())
        listener.subscribe(task_id)
        wait_subscribed(client, task_id)
        host, port = listener._push._sock.getsockname()[:2]
        assert client.execute_command("CLIENT", "KILL", "ADDR", f"{host}:{port}")
        backend.store_sync(ResultMeta(task_id, states.SUCCESS, "after", None, [], now_iso()))
        assert backend.wait_sync(task_id, 10).result == "after"
        # The new connection carries later subscriptions and pushes as before.
        other = str(uuid.uuid4())
        listener.subscribe(other)
        wait_subscribed(client, other)
        backend.store_sync(ResultMeta(other, states.SUCCESS, "next", None, [], now_iso()))
        assert backend.wait_sync(other, 10).result == "next"
    finally:
        client.close()
        backend.close_sync()


def test_push_connection_reads_replies_and_reports_a_closed_socket(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    conn = PushConnection(redis.Redis.from_url(redis_url))
    try:
        with pytest.raises(redis.exceptions.ConnectionError):
            conn.read(0)  # not connected yet
        conn.connect()
        channel = f"celeriac-test-push-{uuid.uuid4()}"
        conn.send([("SUBSCRIBE", channel)])
        replies: list[object] = []
        for _ in range(100):
            replies += conn.read(0.1)
            if replies:
                break
        assert replies == [[b"subscribe", channel.encode(), 1]]
        assert conn.read(0) == []  # nothing more, no wait
        client.publish(channel, b"a")
        client.publish(channel, b"b")
        got: list[object] = []
        for _ in range(100):
            got += conn.read(0.1)
            if len(got) == 2:
                break
        assert got == [[b"message", channel.encode(), b"a"], [b"message", channel.encode(), b"b"]]
        host, port = conn._sock.getsockname()[:2]
        client.execute_command("CLIENT", "KILL", "ADDR", f"{host}:{port}")
        with pytest.raises((redis.exceptions.ConnectionError, OSError)):
            for _ in range(100):
                conn.read(0.1)
        assert not conn.connected
    finally:
        conn.close()
        client.close()
