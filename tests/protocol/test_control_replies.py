"""Remote-control reply bodies and the reply queue, against Celery's captures."""

from __future__ import annotations

import asyncio
from typing import Any

from celeriac.control.commands import ping, revoke
from celeriac.protocol import keys
from celeriac.protocol.control import (
    CONTROL_COMMANDS,
    INSPECT_COMMANDS,
    error,
    is_error,
    reply_queue,
    safe_conf,
    task_info,
)
from celeriac.protocol.kombu_json import decode_element
from celeriac.protocol.pidbox import parse_control_reply, parse_control_request


def _commands(case: str, vector: Any) -> list[list[str]]:
    return [c["command"] for c in vector(case)["commands"]]


def _replies(case: str, vector: Any) -> list[dict[str, Any]]:
    return [parse_control_reply(decode_element(c[2]), {"json"}).replies
            for c in _commands(case, vector)
            if c[0] == "LPUSH" and c[1].endswith(".reply.celery.pidbox")]


def test_reply_queue_is_the_list_and_binding_celery_uses(vector: Any) -> None:
    commands = _commands("redis_worker_ping", vector)
    request = next(parse_control_request(decode_element(c[2]), {"json"})
                   for c in commands if c[0] == "PUBLISH")
    assert request.reply_to is not None
    queue = reply_queue(request.reply_to)
    assert ["LLEN", queue.name] in commands
    sadd = next(c for c in commands if c[0] == "SADD" and c[1].endswith("reply.celery.pidbox"))
    assert sadd[1] == keys.binding_set_key(queue.exchange)
    assert sadd[2] == keys.binding_member(queue.routing_key, "", queue.name)
    lpush = [c for c in commands if c[0] == "LPUSH"]
    assert lpush and all(c[1] == queue.name for c in lpush)


def test_ping_reply_body_is_celerys(vector: Any) -> None:
    replies = _replies("redis_worker_ping", vector)
    ours = asyncio.run(ping(None, {}))  # type: ignore[arg-type]
    assert replies
    for reply in replies:  # one per worker of the capture
        assert list(reply.values()) == [ours]


def test_revoke_reply_text_is_celerys(vector: Any) -> None:
    replies = _replies("redis_worker_revoke_reply", vector)
    assert replies
    args = {"task_id": "00000000-0000-0000-0000-000000000000", "terminate": False,
            "signal": "SIGTERM"}
    ours = asyncio.run(revoke(None, args))  # type: ignore[arg-type]
    for reply in replies:
        assert list(reply.values()) == [ours]


def test_ok_error_and_command_lists() -> None:
    assert is_error(error("x")) and not is_error({"ok": "pong"}) and not is_error([])
    assert "ping" in INSPECT_COMMANDS and "rate_limit" in CONTROL_COMMANDS
    assert not set(INSPECT_COMMANDS) & set(CONTROL_COMMANDS)


def test_task_info_has_celerys_request_info_keys() -> None:
    info = task_info(task_id="i", name="t", args=[1], kwargs={}, hostname="w@h",
                     time_start=1.0, acknowledged=False, delivery_info={"exchange": ""},
                     worker_pid=3)
    assert set(info) == {"id", "name", "args", "kwargs", "type", "hostname", "time_start",
                         "acknowledged", "delivery_info", "worker_pid"}


def test_safe_conf_masks_passwords_and_drops_secrets() -> None:
    shown = safe_conf({"broker_url": "redis://:hunter2@h:6379/0",
                       "result_backend": "amqp://u:pw@h//", "security_key": "PRIVATE",
                       "task_routes": object(), "worker_concurrency": 4})
    assert "hunter2" not in str(shown) and "pw@" not in str(shown)
    assert shown["broker_url"] == "redis://:********@h:6379/0"
    assert "security_key" not in shown and shown["worker_concurrency"] == 4
    assert isinstance(shown["task_routes"], str)
