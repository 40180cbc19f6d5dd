"""The 3.1 calling guide's tasks. Elided by the seed: the app (its broker and
backend are those of the same article's tasks.py), the AsyncResult import and
``other_task``."""

from celeriac import AsyncResult, Celery

app = Celery('tasks', backend='redis://127.0.0.1:6379/0', broker='redis://127.0.0.1:6379/1')


@app.task

def add(x, y):

    return x + y


@app.task

def error_handler(uuid):

    result = AsyncResult(uuid)

    exc = result.get(propagate=False)

    print('Task {0} raised exception: {1!r}\n{2!r}'.format(

          uuid, exc, result.traceback))


@app.task
def other_task(value):
    return value * 10
