"""Exceptions to and from Celery's wire dict, including hostile input."""

from __future__ import annotations

import os
import sys
from typing import Any

import pytest

from celeriac import errors
from celeriac.protocol.exceptions import (
    exception_from_wire,
    exception_to_wire,
    is_wire_exception,
    result_exception,
)
from celeriac.protocol.results import decode_meta


def test_builtin_round_trip() -> None:
    wire = exception_to_wire(ValueError("boom"))
    assert wire == {"exc_type": "ValueError", "exc_message": ["boom"], "exc_module": "builtins"}
    back = exception_from_wire(wire)
    assert type(back) is ValueError and back.args == ("boom",)


def test_vectors_exceptions(stored_result: tuple[str, str]) -> None:
    _, raw = stored_result
    meta = decode_meta(raw)
    if not is_wire_exception(meta.result):
        return
    exc = exception_from_wire(meta.result)
    expected = {
        "ValueError": ValueError,
        "KeyError": KeyError,
        "TaskRevokedError": errors.TaskRevokedError,
    }[meta.result["exc_type"]]
    assert type(exc) is expected
    assert list(exc.args) == meta.result["exc_message"]
    assert exception_to_wire(exc) == meta.result


@pytest.mark.parametrize(
    ("name", "ours"),
    [
        ("TaskRevokedError", errors.TaskRevokedError),
        ("TimeLimitExceeded", errors.TimeLimitExceeded),
        ("SoftTimeLimitExceeded", errors.SoftTimeLimitExceeded),
        ("WorkerLostError", errors.WorkerLostError),
        ("MaxRetriesExceededError", errors.MaxRetriesExceededError),
        ("ChordError", errors.ChordError),
        ("Retry", errors.Retry),
    ],
)
def test_celery_names_map_both_ways(name: str, ours: type[BaseException]) -> None:
    for module in ("celery.exceptions", "billiard.exceptions", "celeriac.errors"):
        exc = exception_from_wire({"exc_type": name, "exc_message": ["x"], "exc_module": module})
        assert type(exc) is ours
    wire = exception_to_wire(ours("x"))
    assert (wire["exc_type"], wire["exc_module"]) == (name, "celery.exceptions")
    assert wire["exc_message"][0] == "x"  # Retry also carries (exc, when)


def test_other_celeriac_errors_resolve() -> None:
    exc = exception_from_wire(
        {"exc_type": "DecodeError", "exc_message": ["bad"], "exc_module": "celeriac.errors"}
    )
    assert type(exc) is errors.DecodeError


def test_already_imported_module_is_used() -> None:
    import json

    exc = exception_from_wire(
        {
            "exc_type": "JSONDecodeError",
            "exc_message": ["m", "doc", 0],
            "exc_module": "json.decoder",
        }
    )
    assert type(exc) is json.JSONDecodeError


def test_unimported_module_is_never_imported() -> None:
    name = "celeriac_never_imported_module_xyz"
    exc = exception_from_wire({"exc_type": "Boom", "exc_message": ["m"], "exc_module": name})
    assert isinstance(exc, errors.RemoteTaskError)
    assert (exc.exc_type, exc.exc_module, exc.exc_message) == ("Boom", name, "m")
    assert name not in sys.modules
    assert str(exc) == f"{name}.Boom: m"


@pytest.mark.parametrize(
    "wire",
    [
        {"exc_type": "system", "exc_message": ["touch /tmp/celeriac-pwned"], "exc_module": "os"},
        {"exc_type": "os.system", "exc_message": ["x"], "exc_module": "builtins"},
        {"exc_type": "__import__", "exc_message": ["os"], "exc_module": "builtins"},
        {"exc_type": "eval", "exc_message": ["1/0"], "exc_module": "builtins"},
        {"exc_type": "SystemExit", "exc_message": [1], "exc_module": "builtins"},
        {"exc_type": "KeyboardInterrupt", "exc_message": [], "exc_module": "builtins"},
        {"exc_type": "Popen", "exc_message": [["id"]], "exc_module": "subprocess"},
        {"exc_type": "path", "exc_message": [], "exc_module": "sys"},
        {"exc_type": "Celery", "exc_message": [], "exc_module": "celery"},
    ],
)
def test_hostile_names_become_remote_errors(wire: dict[str, Any], tmp_path: Any) -> None:
    before = set(sys.modules)
    exc = exception_from_wire(wire)
    assert isinstance(exc, errors.RemoteTaskError)
    assert exc.exc_type == wire["exc_type"]
    assert set(sys.modules) == before
    assert not os.path.exists("/tmp/celeriac-pwned")
    assert exception_to_wire(exc) == wire  # passes through unchanged


def test_remote_error_round_trips_arguments() -> None:
    for args in ([], ["a"], ["a", "b"], [[1, 2]], [{"k": 1}]):
        wire = {"exc_type": "E", "exc_message": args, "exc_module": "elsewhere"}
        assert exception_to_wire(exception_from_wire(wire)) == wire


def test_constructor_that_needs_other_arguments() -> None:
    wire = {"exc_type": "UnicodeDecodeError", "exc_message": ["x"], "exc_module": "builtins"}
    exc = exception_from_wire(wire)
    assert isinstance(exc, errors.RemoteTaskError)


def test_odd_wire_shapes() -> None:
    assert type(exception_from_wire({"exc_type": "ValueError", "exc_message": "old"})) is ValueError
    assert exception_from_wire({"exc_type": "ValueError"}).args == ()
    assert isinstance(exception_from_wire({}), errors.RemoteTaskError)
    assert isinstance(exception_from_wire({"exc_type": 5}), errors.RemoteTaskError)


def test_unserializable_args_are_repr() -> None:
    class Thing:
        def __repr__(self) -> str:
            return "<thing>"

    wire = exception_to_wire(ValueError(Thing(), (1, 2), {"a": {3}}))
    assert wire["exc_message"] == ["<thing>", [1, 2], {"a": "{3}"}]


def test_user_exception_module_name() -> None:
    class MyError(Exception):
        pass

    wire = exception_to_wire(MyError("x"))
    assert wire["exc_type"] == "MyError" and wire["exc_module"] == __name__


def test_result_exception_accepts_objects_and_dicts() -> None:
    err = KeyError("k")
    assert result_exception(err) is err
    assert type(result_exception({"exc_type": "KeyError", "exc_message": ["k"]})) is KeyError
    assert isinstance(result_exception("weird"), errors.RemoteTaskError)
