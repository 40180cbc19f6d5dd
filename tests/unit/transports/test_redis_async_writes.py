"""The asyncio Redis clients write commands without a task of their own.

redis-py bounds each write with ``asyncio.wait_for`` (a task and three loop
turns per command); celeriac's connections (:class:`BoundedWrite`) hand the
command to the socket and bound only a write that has to wait for room (that
bound is checked against a frozen server in the Redis integration tests). The
clients are built without I/O here; the task count is checked on a live server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Generator
from typing import Any

import pytest
import redis.asyncio
import redis.asyncio.connection
import redis.asyncio.sentinel

from celeriac.backends.redis import RedisBackend
from celeriac.transports._redis_conn import (
    BoundedWrite,
    make_async_client,
    parse_redis_url,
)
from celeriac.transports._redis_pubsub import WakeListener
from celeriac.transports.redis import RedisTransport


@pytest.mark.parametrize(("url", "kind"), [
    ("redis://127.0.0.1:6399/0", redis.asyncio.connection.Connection),
    ("rediss://127.0.0.1:6399/0?ssl_cert_reqs=none", redis.asyncio.connection.SSLConnection),
    ("unix:///tmp/celeriac-test-none.sock?db=1",
     redis.asyncio.connection.UnixDomainSocketConnection),
    ("sentinel://127.0.0.1:26399/0?master_name=mymaster",
     redis.asyncio.sentinel.SentinelManagedConnection),
])
def test_every_async_client_kind_writes_with_bounded_write(url: str, kind: type) -> None:
    client = make_async_client(parse_redis_url(url))
    connection_class = client.connection_pool.connection_class
    assert issubclass(connection_class, BoundedWrite)
    assert issubclass(connection_class, kind)  # still the kind redis-py picked for the URL


def test_the_broker_and_the_backend_use_these_clients() -> None:
    url = "redis://127.0.0.1:6399/0"
    for face in (RedisTransport(url), RedisBackend(url)):
        pool = face._async_client().connection_pool
        assert issubclass(pool.connection_class, BoundedWrite)


class _CountingTasks:
    """A task factory that counts the tasks created while installed."""

    def __init__(self) -> None:
        self.created = 0

    def __call__(self, loop: asyncio.AbstractEventLoop,
                 coro: Generator[Any, None, Any] | Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        self.created += 1
        return asyncio.Task(coro, loop=loop)  # type: ignore[arg-type]


@pytest.mark.redis
async def test_a_command_runs_without_starting_a_task(redis_url: str) -> None:
    client: redis.asyncio.Redis = make_async_client(parse_redis_url(redis_url))
    loop = asyncio.get_running_loop()
    try:
        await client.ping()  # connected
        counting = _CountingTasks()
        loop.set_task_factory(counting)
        try:
            assert await client.set("celeriac-test-bounded-write", b"v") is True
            assert await client.get("celeriac-test-bounded-write") == b"v"
        finally:
            loop.set_task_factory(None)
        assert counting.created == 0
    finally:
        await client.delete("celeriac-test-bounded-write")
        await client.aclose()


async def test_a_wake_up_resumes_the_waiter_without_a_task() -> None:
    target = parse_redis_url("redis://127.0.0.1:6399/0")
    listener = WakeListener(make_async_client(target), target)  # no I/O: never watched
    loop = asyncio.get_running_loop()
    counting = _CountingTasks()
    loop.set_task_factory(counting)
    try:
        loop.call_soon(listener.set)
        assert await listener.wait(30.0) is True
    finally:
        loop.set_task_factory(None)
    assert counting.created == 0
    listener.clear()
    assert await listener.wait(0.01) is False  # nothing came: the bound ends the wait


async def test_a_cancelled_wake_wait_raises_cancelled_error() -> None:
    target = parse_redis_url("redis://127.0.0.1:6399/0")
    listener = WakeListener(make_async_client(target), target)
    waiting = asyncio.ensure_future(listener.wait(30.0))
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
