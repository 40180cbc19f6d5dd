"""Seed 003's tour: the app with conf.update, the task options, the calling and
result APIs, worker commands, canvas, beat, routing, priorities, error handling,
the ETL pipeline and eager-mode testing."""

from __future__ import annotations

import redis
from tests.helpers.procs import wait_until

TOUR_CLIENT = '''
from tasks import (add, process_image, send_email, process_data, process_upload,
                   process_image_with_fallback, error_handler, sum_results,
                   extract_logs, transform_logs, load_to_database)
from celeriac import chain, group, chord, chunks

# 4.3 调用任务
result = add.apply_async((2, 2))
print("apply_async", result.get(timeout=10))
later = process_image.apply_async(
    args=['/path/to/image.jpg'],
    countdown=10,  # 10秒后执行
    expires=300,  # 5分钟内有效
    retry=True,  # 支持重试
    retry_policy={
        'max_retries': 3,
        'interval_start': 0,
        'interval_step': 0.2,
        'interval_max': 0.5,
    },
    queue='image_processing',  # 指定队列
    priority=5,  # 优先级(需代理支持)
)
result = add.delay(2, 2)
print("delay", result.get(timeout=10))
result = process_image.delay('/path/to/image.jpg')
print("delay", result.get(timeout=10))
print("local", add(2, 2))

# 4.4 获取任务结果
result = add.delay(2, 2)
value = result.get(timeout=10)
print("state", result.state, value)
if result.ready():
    print("ready", result.get())
try:
    value = add.delay(2, 'x').get()
except Exception as exc:
    print(f"Task failed: {type(exc).__name__}")

# 4.1 / 4.2
print("send_email", send_email.delay('ok@example.com', 'hi', 'body').get(timeout=10))
process_data.delay({'n': 1})

# 6.1 Canvas
print("chain", chain(add.s(2, 2), add.s(4), add.s(8))().get(timeout=10))
print("pipe", (add.s(2, 2) | add.s(4) | add.s(8))().get(timeout=10))
print("group", group(add.s(i, i) for i in range(10))().get(timeout=10))
print("chord", chord((add.s(i, i) for i in range(10)), sum_results.s())().get(timeout=10))
print("map", type(add.map([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])).__name__)

# 6.5 错误处理
print("upload", process_upload.delay('flaky.txt').get(timeout=30))
print("fallback", process_image_with_fallback.delay('x.jpg').get(timeout=10))
bad = add.apply_async((2, 'x'), link_error=error_handler.s())
print("link_error", type(bad.get(timeout=10, propagate=False)).__name__)

# 8.2 数据处理流水线
workflow = (extract_logs.s('2025-03-23') | transform_logs.s() | load_to_database.s())
print("etl", workflow().get(timeout=10))

print("countdown", later.get(timeout=30), later.state)
'''


def test_tour_calling_results_canvas_and_errors(example, redis_url: str) -> None:
    ex = example("seed003_tour", broker=redis_url, backend=redis_url)
    main = ex.cli("-A", "tasks", "worker", "--pool=prefork", "--concurrency=4", "--loglevel=INFO")
    # The seed's "-Q high_priority,default" command, with the queue its own
    # process_image.apply_async(queue='image_processing') call sends to.
    queues = ex.cli("-A", "tasks", "worker", "-Q", "high_priority,default,image_processing",
                    "--loglevel=INFO")
    out = ex.python(TOUR_CLIENT, timeout=90)
    assert out == [
        "apply_async 4",
        "delay 4",
        "delay processed:/path/to/image.jpg",
        "local 4",
        "state SUCCESS 4",
        "ready 4",
        "Task failed: TypeError",
        "send_email None",
        "chain 16",
        "pipe 16",
        "group [0, 2, 4, 6, 8, 10, 12, 14, 16, 18]",
        "chord 90",
        "map XMap",
        "upload None",
        "fallback b:x.jpg",
        "link_error TypeError",
        "etl True",
        "countdown processed:/path/to/image.jpg SUCCESS",
    ]
    queues.wait_for(r"Task tasks\.process_data\[[0-9a-f-]+\] succeeded")
    main.wait_for(r"Task tasks\.process_upload\[[0-9a-f-]+\] retry", count=2)
    # 6.5's global handler runs in the worker with (request, exc, traceback).
    main.wait_for(r"sentry: .* TypeError\(")
    main.wait_for(r"admin notified: ")
    main.wait_for(r"saved stats: \[\('alice', 2\), \('bob', 1\)\]")


