"""Routing through real workers: the seeds' CELERY_QUEUES/CELERY_ROUTES, routers, -Q and -X."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import pytest

from celeriac import Celery
from tests.execution.conftest import HEADER, Project

BROKERS = ("sqlite", "redis", "amqp")

# The seeds' example, as written (only the import of Queue/Exchange chosen by env).
SEED_CONFIG = '''
import os
if os.environ.get("SEED_IMPORT") == "kombu":
    from kombu import Queue, Exchange
else:
    from celeriac import Queue, Exchange

BROKER_URL = os.environ["BROKER_URL"]
CELERY_RESULT_BACKEND = os.environ["BACKEND_URL"]

CELERY_QUEUES = (
Queue('default', Exchange('default'), routing_key='default'),
Queue('for_task_A', Exchange('for_task_A'), routing_key='for_task_A'),
Queue('for_task_B', Exchange('for_task_B'), routing_key='for_task_B'),
)

CELERY_ROUTES = {
 'my_taskA': {'queue': 'for_task_A', 'routing_key': 'for_task_A'},
 'my_taskB': {'queue': 'for_task_B', 'routing_key': 'for_task_B'},
}
'''

SEED_TASKS = '''
from celeriac import Celery

app = Celery("tasks")
app.config_from_object("celeryconfig")


@app.task(bind=True, name="my_taskA")
def my_task_a(self):
    return self.request.hostname


@app.task(bind=True, name="my_taskB")
def my_task_b(self):
    return self.request.hostname
'''

ROUTED = '''
import re
from celeriac import Exchange, Queue

app.conf.task_default_queue = "dflt"
app.conf.task_queues = [
    Queue("dflt"), Queue("feeds"), Queue("images"), Queue("fn"), Queue("own"), Queue("skip"),
    Queue("percall", Exchange("percall"), routing_key="percall.key"),
]


def by_function(name, args, kwargs, options, task=None, **kw):
    return {"queue": "fn"} if name == "routed.by_function" else None


app.conf.task_routes = [
    {"feed.*": {"queue": "feeds"}, re.compile(r"^routed\\.img_"): "images"},
    by_function,
]


def where(request):
    return [request.hostname.split("@")[0], request.delivery_info["routing_key"]]


@app.task(bind=True, name="feed.fetch")
def fetch(self):
    return where(self.request)


@app.task(bind=True, name="routed.img_resize")
def img_resize(self):
    return where(self.request)


@app.task(bind=True, name="routed.by_function")
def function_routed(self):
    return where(self.request)


@app.task(bind=True, name="routed.plain")
def plain(self):
    return where(self.request)


@app.task(bind=True, name="routed.own", queue="own")
def own(self):
    return where(self.request)
'''


@pytest.fixture
def project(make_project: Callable[[str], Project]) -> Project:
    project = make_project(SEED_TASKS, header="")
    (project.path / "celeryconfig.py").write_text(SEED_CONFIG)
    (project.path / "routed.py").write_text(
        HEADER.replace('Celery("tasks"', 'Celery("routed"') + ROUTED
    )
    return project


def _length(app: Celery, queue: str) -> int:
    async def read() -> int:
        transport = app.new_transport()
        await transport.connect()
        try:
            return await transport.queue_length(queue)
        finally:
            await transport.close()

    return asyncio.run(read())


def test_seed_queues_and_routes_run_as_written(project: Project) -> None:
    # The seed's command lines: one worker per queue (-n workerA -Q for_task_A ...).
    a = project.worker("-E", "-n", "workerA", "-Q", "for_task_A", ready=False)
    b = project.worker("-E", "-n", "workerB", "-Q", "for_task_B", ready=False,
                       env={"SEED_IMPORT": "kombu"})
    routed = project.worker("-n", "routed", "-X", "skip", app="routed", ready=False)
    for w in (a, b, routed):
        w.wait_for(r"ready\.", timeout=30)
    assert ".> for_task_A" in a.output and ".> for_task_B" in b.output

    out = project.python(
        "from tasks import my_task_a, my_task_b\n"
        "print(my_task_a.delay().get(timeout=10), my_task_b.delay().get(timeout=10))\n"
    ).split()
    assert out[0].startswith("workerA@") and out[1].startswith("workerB@")

    out = project.python(
        "import json\n"
        "from routed import app, fetch, img_resize, function_routed, plain, own\n"
        "rs = [fetch.delay(), img_resize.delay(), function_routed.delay(), plain.delay(),\n"
        "      own.delay(), plain.apply_async(queue='feeds'),\n"
        "      plain.apply_async(routing_key='percall.key')]\n"
        "skipped = plain.apply_async(queue='skip')\n"
        "print(json.dumps([r.get(timeout=10) for r in rs]))\n"
        "print(skipped.state)\n"
    ).splitlines()
    got = [queue for _, queue in json.loads(out[0])]
    assert got == ["feeds", "images", "fn", "dflt", "own", "feeds", "percall"]
    assert out[1] == "PENDING"
    # -X skip: the worker consumes every declared queue except 'skip'.
    assert _length(project.client, "skip") == 1
    assert ".> skip" not in routed.output and ".> percall" in routed.output
