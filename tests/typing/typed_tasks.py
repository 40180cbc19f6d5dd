"""Checked by mypy in tests/typing/test_types.py: task signatures survive @app.task."""

from celeriac import Celery

app = Celery("typing", broker="memory://")


@app.task
def add(x: int, y: int) -> int:
    return x + y


@app.task(bind=True, max_retries=2)
def bound(self: object, x: int) -> str:
    return str(x)


@app.task
async def aadd(x: int, y: int) -> int:
    return x + y


ok_result = add.delay(1, 2)
value: int = ok_result.get()
add.delay(1, "x")  # E: wrong argument type
bound.delay(1)
bound.delay("x")  # E: wrong argument type
aadd.delay(1, 2)
aadd.delay(1)  # E: missing argument
