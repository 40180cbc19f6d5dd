"""Elided by the seed: the app and the tasks its task_routes name."""

from celeriac import Celery

app = Celery('tasks')
app.config_from_object('celeryconfig')


@app.task
def process_image(path):
    return 'image:' + path


@app.task
def process_video(path):
    return 'video:' + path


@app.task
def generate_report(name):
    return 'report:' + name


@app.task(name='tasks.feed.fetch')
def fetch_feed(url):
    return 'feed:' + url


@app.task(name='image.tasks.resize')
def resize(path):
    return 'resized:' + path
