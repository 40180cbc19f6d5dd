"""The dashboard served by uvicorn (the real ``celeriac dashboard`` command) watching a
real ``celeriac worker -E`` over real Redis: tasks show with their states, queues and
metrics answer, and the revoke button revokes a waiting task."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import redis
from tests.helpers.dashboard_cluster import (
    QUEUE,
    WORKER,
    run_dashboard,
    start_worker,
    write_tasks,
)

from celeriac import Celery
from celeriac.worker.worker import expand_hostname

pytestmark = pytest.mark.redis


def test_dashboard_follows_a_real_worker_and_revokes_a_waiting_task(
        tmp_path: Path, redis_url: str) -> None:
    write_tasks(tmp_path, redis_url, redis_url)
    host = expand_hostname(WORKER)
    app = Celery("client", broker=redis_url, backend=redis_url)
    app.conf.task_default_queue = QUEUE
    app.conf.task_send_sent_event = True
    key = f"dash-release-{uuid.uuid4()}"
    with run_dashboard(tmp_path) as dash:
        worker = start_worker(tmp_path)
        try:
            # the worker's heartbeat arriving means the dashboard's receiver is live
            dash.wait_for("/api/workers", lambda ws: ws.get(host, {}).get("status") is True,
                          "worker online")
            added = app.send_task("dash.add", (2, 3))
            dash.wait_for("/api/tasks?state=SUCCESS&name=dash.add",
                          lambda ts: added.id in ts, "dash.add succeeded")
            blocker = app.send_task("dash.block", (key,))
            waiting = app.send_task("dash.add", (40, 2))
            dash.wait_for(f"/api/task/{blocker.id}", lambda t: t["state"] == "STARTED",
                          "blocker started")
            seen = dash.get(f"/api/task/{waiting.id}")
            assert seen["state"] in ("PENDING", "RECEIVED") and seen["args"] == "(40, 2)"

            refused = dash.post(f"/api/task/revoke/{waiting.id}", {},
                                headers={"Origin": "http://evil.example"})
            assert refused[0] == 403
            status, body = dash.post(f"/api/task/revoke/{waiting.id}", {})
            assert status == 200 and b"Revoked" in body
            redis.Redis.from_url(redis_url).rpush(key, "go")
            dash.wait_for(f"/api/task/{waiting.id}", lambda t: t["state"] == "REVOKED",
                          "waiting task revoked")
            dash.wait_for(f"/api/task/{blocker.id}", lambda t: t["state"] == "SUCCESS",
                          "blocker finished")
            assert added.get(timeout=10) == 5

            tasks = dash.get("/api/tasks")
            assert tasks[added.id]["result"] == "5" and tasks[added.id]["worker"] == host
            assert tasks[added.id]["received"] <= tasks[added.id]["succeeded"]
            assert dash.get(f"/api/tasks?search={waiting.id}").keys() == {waiting.id}
            worker_info = dash.wait_for(
                "/api/workers", lambda ws: ws[host]["pool"] and ws[host]["queues"],
                "inspect answered")[host]
            assert QUEUE in worker_info["queues"]
            queues = {q["name"]: q["messages"] for q in dash.get("/api/queues")["active_queues"]}
            assert queues[QUEUE] == 0
            metrics = _text(dash.url + "/metrics")
            assert 'celeriac_tasks_total{name="dash.add",state="SUCCESS"} 1.0' in metrics
            assert 'celeriac_tasks_total{name="dash.add",state="REVOKED"} 1.0' in metrics
            assert "celeriac_workers_up 1.0" in metrics
        finally:
            worker.stop()
            app.close()


def _text(url: str) -> str:
    import urllib.request

    with urllib.request.urlopen(url, timeout=10) as answer:
        return str(answer.read().decode())
