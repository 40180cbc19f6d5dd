"""The dashboard's pages and JSON API against a ClusterState fed with Celery's events."""

from __future__ import annotations

import re

from _dash_events import ADD_ID, FAIL_ID, vector_event
from starlette.testclient import TestClient

from celeriac import Celery
from celeriac.dashboard import Monitor


def test_api_workers_shows_the_live_worker_with_its_counters(client: TestClient) -> None:
    workers = client.get("/api/workers").json()
    assert list(workers) == ["w1@proto"]
    w1 = workers["w1@proto"]
    assert w1["status"] is True and w1["processed"] == 2 and w1["sw_ident"] == "py-celery"
    assert w1["loadavg"] == [3.02, 1.77, 0.84]


def test_worker_goes_offline_after_worker_offline(client: TestClient, monitor: Monitor) -> None:
    monitor.handle(vector_event("worker_offline"))
    assert client.get("/api/workers").json()["w1@proto"]["status"] is False
    page = client.get("/workers").text
    assert re.search(r'data-field="status" class="offline">offline<', page)


def test_worker_pool_and_queues_come_from_inspect(client: TestClient, monitor: Monitor) -> None:
    monitor.inspected["w1@proto"] = {
        "stats": {"pool": {"implementation": "prefork", "max-concurrency": 4}},
        "active_queues": [{"name": "celery"}, {"name": "images"}]}
    w1 = client.get("/api/workers").json()["w1@proto"]
    assert w1["pool"] == {"implementation": "prefork", "max-concurrency": 4}
    assert w1["queues"] == ["celery", "images"]
    page = client.get("/workers").text
    assert "prefork x4" in page and "celery, images" in page
    default = monitor.app.conf.settings.task_default_queue
    assert monitor.queue_names() == sorted(["celery", "images", default])


def test_api_tasks_has_flower_shapes_and_states(client: TestClient) -> None:
    tasks = client.get("/api/tasks").json()
    assert set(tasks) == {ADD_ID, FAIL_ID}
    add = tasks[ADD_ID]
    assert (add["name"], add["state"], add["args"], add["result"], add["worker"]) == (
        "tasks.add", "SUCCESS", "(2, 3)", "5", "w1@proto")
    assert add["sent"] < add["received"] < add["started"] < add["succeeded"]
    assert tasks[FAIL_ID]["state"] == "FAILURE"
    assert list(tasks) == [FAIL_ID, ADD_ID]  # newest first


def test_api_tasks_filters_and_search(client: TestClient) -> None:
    assert list(client.get("/api/tasks?state=FAILURE").json()) == [FAIL_ID]
    assert list(client.get("/api/tasks?name=tasks.add").json()) == [ADD_ID]
    assert set(client.get("/api/tasks?worker=w1@proto").json()) == {ADD_ID, FAIL_ID}
    assert client.get("/api/tasks?worker=nobody").json() == {}
    assert list(client.get("/api/tasks?search=boom").json()) == [FAIL_ID]
    assert list(client.get(f"/api/tasks?search={ADD_ID[:8]}").json()) == [ADD_ID]
    assert len(client.get("/api/tasks?limit=1").json()) == 1
    page = client.get("/tasks?state=SUCCESS").text
    assert ADD_ID in page and FAIL_ID not in page


def test_api_task_detail_and_unknown(client: TestClient) -> None:
    failed = client.get(f"/api/task/{FAIL_ID}").json()
    assert failed["exception"] == "ValueError('boom')"
    assert "ValueError: boom" in failed["traceback"]
    assert client.get(f"/api/task/info/{FAIL_ID}").json() == failed
    assert client.get("/api/task/nope").status_code == 404


def test_task_page_shows_arguments_result_traceback_and_timeline(client: TestClient) -> None:
    page = client.get(f"/task/{ADD_ID}").text
    assert "tasks.add" in page and "(2, 3)" in page and ">5<" in page
    assert re.findall(r'<span class="kind">(\w+)</span>', page) == [
        "sent", "received", "started", "succeeded"]
    assert "disabled" in page  # a finished task cannot be revoked
    failed = client.get(f"/task/{FAIL_ID}").text
    assert "ValueError: boom" in failed and "ValueError(&#39;boom&#39;)" in failed
    assert "Unknown task" in client.get("/task/nope").text


