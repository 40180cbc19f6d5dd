"""Elided by the seed: the app and the two tasks its CELERY_ROUTES name.

The broker is RabbitMQ on this machine (the seed names none); ``celeryconfig``
holds the seed's CELERY_QUEUES and CELERY_ROUTES as written.
"""

from celeriac import Celery

app = Celery('tasks', broker='amqp://guest:guest@127.0.0.1:5672//')
app.config_from_object('celeryconfig')


@app.task(name='my_taskA')
def my_taskA(x):
    return x


@app.task(name='my_taskB')
def my_taskB(x):
    return x
