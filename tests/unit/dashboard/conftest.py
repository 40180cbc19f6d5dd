"""Fixtures of the dashboard's view tests: a Monitor fed with Celery's captured events
and a TestClient on a loopback host."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from _dash_events import feed_cluster
from starlette.testclient import TestClient

from celeriac import Celery
from celeriac.dashboard import Monitor, create_app


@pytest.fixture
def app() -> Iterator[Celery]:
    celery = Celery("dash-unit", broker="memory://", backend="memory://")
    # memory:// queues live as long as the process: a queue of its own for each test
    celery.conf.task_default_queue = f"dash-unit-{uuid.uuid4()}"
    yield celery
    celery.close()


@pytest.fixture
def monitor(app: Celery) -> Monitor:
    mon = Monitor(app)
    feed_cluster(mon)
    return mon


@pytest.fixture
def client(app: Celery, monitor: Monitor) -> Iterator[TestClient]:
    with TestClient(create_app(app, monitor=monitor, watch=False),
                    base_url="http://127.0.0.1:5555") as test_client:
        yield test_client
