#!/usr/bin/env python

# File: task.py

#

from time import sleep

from celeriac import Celery

backend = 'redis://127.0.0.1:6379/0'

broker = 'redis://127.0.0.1:6379/1'

app = Celery('tasks', backend=backend, broker=broker)

@app.task

def add(x, y):

    sleep(10)

    return x + y
