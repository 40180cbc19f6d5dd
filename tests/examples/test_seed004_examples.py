"""Seed 004: the Redis tasks.py (both versions, add sleeps 10 s), the Python
session, the Tornado handler's apply_async, and the 3.1 calling guide."""

from __future__ import annotations

SESSION = (
    "from tasks import add\n"
    "r = add.delay(4, 4)\n"
    "print(r.ready(), r.status)\n"
    "tornado = add.apply_async(args=[10, 2])\n"  # the Tornado handler's call
    "r.get(timeout=40)\n"
    "print(r.result, r.status, tornado.get(timeout=40))\n"
)


def test_redis_tasks_session_and_tornado_call(example, redis_url: str) -> None:
    plain = example("seed004_redis", broker=redis_url, backend=redis_url)
    w1 = plain.cli("-A", "tasks", "worker", "--loglevel=info")
    out = plain.python(SESSION, timeout=60)
    assert out == ["False PENDING", "8 SUCCESS 12"]
    w1.wait_for(r"Task tasks\.add\[[0-9a-f-]+\] succeeded in 10\.[0-9]+s: 8")


def test_json_settings_version(example, redis_url: str) -> None:
    ex = example("seed004_json", broker=redis_url, backend=redis_url)
    out = ex.python(
        "from tasks import app\n"
        "s = app.conf.settings\n"
        "print(s.task_serializer, s.accept_content, s.result_serializer)\n"
    )
    assert out == ["json ('json',) json"]


CALLING = '''
from datetime import datetime, timedelta
from tasks import add, error_handler, other_task
from celeriac import group

print("link", add.apply_async((2, 2), link=add.s(16)).get(timeout=10))
r = add.apply_async((2, 2), link_error=error_handler.s())
print("link_error ok", r.get(timeout=10))
bad = add.apply_async((2, 'x'), link_error=error_handler.s())
print("failed", type(bad.get(timeout=10, propagate=False)).__name__)
print("links", add.apply_async((2, 2), link=[add.s(16), other_task.s()]).get(timeout=10))
result = add.apply_async((2, 2), countdown=3)
print("countdown", result.get())
tomorrow = datetime.utcnow() + timedelta(days=1)
print("eta", add.apply_async((2, 2), eta=tomorrow).state)
print("expires", add.apply_async((10, 10), expires=60).get(timeout=10))
print("retry", add.apply_async((2, 2), retry=False).get(timeout=10))
print("policy", add.apply_async((2, 2), retry=True, retry_policy={
    'max_retries': 3,
    'interval_start': 0,
    'interval_step': 0.2,
    'interval_max': 0.2,
}).get(timeout=10))
print("serializer", add.apply_async((10, 10), serializer='json').get(timeout=10))
print("compression", add.apply_async((2, 2), compression='zlib').get(timeout=10))
numbers = [(2, 2), (4, 4), (8, 8), (16, 16)]
res = group(add.subtask(n) for n in numbers).apply_async()
print("group", res.get(timeout=10))
print("queue", add.apply_async((1, 1), queue='priority.high').get(timeout=10))
print("send_task", add.app.send_task('tasks.add', (3, 4)).get(timeout=10))
print("s", add.s(1, 2).apply_async().get(timeout=10))
'''


def test_calling_guide(example, redis_url: str) -> None:
    ex = example("seed004_calling", broker=redis_url, backend=redis_url)
    ex.env["CELERY_APP"] = "tasks"  # the seed's command has no -A
    worker = ex.cli("worker", "-l", "info", "-Q", "celery,priority.high")
    out = ex.python(CALLING, timeout=60)
    assert out == [
        "link 4",
        "link_error ok 4",
        "failed TypeError",
        "links 4",
        "countdown 4",  # the seed prints 20: (2, 2) adds up to 4
        "eta PENDING",
        "expires 20",
        "retry 4",
        "policy 4",
        "serializer 20",
        "compression 4",
        "group [4, 8, 16, 32]",
        "queue 2",
        "send_task 7",
        "s 3",
    ]
    worker.wait_for(r"Task tasks\.add\[[0-9a-f-]+\] succeeded in [0-9.]+s: 20", count=3)
    worker.wait_for(r"Task tasks\.other_task\[[0-9a-f-]+\] succeeded in [0-9.]+s: 40")
    worker.wait_for(r"Task [0-9a-f-]+ raised exception: TypeError")
