"""Elided by the seed: the app and the three tasks its beat_schedule names."""

from celeriac import Celery

app = Celery('tasks')
app.config_from_object('celeryconfig')


@app.task
def add(x, y):
    return x + y


@app.task
def clean_database():
    return 'cleaned'


@app.task
def send_report():
    return 'report sent'
