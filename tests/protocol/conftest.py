"""Shared fixtures for the protocol golden tests: Celery's captured messages.

The vectors live in ``<workspace>/shared/protocol/vectors`` (override with the
``CELERIAC_VECTORS`` environment variable). They are required: a missing
directory is a collection error, never a skip.

Tests ask for one of the parametrized fixtures below and run once per item
found in the vectors:

* ``raw_element`` -- every kombu Redis element (list items, pub/sub payloads,
  LPUSHes), as ``(case, raw string)``;
* ``unacked_value`` -- every ``unacked`` hash value;
* ``task_element`` -- every Redis element that carries a task message;
* ``stored_result`` -- every stored ``celery-task-meta-*`` value;
* ``amqp_task`` -- every AMQP task message;
* ``event_vector`` -- every ``event_*.json`` file.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest


def _vectors_dir() -> Path:
    override = os.environ.get("CELERIAC_VECTORS")
    if override:
        path = Path(override)
    else:
        path = Path(__file__).resolve().parents[3] / "shared" / "protocol" / "vectors"
    if not path.is_dir():
        raise RuntimeError(
            f"protocol vectors not found at {path}; set CELERIAC_VECTORS to the "
            "directory holding Celery's captured messages"
        )
    return path


VECTORS_DIR = _vectors_dir()


@cache
def load_vector(name: str) -> dict[str, Any]:
    """One vector file by name (with or without ``.json``)."""
    file = VECTORS_DIR / (name if name.endswith(".json") else f"{name}.json")
    data: dict[str, Any] = json.loads(file.read_text(encoding="utf-8"))
    return data


def _all_vectors() -> Iterator[tuple[str, dict[str, Any]]]:
    for file in sorted(VECTORS_DIR.glob("*.json")):
        yield file.stem, load_vector(file.name)


def _raw_elements() -> Iterator[tuple[str, str]]:
    for case, data in _all_vectors():
        for message in data.get("messages", []):
            if "raw_list_element" in message:
                yield case, message["raw_list_element"]
        if "raw_published_string" in data:
            yield case, data["raw_published_string"]
        for entry in data.get("commands", []):
            command = entry["command"]
            if command[0] in ("LPUSH", "PUBLISH") and command[2].startswith('{"body"'):
                yield case, command[2]
        for dump_key in ("db0", "all_redis_keys_after_send_db0"):
            for key in (data.get(dump_key) or {}).values():
                if key["type"] == "list":
                    for item in key["value"]:
                        yield case, item


def _unacked_values() -> Iterator[tuple[str, str]]:
    for case, data in _all_vectors():
        for entry in data.get("commands", []):
            command = entry["command"]
            if command[0] == "HSET" and command[1] == "unacked":
                yield case, command[3]
        for key, value in (data.get("db0") or {}).items():
            if key == "unacked":
                for item in value["value"].values():
                    yield case, item


def _is_task(raw: str) -> bool:
    element = json.loads(raw)
    if "task" in element["headers"]:
        return True
    # protocol 1: no headers, everything in a JSON dict body
    body = base64.b64decode(element["body"])
    return not element["headers"] and body.startswith(b'{"task"')


def _stored_results() -> Iterator[tuple[str, str]]:
    for case, data in _all_vectors():
        for entry in data.get("commands", []):
            command = entry["command"]
            if command[0] in ("SETEX", "PUBLISH") and command[1].startswith("celery-task-meta-"):
                yield case, command[-1]
        for key, value in (data.get("db1") or {}).items():
            if key.startswith("celery-task-meta-"):
                yield case, value["value"]
        if isinstance(data.get("message"), dict):  # rpc:// result messages
            yield case, data["message"]["body"]["utf8"]


def _amqp_tasks() -> Iterator[tuple[str, dict[str, Any]]]:
    for case, data in _all_vectors():
        if not case.startswith("amqp_"):
            continue
        candidates = [data] if "properties" in data else data.get("messages", [])
        for message in candidates:
            if "task" in (message.get("properties", {}).get("headers") or {}):
                yield case, message


def _params(items: Iterator[tuple[str, Any]]) -> list[Any]:
    params = []
    seen: dict[str, int] = {}
    for case, item in items:
        seen[case] = seen.get(case, 0) + 1
        params.append(pytest.param((case, item), id=f"{case}-{seen[case]}"))
    return params


_GENERATORS: dict[str, Callable[[], list[Any]]] = {
    "raw_element": lambda: _params(_raw_elements()),
    "unacked_value": lambda: _params(_unacked_values()),
    "task_element": lambda: _params((c, r) for c, r in _raw_elements() if _is_task(r)),
    "stored_result": lambda: _params(_stored_results()),
    "amqp_task": lambda: _params(_amqp_tasks()),
    "event_vector": lambda: _params(
        (case, data) for case, data in _all_vectors() if case.startswith("event_")
    ),
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    for name, generate in _GENERATORS.items():
        if name in metafunc.fixturenames:
            params = generate()
            assert params, f"no vectors found for {name} in {VECTORS_DIR}"
            metafunc.parametrize(name, params)


@pytest.fixture
def vector() -> Callable[[str], dict[str, Any]]:
    """Load a vector file by name: ``vector("redis_delay_add")``."""
    return load_vector


@pytest.fixture
def vectors_dir() -> Path:
    """The directory holding the captured vectors."""
    return VECTORS_DIR