def test_task_arguments_are_shown_escaped(client: TestClient, monitor: Monitor) -> None:
    payload = "<script>alert('x')</script><img src=x onerror=alert(1)>"
    monitor.handle(vector_event("task_received", uuid="xss-1", args=f"({payload!r},)",
                                kwargs="{'k': '\"><b>bold</b>'}", name="tasks.<i>n</i>"))
    for url in ("/tasks", "/task/xss-1", "/tasks?search=script"):
        page = client.get(url).text
        assert "<script>alert" not in page and "<img src=x" not in page and "<b>bold" not in page
        assert "&lt;script&gt;alert(" in page and "&lt;i&gt;n&lt;/i&gt;" in page
    detail = client.get("/task/xss-1").text
    assert "/api/task/rate-limit/tasks.%3Ci%3En%3C/i%3E" in detail
    # the API returns data, the browser's script shows it with textContent only
    assert client.get("/api/task/xss-1").json()["args"] == f"({payload!r},)"


def test_pages_render_and_send_security_headers(client: TestClient) -> None:
    for url in ("/workers", "/tasks", "/queues", "/charts", f"/task/{ADD_ID}"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert "default-src 'self'" in response.headers["content-security-policy"]
        assert response.headers["x-frame-options"] == "DENY"
    assert client.get("/", follow_redirects=False).headers["location"] == "/workers"
    assert "EventSource" in client.get("/static/dashboard.js").text


def test_queues_report_lengths_from_the_transport(client: TestClient, app: Celery) -> None:
    queue = app.conf.settings.task_default_queue
    assert client.get("/api/queues").json() == {
        "active_queues": [{"name": queue, "messages": 0}]}
    app.send_task("tasks.add", (1, 2))
    assert client.get("/api/queues").json() == {
        "active_queues": [{"name": queue, "messages": 1}]}
    assert 'data-field="messages">1<' in client.get("/queues").text


def test_charts_series_counts_finished_tasks(client: TestClient) -> None:
    points = client.get("/api/charts").json()["points"]
    assert sum(p["failed"] for p in points) == 1
    assert sum(p["throughput"] for p in points) * 5.0 == 2
    assert any(p["runtime_avg"] and p["runtime_avg"] > 0 for p in points)
    assert any(p["wait_avg"] is not None for p in points)


def test_metrics_count_tasks_by_state_and_name_and_workers_up(client: TestClient) -> None:
    text = client.get("/metrics").text
    assert 'celeriac_tasks_total{name="tasks.add",state="SUCCESS"} 1.0' in text
    assert 'celeriac_tasks_total{name="tasks.fail",state="FAILURE"} 1.0' in text
    assert 'celeriac_task_runtime_seconds_count{name="tasks.add"} 1.0' in text
    assert "celeriac_workers_up 1.0" in text


def test_revoke_and_rate_limit_answer_json_or_redirect(client: TestClient) -> None:
    answer = client.post(f"/api/task/revoke/{ADD_ID}", data={"terminate": "1"})
    assert answer.json() == {"message": f"Terminated '{ADD_ID}'"}
    back = client.post(f"/api/task/revoke/{FAIL_ID}", data={"next": f"/task/{FAIL_ID}"},
                       follow_redirects=False)
    assert back.status_code == 303 and back.headers["location"] == f"/task/{FAIL_ID}?flash=ok"
    away = client.post(f"/api/task/revoke/{FAIL_ID}", data={"next": "//evil.example/"},
                       follow_redirects=False)
    assert away.status_code == 200  # never an open redirect
    limited = client.post("/api/task/rate-limit/tasks.add", data={"ratelimit": "10/m"})
    assert limited.json()["message"].startswith("rate limit of 'tasks.add' set to 10/m")
    assert client.post("/api/task/rate-limit/tasks.add", data={}).status_code == 400
