"""The seeds' quickstart, runnable as written with celeriac.

Run a worker (no server needed: the embedded SQLite broker and result store
live in ./celeriac.sqlite)::

    celeriac -A examples.tasks worker --loglevel=INFO

and from another shell::

    python -c "from examples.tasks import add; print(add.delay(2, 2).get(timeout=10))"
"""

from celeriac import Celery

app = Celery("tasks")


@app.task
def add(x: int, y: int) -> int:
    """Add two numbers."""
    return x + y


@app.task
def mul(x: int, y: int) -> int:
    """Multiply two numbers."""
    return x * y


@app.task
def xsum(numbers: list[int]) -> int:
    """Sum a list of numbers."""
    return sum(numbers)


@app.task
async def slow_add(x: int, y: int) -> int:
    """An ``async def`` task: awaits without blocking the worker."""
    import asyncio

    await asyncio.sleep(0.1)
    return x + y
