#!/usr/bin/env python

# File: task.py

#

from time import sleep

from celeriac import Celery

backend = 'redis://127.0.0.1:6379/0'

broker = 'redis://127.0.0.1:6379/1'

app = Celery('tasks', backend=backend, broker=broker)

#app.conf.CELERY_TASK_SERIALIZER='json'

#app.conf.CELERY_ACCEPT_CONTENT=['json']

app.conf.update(

CELERY_TASK_SERIALIZER='json',

CELERY_ACCEPT_CONTENT=['json'],

CELERY_RESULT_SERIALIZER='json',

)

@app.task

def add(x, y):

    sleep(10)

    return x + y
