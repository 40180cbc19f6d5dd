from celeriac import Celery

app = Celery('myapp')
app.config_from_object('celeryconfig')


# Elided by the seed: the tasks that celeryconfig routes (as in its 3.2 / 4.1).
@app.task
def add(x, y):
    return x + y


@app.task
def process_image(image_path):
    return f'processed:{image_path}'
