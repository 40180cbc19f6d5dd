"""The login rule, basic auth, same-origin POSTs and the live stream's messages."""

from __future__ import annotations

import asyncio
import base64
import contextlib

import pytest
from _dash_events import ADD_ID, vector_event
from starlette.testclient import TestClient

from celeriac import Celery
from celeriac.dashboard import Monitor, create_app
from celeriac.dashboard.auth import AuthError, is_loopback, parse_basic_auth
from celeriac.dashboard.sse import _messages


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("[::1]", True),
    ("localhost", True), ("0.0.0.0", False), ("::", False), ("192.168.1.5", False),
    ("example.com", False), ("", False)])
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_parse_basic_auth() -> None:
    assert parse_basic_auth("ann:pw,bob:p:w") == {"ann": "pw", "bob": "p:w"}
    assert parse_basic_auth(None) == {}
    with pytest.raises(AuthError, match="user:password"):
        parse_basic_auth("annonly")


def test_without_login_only_loopback_host_names_are_served(app: Celery,
                                                           monitor: Monitor) -> None:
    web = create_app(app, monitor=monitor, watch=False)
    with TestClient(web, base_url="http://evil.example") as rebinding:
        assert rebinding.get("/api/workers").status_code == 403
    for base in ("http://127.0.0.1:5555", "http://localhost:5555", "http://[::1]:5555"):
        with TestClient(web, base_url=base) as local:
            assert local.get("/api/workers").status_code == 200


def _basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def test_basic_auth_is_required_when_users_are_given(app: Celery, monitor: Monitor) -> None:
    web = create_app(app, users={"ann": "s3cret"}, monitor=monitor, watch=False)
    with TestClient(web, base_url="http://dash.example.com") as client:
        refused = client.get("/workers")
        assert refused.status_code == 401 and "Basic" in refused.headers["www-authenticate"]
        assert client.get("/metrics", headers=_basic("ann", "wrong")).status_code == 401
        assert client.get("/metrics", headers=_basic("bob", "s3cret")).status_code == 401
        assert client.get("/api/tasks", headers={"Authorization": "Basic !!"}).status_code == 401
        assert client.get("/workers", headers=_basic("ann", "s3cret")).status_code == 200


def test_cross_origin_posts_are_refused(client: TestClient) -> None:
    url = f"/api/task/revoke/{ADD_ID}"
    for headers in ({"Origin": "http://evil.example"}, {"Origin": "null"},
                    {"Referer": "http://evil.example/page"},
                    {"Sec-Fetch-Site": "cross-site"},
                    {"Origin": "http://127.0.0.1:9999"}):
        answer = client.post(url, headers=headers)
        assert answer.status_code == 403, headers
    same = {"Origin": "http://127.0.0.1:5555", "Sec-Fetch-Site": "same-origin"}
    assert client.post(url, headers=same).status_code == 200
    assert client.post(url, headers={"Referer": f"http://127.0.0.1:5555/task/{ADD_ID}"}
                       ).status_code == 200
    assert client.get("/api/tasks", headers={"Origin": "http://evil.example"}).status_code == 200


async def test_live_stream_sends_task_and_worker_updates(monitor: Monitor) -> None:
    stream = _messages(monitor)
    assert (await anext(stream)).startswith(b"retry:")
    monitor.handle(vector_event("task_received", uuid="live-1", args="(7,)"))
    monitor.handle(vector_event("worker_heartbeat", active=1))
    first = await asyncio.wait_for(anext(stream), 5)
    second = await asyncio.wait_for(anext(stream), 5)
    assert first.startswith(b"data: ") and b'"uuid":"live-1"' in first
    assert b'"state":"RECEIVED"' in first and b'"args":"(7,)"' in first
    assert b'"worker":{"hostname":"w1@proto"' in second and b'"active":1' in second
    await stream.aclose()
    assert not monitor._subscribers


def test_a_lagging_subscriber_is_told_to_resync(monitor: Monitor) -> None:
    queue = monitor.subscribe()
    for n in range(queue.maxsize + 5):
        monitor.handle(vector_event("task_received", uuid=f"many-{n}"))
    assert queue.qsize() == 5 and queue.get_nowait() == {"type": "resync"}


async def test_monitor_run_captures_events_from_the_broker(app: Celery) -> None:
    from celeriac.protocol.events import event_envelope
    from celeriac.protocol.keys import EVENT_EXCHANGE

    monitor = Monitor(app)
    runner = asyncio.ensure_future(monitor.run())
    transport = app.new_transport()
    await transport.connect()
    try:
        await asyncio.wait_for(monitor.live.wait(), 10)
        heartbeat = vector_event("worker_heartbeat", hostname="far@away")
        await transport.broadcast(EVENT_EXCHANGE, event_envelope(heartbeat, hostname="far@away"))
        async with asyncio.timeout(10):
            while "far@away" not in monitor.state.workers:
                await asyncio.sleep(0.01)
        assert monitor.state.workers["far@away"].fields["processed"] == 0
    finally:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
        await transport.close()