def test_eager_mode_unit_test(example) -> None:
    ex = example("seed003_tour", broker="memory://", backend="memory://")
    out = ex.python(
        "from tasks import app, add\n"
        "app.conf.update(\n"
        "    task_always_eager=True,  # 任务同步执行\n"
        "    task_eager_propagates=True,  # 传播异常\n"
        ")\n"
        "def test_add_task():\n"
        "    result = add.delay(2, 2)\n"
        "    assert result.get() == 4\n"
        "test_add_task()\n"
        "print('ok')\n"
    )
    assert out == ["ok"]


def test_gevent_pool_is_refused_with_the_alternative(example, tmp_path) -> None:
    ex = example("seed003_tour", broker="memory://")
    proc = ex.cli("-A", "tasks", "worker", "--pool=gevent", "--concurrency=100",
                  "--loglevel=INFO", ready=None)
    assert proc.wait(30) == 2
    assert "celeriac has no 'gevent' pool" in proc.output and "-P asyncio" in proc.output


def test_config_module_routes_and_beat(example, redis_url: str) -> None:
    ex = example("seed003_config", broker=redis_url, backend=redis_url)
    worker = ex.cli("-A", "tasks", "worker", "--beat", "-Q", "math,image", "--loglevel=INFO")
    # beat_schedule's 30 s entry runs at start; task_routes sends it to 'math'.
    worker.wait_for(r"Sending due task add-every-30-seconds \(tasks\.add\)")
    worker.wait_for(r"Task tasks\.add\[[0-9a-f-]+\] succeeded in [0-9.]+s: 32")
    out = ex.python(
        "from tasks import app, add, process_image\n"
        "print(add.delay(2, 2).get(timeout=10), process_image.delay('a.jpg').get(timeout=10))\n"
        "s = app.conf.settings\n"
        "print(s.timezone, s.task_serializer, s.accept_content)\n"
    )
    assert out == ["4 processed:a.jpg", "Asia/Shanghai json ('json',)"]


def test_beat_service_sends_due_entries(example, redis_url: str) -> None:
    ex = example("seed003_beat", broker=redis_url)
    beat = ex.cli("-A", "tasks", "beat", "--loglevel=INFO", ready=r"beat: Starting")
    beat.wait_for(r"Sending due task send-report-every-hour \(tasks\.send_report\)")
    client = redis.Redis.from_url(redis_url)
    wait_until(lambda: client.llen("celery") == 1, 10, "the report message in queue 'celery'")
    assert ". entries -> 3" in beat.output
    assert "Sending due task add-every-morning" not in beat.output  # crontab: not due now
    worker = ex.cli("-A", "tasks", "worker", "--loglevel=INFO")
    worker.wait_for(r"Task tasks\.send_report\[[0-9a-f-]+\] succeeded in [0-9.]+s: 'report sent'")


def test_routes_with_names_globs_and_regexes(example, redis_url: str) -> None:
    ex = example("seed003_routing", broker=redis_url)
    ex.python(
        "from tasks import process_image, process_video, generate_report, fetch_feed, resize\n"
        "process_image.delay('a'); process_video.delay('b'); generate_report.delay('c')\n"
        "fetch_feed.delay('d'); resize.delay('e')\n"
    )
    client = redis.Redis.from_url(redis_url)
    lengths = {q: client.llen(q) for q in ("images", "videos", "reports", "feeds", "media")}
    assert lengths == {"images": 1, "videos": 1, "reports": 1, "feeds": 1, "media": 1}
    worker = ex.cli("-A", "tasks", "worker", "-Q", "images", "--loglevel=INFO")
    worker.wait_for(r"Task tasks\.process_image\[[0-9a-f-]+\] succeeded in [0-9.]+s: 'image:a'")
    assert client.llen("videos") == 1


def test_priorities_on_rabbitmq(example, amqp_url: str) -> None:
    ex = example("seed003_priority", broker=amqp_url)
    # Declare the queue (x-max-priority) by starting a worker once, then queue work.
    first = ex.cli("-A", "tasks", "worker", "--loglevel=INFO")
    first.stop()
    ex.python(
        "from tasks import task\n"
        "arg1, arg2 = 'low', 1\n"
        "for i in range(3):\n"
        "    task.apply_async((arg1, i))\n"
        "arg1, arg2 = 'high', 9\n"
        "# 发送任务时指定优先级\n"
        "task.apply_async((arg1, arg2), priority=9)\n"
    )
    worker = ex.cli("-A", "tasks", "worker", "--concurrency=1", "--prefetch-multiplier=1",
                    "--loglevel=INFO")
    done = worker.wait_for(r"Task tasks\.task\[[0-9a-f-]+\] succeeded", count=4)
    assert "'high', 9" in done[0]


