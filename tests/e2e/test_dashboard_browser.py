"""The dashboard in headless Chromium: a worker and a task appear live (SSE, no
reload), the task detail opens, and the revoke button revokes a waiting task."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

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


def _mark(page: Any) -> None:
    """Tag the loaded document: the tag survives live updates, not a reload."""
    page.evaluate("window.__notReloaded = true")


def _not_reloaded(page: Any) -> bool:
    return bool(page.evaluate("window.__notReloaded === true"))


def test_worker_and_tasks_appear_live_and_revoke_button_revokes(
        page: Any, tmp_path: Path, redis_url: str) -> None:
    write_tasks(tmp_path, redis_url, redis_url)
    host = expand_hostname(WORKER)
    app = Celery("client", broker=redis_url, backend=redis_url)
    app.conf.task_default_queue = QUEUE
    app.conf.task_send_sent_event = True
    key = f"dash-release-{uuid.uuid4()}"
    with run_dashboard(tmp_path) as dash:
        dash.wait_for("/api/workers", lambda ws: True, "dashboard answering")
        page.goto(dash.url + "/workers")
        page.wait_for_selector("#live.on")  # the SSE stream is open
        _mark(page)
        worker = start_worker(tmp_path)
        try:
            row = page.locator(f'#workers tr[data-hostname="{host}"]')
            row.locator('[data-field="status"]', has_text="online").wait_for()
            assert _not_reloaded(page)

            page.goto(dash.url + "/tasks")
            page.wait_for_selector("#live.on")
            _mark(page)
            added = app.send_task("dash.add", (2, 3), kwargs={})
            task_row = page.locator(f'#tasks tr[data-uuid="{added.id}"]')
            task_row.locator('[data-field="state"]', has_text="SUCCESS").wait_for()
            assert task_row.locator('[data-field="args"]').inner_text() == "(2, 3)"
            assert task_row.locator('[data-field="result"]').inner_text() == "5"
            assert _not_reloaded(page)

            blocker = app.send_task("dash.block", (key,))
            waiting = app.send_task("dash.add", (40, 2))
            page.locator(f'#tasks tr[data-uuid="{blocker.id}"] [data-field="state"]',
                         has_text="STARTED").wait_for()
            page.locator(f'#tasks tr[data-uuid="{waiting.id}"] a').click()
            page.wait_for_url(f"**/task/{waiting.id}")
            assert page.locator("#task-state").inner_text() == "PENDING"
            assert "dash.add" in page.locator('[data-field="name"]').first.inner_text()
            page.locator("#revoke").click()
            page.wait_for_url(f"**/task/{waiting.id}?flash=ok")
            page.wait_for_selector("#live.on")
            _mark(page)
            redis.Redis.from_url(redis_url).rpush(key, "go")
            page.locator("#task-state", has_text="REVOKED").wait_for()
            page.locator("#timeline .kind", has_text="revoked").wait_for()
            assert page.locator("#revoke").is_disabled()
            assert _not_reloaded(page)
        finally:
            worker.stop()
            app.close()
