"""Signals through a real worker: each connected with ``@signal.connect`` in the task module."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from tests.execution.conftest import Project
from tests.helpers.procs import wait_until

TASKS = '''
import logging, sys
from celeriac import signals


def log(name, *extra):
    with open("signals.log", "a") as fh:
        fh.write(" ".join([name, str(os.getpid()), *map(str, extra)]) + "\\n")


@signals.setup_logging.connect
def own_logging(loglevel=None, **kw):
    # A receiver takes over logging set-up (celeriac installs no handler then).
    logging.basicConfig(stream=sys.stderr, level=loglevel, format="OWN %(message)s")
    log("setup_logging", logging.getLevelName(loglevel))


@signals.celeryd_init.connect
def init(sender=None, conf=None, **kw):
    log("celeryd_init", sender)


@signals.worker_init.connect
def worker_init(sender=None, **kw):
    log("worker_init")


@signals.worker_process_init.connect
def process_init(**kw):
    log("worker_process_init")


@signals.worker_ready.connect
def ready(sender=None, **kw):
    log("worker_ready", sender.hostname)


@signals.worker_shutdown.connect
def shutdown(sender=None, **kw):
    log("worker_shutdown")


@signals.before_task_publish.connect
def before_publish(sender=None, body=None, headers=None, **kw):
    headers["traced"] = "yes"  # travels with the message
    log("before_task_publish", sender, body[0])


@signals.after_task_publish.connect
def after_publish(sender=None, headers=None, **kw):
    log("after_task_publish", sender, headers["id"])


@signals.task_prerun.connect
def prerun(sender=None, task_id=None, task=None, **kw):
    log("task_prerun", task.name, task_id)


@signals.task_postrun.connect
def postrun(sender=None, task_id=None, state=None, retval=None, **kw):
    log("task_postrun", task_id, state)


@signals.task_success.connect
def success(sender=None, result=None, **kw):
    log("task_success", sender.name, result)


@signals.task_failure.connect
def failure(sender=None, task_id=None, exception=None, **kw):
    log("task_failure", task_id, type(exception).__name__)


@signals.task_retry.connect
def retry(sender=None, request=None, reason=None, **kw):
    log("task_retry", request.id, type(reason).__name__)


@signals.task_revoked.connect
def revoked(sender=None, request=None, expired=False, **kw):
    log("task_revoked", request.id, expired)


@app.task(bind=True)
def traced(self):
    return self.request.headers.get("traced") if self.request.headers else None


@app.task
def boom():
    raise KeyError("boom")


@app.task(bind=True, max_retries=1)
def again(self):
    if not self.request.retries:
        raise self.retry(exc=OSError("once"), countdown=0.05)
    return "retried"
'''

CLIENT = '''
from tasks import traced, boom, again
print(traced.delay().get(timeout=10))
b = boom.delay()
try:
    b.get(timeout=10)
except KeyError:
    pass
a = again.delay()
print(a.get(timeout=10))
print(b.id, a.id)
'''


@pytest.fixture
def project(make_project: Callable[[str], Project]) -> Project:
    return make_project(TASKS)


def _events(project: Project) -> list[list[str]]:
    return [line.split() for line in project.read("signals.log")]


def test_signals_fire_through_a_real_worker(project: Project) -> None:
    worker = project.worker("-c", "1", "-n", "sig@%h")
    out = project.python(CLIENT).split()
    assert out[:2] == ["yes", "retried"]
    boom_id, again_id = out[2:]
    expired = project.send("traced", expires=datetime.now(UTC) - timedelta(seconds=1))
    wait_until(lambda: expired.state == "REVOKED", timeout=10, what="expired task revoked")
    assert "OWN " in worker.output  # the setup_logging receiver's format is in use
    worker.stop()
    events = _events(project)
    names = {e[0] for e in events}
    assert names >= {
        "setup_logging", "celeryd_init", "worker_init", "worker_process_init", "worker_ready",
        "worker_shutdown", "before_task_publish", "after_task_publish", "task_prerun",
        "task_postrun", "task_success", "task_failure", "task_retry", "task_revoked",
    }, names
    by_name = {e[0]: e for e in events}
    worker_pid = by_name["worker_ready"][1]
    assert by_name["worker_process_init"][1] != worker_pid  # fired in the prefork child
    assert by_name["celeryd_init"][2].startswith("sig@")
    assert any(e[0] == "task_failure" and e[2:] == [boom_id, "KeyError"] for e in events)
    assert any(e[0] == "task_retry" and e[2] == again_id and e[3] == "OSError" for e in events)
    assert any(e[0] == "task_revoked" and e[2] == expired.id and e[3] == "True" for e in events)
    assert any(e[0] == "task_success" and e[2:] == ["tasks.again", "retried"] for e in events)
    assert any(e[0] == "task_postrun" and e[2:] == [boom_id, "FAILURE"] for e in events)
    assert any(e[0] == "before_task_publish" and e[2] == "tasks.traced" for e in events)
