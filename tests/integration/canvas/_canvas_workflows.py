"""Canvas workflows checked through a real worker, shared by the SQLite, Redis and CLI runs.

The task module is written to a directory as source (so a worker subprocess can
import it with ``-A``); each ``check_*`` takes that imported module and runs one
workflow end to end, asserting on values, result links and side effects (an
``events.log`` file next to the module records errbacks and chord bodies).
"""

from __future__ import annotations

import importlib.util
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from celeriac import GroupResult
from celeriac.canvas import chain, chord, group
from celeriac.errors import ChordError

TIMEOUT = 30.0

TASKS_SOURCE = '''
import os
from pathlib import Path

from celeriac import Celery

LOG = Path(__file__).with_name("events.log")
app = Celery("canvas_tasks", broker=os.environ["CANVAS_BROKER"],
             backend=os.environ["CANVAS_BACKEND"])


def record(*parts):
    with LOG.open("a") as f:
        f.write(" ".join(str(p) for p in parts) + "\\n")


@app.task(name="canvas.add")
def add(x, y):
    return x + y


@app.task(name="canvas.double")
def double(x):
    return 2 * x


@app.task(name="canvas.tsum")
def tsum(xs, *extra):
    record("tsum", len(xs), sum(xs) + sum(extra))
    return sum(xs) + sum(extra)


@app.task(name="canvas.fail")
def fail(*args):
    raise ValueError("boom")


@app.task(name="canvas.on_error")
def on_error(request, exc, traceback):
    record("errback", request.id, type(exc).__name__)


@app.task(name="canvas.on_error_id")
def on_error_id(task_id):
    record("errback-id", task_id)
'''


def write_tasks(directory: Path, name: str = "canvas_tasks") -> Path:
    """Write the task module into ``directory``; returns its path."""
    path = directory / f"{name}.py"
    path.write_text(TASKS_SOURCE)
    return path


