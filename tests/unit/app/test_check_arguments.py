"""``Task.check_arguments`` (``typing=True``): calls that cannot bind fail at send time.

The check skips ``inspect.Signature.bind`` for plain positional calls; it must
accept and refuse exactly the calls ``bind`` does.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest

from celeriac import Celery


def f_none() -> None: ...
def f_two(a: Any, b: Any) -> None: ...
def f_default(a: Any, b: Any = 1, c: Any = 2) -> None: ...
def f_star(a: Any, *rest: Any) -> None: ...
def f_pos_only(a: Any, /, b: Any = 0) -> None: ...
def f_kw_only(a: Any, *, k: Any) -> None: ...
def f_kw_default(a: Any, *, k: Any = 0) -> None: ...
def f_kwargs(a: Any, **kw: Any) -> None: ...


FUNCS = [f_none, f_two, f_default, f_star, f_pos_only, f_kw_only, f_kw_default, f_kwargs]
CALLS: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
    ((), {}), ((1,), {}), ((1, 2), {}), ((1, 2, 3), {}), ((1, 2, 3, 4), {}),
    ((1,), {"k": 1}), ((), {"a": 1}), ((1,), {"b": 2}), ((1,), {"zz": 0}),
]


def _binds(fun: Callable[..., Any], bound: bool, args: tuple[Any, ...],
           kwargs: dict[str, Any]) -> bool:
    try:
        inspect.signature(fun).bind(*((None,) if bound else ()), *args, **kwargs)
    except TypeError:
        return False
    return True


@pytest.mark.parametrize("bound", [False, True])
@pytest.mark.parametrize("fun", FUNCS, ids=[f.__name__ for f in FUNCS])
def test_check_arguments_accepts_exactly_what_binds(fun: Callable[..., Any], bound: bool) -> None:
    app = Celery("check", broker="memory://check")
    task = app.task(bind=bound, name=f"check.{fun.__name__}.{bound}")(fun)
    for args, kwargs in CALLS:
        if _binds(fun, bound, args, kwargs):
            task.check_arguments(args, kwargs)
        else:
            with pytest.raises(TypeError, match=task.name):
                task.check_arguments(args, kwargs)
