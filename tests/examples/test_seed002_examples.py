"""Seed 002's examples: quickstart, the proj package with old-style settings,
the scheduler (timedelta and crontab), and CELERY_QUEUES/CELERY_ROUTES workers."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import redis
from tests.examples.conftest import EXAMPLES


def test_quickstart_worker_and_result_api(example, redis_url: str) -> None:
    ex = example("seed002_quickstart", broker=redis_url, backend=redis_url)
    worker = ex.cli("-A", "tasks", "worker", "--loglevel=info")
    assert "  . tasks.add" in worker.output  # the seed: the banner lists the tasks
    out = ex.python(
        "from tasks import add\n"
        "r = add.delay(2, 2)\n"
        "print(add.delay(2, 2))\n"
        "r = add.delay(3, 3)\n"
        "r.get(timeout=10)\n"
        "print(r.ready(), r.result, r.get())\n"
    )
    assert out[0].startswith("<AsyncResult: ") or len(out[0]) == 36  # the task id
    assert out[1] == "True 6 6"
    worker.wait_for(r"Task tasks\.add\[[0-9a-f-]+\] succeeded in [0-9.]+s: 6")


def test_proj_package_with_old_style_settings(example, redis_url: str) -> None:
    ex = example("seed002_proj", broker=redis_url, backend=redis_url)
    worker = ex.cli("-A", "proj", "worker", "-l", "info")
    assert "  . proj.tasks.add" in worker.output
    out = ex.python("from proj.tasks import add\nprint(add.delay(2, 2).get(timeout=10))")
    assert out == ["4"]
    worker.wait_for(r"Task proj\.tasks\.add\[[0-9a-f-]+\] succeeded in [0-9.]+s: 4")


def test_proj_settings_read_as_written() -> None:
    # Without the environment override the old names give the seed's URLs.
    sys.path.insert(0, str(EXAMPLES / "seed002_beat"))
    try:
        from proj.celery import app

        settings = app.conf.settings
        assert settings.broker_url == "redis://127.0.0.1:6379/6"
        assert settings.result_backend == "redis://127.0.0.1:6379/5"
        assert settings.timezone == "Asia/Shanghai"
        assert settings.include == ("proj.tasks",)
        entry = settings.beat_schedule["add-every-30-seconds"]
        assert entry["task"] == "proj.tasks.add" and entry["args"] == (16, 16)
    finally:
        sys.path.remove(str(EXAMPLES / "seed002_beat"))
        for name in [m for m in sys.modules if m == "proj" or m.startswith("proj.")]:
            del sys.modules[name]


def test_scheduler_every_30_seconds_with_embedded_beat(example, redis_url: str) -> None:
    ex = example("seed002_beat", broker=redis_url, backend=redis_url)
    worker = ex.cli("-A", "proj", "worker", "-B", "-l", "info")
    # A plain interval runs first when beat starts (then every 30 s).
    worker.wait_for(r"Sending due task add-every-30-seconds \(proj\.tasks\.add\)")
    worker.wait_for(r"Task proj\.tasks\.add\[[0-9a-f-]+\] succeeded in [0-9.]+s: 32")


def test_crontab_schedule_every_monday_730_shanghai(example, redis_url: str) -> None:
    ex = example("seed002_crontab", broker=redis_url, backend=redis_url)
    out = ex.python(
        "from datetime import datetime, timezone\n"
        "from celeriac.beat.entries import app_timezone, entries_from_config\n"
        "from proj.celery import app\n"
        "s = app.conf.settings\n"
        "entries = entries_from_config(s.beat_schedule, app_timezone(s))\n"
        "entry = entries['add-every-monday-morning']\n"
        "now = datetime(2024, 1, 3, 12, 0, tzinfo=timezone.utc)\n"
        "print(entry.task, entry.args)\n"
        "print(entry.schedule.next_run_after(now, now).isoformat())\n"
    )
    assert out[0] == "tasks.add (16, 16)"
    due = datetime.fromisoformat(out[1])
    local = due.astimezone(ZoneInfo("Asia/Shanghai"))
    assert (local.weekday(), local.hour, local.minute) == (0, 7, 30)  # Monday 07:30
    assert due > datetime(2024, 1, 3, 12, 0, tzinfo=UTC)
    worker = ex.cli("-A", "proj", "worker", "-B", "-l", "info")
    worker.wait_for(r"beat: Starting")


def test_queues_and_routes_with_dedicated_workers(example, amqp_url: str) -> None:
    ex = example("seed002_queues", broker=amqp_url)
    # The seed's commands omit -A; CELERY_APP names the app, as with Celery.
    ex.env["CELERY_APP"] = "tasks"
    worker_a = ex.cli("worker", "-E", "-l", "INFO", "-n", "workerA", "-Q", "for_task_A")
    worker_b = ex.cli("worker", "-E", "-l", "INFO", "-n", "workerB", "-Q", "for_task_B")
    ex.python("from tasks import my_taskA, my_taskB\nmy_taskA.delay('a'); my_taskB.delay('b')")
    worker_a.wait_for(r"Task my_taskA\[[0-9a-f-]+\] succeeded in [0-9.]+s: 'a'")
    worker_b.wait_for(r"Task my_taskB\[[0-9a-f-]+\] succeeded in [0-9.]+s: 'b'")
    assert "my_taskB" not in "\n".join(line for line in worker_a.lines if "Task " in line)
    assert "my_taskA" not in "\n".join(line for line in worker_b.lines if "Task " in line)


def test_ignore_result_old_name(example, redis_url: str) -> None:
    ex = example("seed002_quickstart", broker=redis_url, backend=redis_url)
    out = ex.python(
        "from tasks import app\n"
        "app.config_from_object({'CELERY_IGNORE_RESULT': True})\n"
        "print(app.conf.task_ignore_result)\n"
    )
    assert out == ["True"]
    assert redis.Redis.from_url(redis_url).dbsize() == 0
