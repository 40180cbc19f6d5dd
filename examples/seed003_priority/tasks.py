"""The seed's priority settings (6.4) on RabbitMQ, which it names as the broker that
supports them. Elided by the seed: the app, the broker URL and the task."""

from celeriac import Celery

app = Celery('tasks', broker='amqp://guest:guest@localhost:5672//')

# 在配置中启用优先级
app.conf.task_queue_max_priority = 10
app.conf.task_default_priority = 5


@app.task
def task(arg1, arg2):
    return [arg1, arg2]