def load_tasks(path: Path, name: str) -> ModuleType:
    """Import the task module at ``path`` under a unique module name."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def events(mod: ModuleType) -> list[str]:
    log: Path = mod.LOG
    return log.read_text().splitlines() if log.exists() else []


def wait_events(mod: ModuleType, predicate: Callable[[list[str]], bool],
                timeout: float = TIMEOUT) -> list[str]:
    """Poll the events log until ``predicate`` holds (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = events(mod)
        if predicate(lines):
            return lines
        if time.monotonic() > deadline:
            raise AssertionError(f"events never matched; got {lines!r}")
        time.sleep(0.02)


# -- chains ----------------------------------------------------------------------
def check_chain(mod: ModuleType) -> None:
    res = chain(mod.add.s(1, 2), mod.add.s(3), mod.add.s(4)).apply_async()
    assert res.get(timeout=TIMEOUT) == 10
    assert res.parent.get(timeout=TIMEOUT) == 6
    assert res.parent.parent.get(timeout=TIMEOUT) == 3
    assert res.parent.parent.parent is None
    first = mod.app.AsyncResult(res.parent.parent.id)
    assert [c.id for c in first.children] == [res.parent.id]
    # collect() walks the graph from the first task: every step, in order.
    assert [v for _, v in first.collect(timeout=TIMEOUT)] == [3, 6, 10]


def check_chain_operators_si_and_flatten(mod: ModuleType) -> None:
    res = (mod.add.s(1, 1) | mod.add.si(5, 5) | mod.add.s(1)).apply_async()
    assert res.get(timeout=TIMEOUT) == 11
    nested = chain(chain(mod.add.s(1, 1), mod.add.s(1)), chain(mod.double.s()))
    assert len(nested.tasks) == 3
    assert nested.delay().get(timeout=TIMEOUT) == 6
    # partial application: the new argument goes first
    assert mod.add.s(10).delay(1).get(timeout=TIMEOUT) == 11


def check_chain_error_stops_and_calls_errback(mod: ModuleType) -> None:
    workflow = mod.add.s(1, 1) | mod.fail.s() | mod.add.s(1)
    workflow.link_error(mod.on_error.s())
    res = workflow.apply_async()
    with pytest.raises(ValueError, match="boom"):
        res.get(timeout=TIMEOUT)
    assert res.state == "FAILURE"
    failed_id = res.parent.id
    lines = wait_events(mod, lambda ls: any(failed_id in line for line in ls))
    assert [line for line in lines if failed_id in line] == [f"errback {failed_id} ValueError"]


def check_link_and_link_error(mod: ModuleType) -> None:
    res = mod.add.apply_async((2, 3), link=mod.double.s())
    assert res.get(timeout=TIMEOUT) == 5
    child = _wait_children(res)[0]
    assert child.get(timeout=TIMEOUT) == 10
    bad = mod.fail.apply_async((), link_error=mod.on_error_id.s())
    with pytest.raises(ValueError):
        bad.get(timeout=TIMEOUT)
    wait_events(mod, lambda ls: f"errback-id {bad.id}" in ls)


# -- groups ------------------------------------------------------------------------
def check_group(mod: ModuleType) -> None:
    res = group(mod.add.s(i, i) for i in range(8)).apply_async()
    assert isinstance(res, GroupResult)
    assert res.get(timeout=TIMEOUT) == [2 * i for i in range(8)]
    assert res.ready() and res.successful() and not res.failed()
    assert res.completed_count() == 8
    res.save()
    restored = GroupResult.restore(res.id, app=mod.app)
    assert restored is not None
    assert [r.id for r in restored.results] == [r.id for r in res.results]
    assert restored.join(timeout=TIMEOUT) == [2 * i for i in range(8)]
    empty = group([]).apply_async()
    assert empty.ready() and empty.get(timeout=1) == []
    mixed = group(mod.add.s(1, 1), mod.fail.s()).apply_async()
    with pytest.raises(ValueError):
        mixed.join(timeout=TIMEOUT)
    assert mixed.failed() and not mixed.successful()


def check_group_of_chains(mod: ModuleType) -> None:
    res = group(mod.add.s(1, 1) | mod.add.s(1), mod.add.s(2, 2) | mod.double.s()).apply_async()
    assert res.get(timeout=TIMEOUT) == [3, 8]


def check_chain_ending_in_group(mod: ModuleType) -> None:
    res = (mod.add.s(1, 1) | group(mod.add.s(10), mod.double.s())).apply_async()
    assert isinstance(res, GroupResult)
    assert res.get(timeout=TIMEOUT) == [12, 4]
    first = res.parent
    assert first.get(timeout=TIMEOUT) == 2
    kids = _wait_children(mod.app.AsyncResult(first.id))
    assert isinstance(kids[0], GroupResult) and kids[0].id == res.id


# -- chords ------------------------------------------------------------------------
def check_chord(mod: ModuleType) -> None:
    res = chord([mod.add.s(i, i) for i in range(10)], mod.tsum.s()).apply_async()
    assert res.get(timeout=TIMEOUT) == 90
    assert isinstance(res.parent, GroupResult)
    assert res.parent.get(timeout=TIMEOUT) == [2 * i for i in range(10)]
    # the body's own partial args come after the results
    assert chord([mod.add.s(1, 1)], mod.tsum.s(100)).apply_async().get(timeout=TIMEOUT) == 102
    assert chord([])(mod.tsum.s()).get(timeout=TIMEOUT) == 0
    assert chord([mod.add.s(2, 2), mod.add.s(3, 3)])(mod.tsum.s()).get(timeout=TIMEOUT) == 10


def check_chord_failure(mod: ModuleType) -> None:
    body = mod.tsum.s()
    body.link_error(mod.on_error.s())
    header = [mod.add.s(1, 1), mod.fail.s(), mod.add.s(2, 2)]
    res = chord(header, body).apply_async()
    with pytest.raises(ChordError) as info:
        res.get(timeout=TIMEOUT)
    failed_id = res.parent.results[1].id
    assert failed_id in str(info.value) and "ValueError" in str(info.value)
    wait_events(mod, lambda ls: f"errback {res.id} ChordError" in ls)
    assert not any(line.startswith("tsum 3 ") for line in events(mod))


def check_group_pipe_task_is_chord(mod: ModuleType) -> None:
    assert (group(mod.add.s(1, 1), mod.add.s(2, 2)) | mod.tsum.s()).delay().get(
        timeout=TIMEOUT) == 6
    workflow = mod.add.s(1, 1) | group(mod.add.s(1), mod.add.s(2)) | mod.tsum.s()
    assert workflow.delay().get(timeout=TIMEOUT) == 7


def check_chord_in_chain(mod: ModuleType) -> None:
    workflow = chain(mod.add.s(1, 1), chord([mod.add.s(1), mod.add.s(2)], mod.tsum.s()),
                     mod.add.s(100))
    res = workflow.apply_async()
    assert res.get(timeout=TIMEOUT) == 107
    assert res.parent.get(timeout=TIMEOUT) == 7


def check_chain_as_chord_body(mod: ModuleType) -> None:
    res = chord([mod.add.s(1, 1), mod.add.s(2, 2)], mod.tsum.s() | mod.double.s()).apply_async()
    assert res.get(timeout=TIMEOUT) == 12


def check_chord_of_chords(mod: ModuleType) -> None:
    inner1 = chord([mod.add.s(1, 1), mod.add.s(2, 2)], mod.tsum.s())
    inner2 = chord([mod.add.s(3, 3)], mod.tsum.s())
    res = chord([inner1, inner2], mod.tsum.s()).apply_async()
    assert res.get(timeout=TIMEOUT) == 12


def check_chord_with_chains_in_header(mod: ModuleType) -> None:
    header = [mod.add.s(1, 1) | mod.double.s(), mod.add.s(2, 2) | mod.double.s()]
    assert chord(header, mod.tsum.s()).delay().get(timeout=TIMEOUT) == 12


# -- map, starmap, chunks -------------------------------------------------------------
def check_map_starmap_chunks(mod: ModuleType) -> None:
    assert mod.double.map([1, 2, 3]).delay().get(timeout=TIMEOUT) == [2, 4, 6]
    assert mod.add.starmap([(1, 2), (3, 4)]).delay().get(timeout=TIMEOUT) == [3, 7]
    pairs = [(i, i) for i in range(7)]
    res = mod.add.chunks(pairs, 3).apply_async()
    assert res.get(timeout=TIMEOUT) == [[0, 2, 4], [6, 8, 10], [12]]
    assert mod.add.chunks(pairs, 5).group().apply_async().get(timeout=TIMEOUT) == [
        [0, 2, 4, 6, 8], [10, 12]]


def _wait_children(res: Any) -> list[Any]:
    deadline = time.monotonic() + TIMEOUT
    while True:
        fresh = res.app.AsyncResult(res.id)
        kids = fresh.children
        if kids:
            return list(kids)
        if time.monotonic() > deadline:
            raise AssertionError(f"{res.id} has no children")
        time.sleep(0.02)


SYNC_CHECKS: list[Callable[[ModuleType], None]] = [
    check_chain,
    check_chain_operators_si_and_flatten,
    check_chain_error_stops_and_calls_errback,
    check_link_and_link_error,
    check_group,
    check_group_of_chains,
    check_chain_ending_in_group,
    check_chord,
    check_chord_failure,
    check_group_pipe_task_is_chord,
    check_chord_in_chain,
    check_chain_as_chord_body,
    check_chord_of_chords,
    check_chord_with_chains_in_header,
    check_map_starmap_chunks,
]
