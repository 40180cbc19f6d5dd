"""Settings: defaults, validation, normalisation and the effective_* resolutions."""

from __future__ import annotations

import dataclasses
import os
import pickle
from datetime import timedelta
from typing import Any

import pytest

from celeriac.config import EMBEDDED_BROKER_URL, Settings
from celeriac.errors import ConfigurationError


def test_defaults_follow_celery_except_where_celeriac_differs() -> None:
    s = Settings()
    assert s.broker_url is None
    assert s.broker_connection_retry is True
    assert s.broker_connection_retry_on_startup is True
    assert s.broker_connection_max_retries == 100
    assert s.broker_connection_timeout == 4.0
    assert s.result_serializer == s.task_serializer == "json"
    assert s.accept_content == ("json",)
    assert s.result_expires == 86400.0
    assert s.task_default_queue == "celery"
    assert s.task_default_exchange_type == "direct"
    assert s.task_protocol == 2
    assert s.task_acks_late is True  # celeriac: no task lost by default
    assert s.task_publish_retry_policy == {
        "max_retries": 3,
        "interval_start": 0,
        "interval_step": 0.2,
        "interval_max": 0.2,
    }
    assert s.task_default_delivery_mode == "persistent"
    assert s.worker_pool == "prefork"
    assert s.worker_prefetch_multiplier is None  # the pool's default: 4, solo 16
    assert s.worker_lease_seconds == 30.0
    assert s.beat_schedule_filename == "celerybeat-schedule"
    assert s.beat_max_loop_interval == 300.0
    assert s.beat_lease_seconds == 15.0
    assert s.enable_utc is True
    assert s.security_digest == "sha256"


def test_settings_are_frozen_and_picklable() -> None:
    s = Settings(broker_url="memory://")
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.broker_url = "redis://"  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(s)) == s


def test_default_mappings_are_not_shared_between_instances() -> None:
    a, b = Settings(), Settings()
    a.beat_schedule["x"] = {"task": "t", "schedule": 1}
    assert b.beat_schedule == {}


@pytest.mark.parametrize(
    ("broker", "backend", "expected"),
    [
        (None, None, EMBEDDED_BROKER_URL),
        ("memory://", None, "memory://"),
        ("sqlite:///tmp/q.db", None, "sqlite:///tmp/q.db"),
        ("redis://localhost:6379/0", None, None),
        ("amqp://guest:guest@localhost//", None, None),
        ("redis://localhost/0", "redis://localhost/1", "redis://localhost/1"),
        (None, "rpc://", "rpc://"),
    ],
)
def test_effective_result_backend(broker: str | None, backend: str | None, expected: Any) -> None:
    s = Settings(broker_url=broker, result_backend=backend)
    assert s.effective_broker_url() == (broker or EMBEDDED_BROKER_URL)
    assert s.effective_result_backend() == expected


def test_celery_url_environment_variables_win_over_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As in Celery: a deployment points an unchanged project at other servers.
    s = Settings(broker_url="redis://127.0.0.1:6379/5", result_backend="redis://127.0.0.1:6379/6")
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://127.0.0.1:6379/9")
    monkeypatch.setenv("CELERY_RESULT_BACKEND", "redis://127.0.0.1:6379/10")
    assert s.effective_broker_url() == "redis://127.0.0.1:6379/9"
    assert s.effective_result_backend() == "redis://127.0.0.1:6379/10"
    monkeypatch.setenv("CELERY_BROKER_URL", "memory://")
    monkeypatch.delenv("CELERY_RESULT_BACKEND")
    assert Settings().effective_result_backend() == "memory://"  # follows the env broker
    monkeypatch.setenv("CELERY_BROKER_URL", "")  # empty means unset, as in Celery
    assert s.effective_broker_url() == "redis://127.0.0.1:6379/5"


def test_legacy_broker_pieces_build_a_url() -> None:
    s = Settings(broker_host="rabbit", broker_port=5672, broker_user="u", broker_password="p")
    assert s.effective_broker_url() == "amqp://u:p@rabbit:5672/"
    s = Settings(broker_transport="redis", broker_host="localhost", broker_vhost="2")
    assert s.effective_broker_url() == "redis://localhost/2"


def test_legacy_database_and_cache_backends_resolve() -> None:
    s = Settings(result_backend="database", database_url="postgresql://localhost/test")
    assert s.effective_result_backend() == "db+postgresql://localhost/test"
    s = Settings(result_backend="cache", cache_backend="memcached://127.0.0.1:11211/")
    assert s.effective_result_backend() == "cache+memcached://127.0.0.1:11211/"


def test_other_effective_values() -> None:
    assert Settings().effective_result_accept_content() == ("json",)
    lists: dict[str, Any] = {
        "accept_content": ["json", "pickle"],
        "result_accept_content": ["json"],
    }
    s = Settings(**lists)
    assert s.effective_result_accept_content() == ("json",)
    assert Settings().effective_worker_concurrency() == (os.cpu_count() or 1)
    assert Settings(worker_concurrency=3).effective_worker_concurrency() == 3


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("result_expires", timedelta(hours=1), 3600.0),
        ("result_expires", 60, 60.0),
        ("task_time_limit", timedelta(minutes=2), 120.0),
        ("task_soft_time_limit", "30", 30.0),
        ("broker_connection_timeout", timedelta(milliseconds=1500), 1.5),
        ("worker_concurrency", "4", 4),
        ("worker_concurrency", 0, None),  # Celery: 0 means one per CPU
        ("task_acks_late", "false", False),
        ("task_always_eager", "yes", True),
        ("accept_content", ["json", "msgpack"], ("json", "msgpack")),
        ("accept_content", "json, yaml", ("json", "yaml")),
        ("imports", "proj.tasks", ("proj.tasks",)),
        ("task_default_delivery_mode", 1, "transient"),
        ("task_default_delivery_mode", 2, "persistent"),
        ("task_default_exchange", None, ""),
        ("worker_pool", "processes", "prefork"),
        ("security_key_password", "pw", b"pw"),
        ("task_default_rate_limit", "10/m", "10/m"),
        ("task_default_rate_limit", 5, 5.0),
        ("broker_use_ssl", {"ssl_cert_reqs": "required"}, {"ssl_cert_reqs": "required"}),
    ],
)
def test_values_are_normalised(name: str, value: Any, expected: Any) -> None:
    assert getattr(Settings(**{name: value}), name) == expected


@pytest.mark.parametrize(
    ("name", "value", "expected_words"),
    [
        ("worker_concurrency", "four", "positive int"),
        ("worker_concurrency", -1, "positive int"),
        ("worker_prefetch_multiplier", 1.5, "int >= 0"),
        ("task_acks_late", "maybe", "a bool"),
        ("broker_url", 5, "a str or None"),
        ("result_expires", "a day", "number >= 0"),
        ("result_expires", -5, "number >= 0"),
        ("task_time_limit", 0, "positive number"),
        ("task_protocol", 3, "1 or 2"),
        ("task_default_priority", 300, "0 to 255"),
        ("worker_pool", "prefrok", "prefork"),
        ("timezone", "Mars/Olympus_Mons", "IANA time zone"),
        ("accept_content", ["json", 3], "list of str"),
        ("beat_schedule", {"every-minute": {"schedule": 60}}, "'task'"),
        ("task_publish_retry_policy", {"max_retry": 3}, "max_retries"),
        ("task_routes", 42, "a dict, a list, a callable"),
        ("broker_transport_options", ["visibility_timeout"], "a mapping"),
        ("task_default_delivery_mode", "durable", "'persistent'"),
    ],
)
def test_ill_typed_values_raise_naming_setting_and_value(
    name: str, value: Any, expected_words: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        Settings(**{name: value})
    message = str(info.value)
    assert message.startswith(f"setting {name!r} must be ")
    assert expected_words in message
    assert repr(value)[:20] in message


def _bad(value: Any) -> Any:
    """Hide an ill-typed value from mypy: these tests pass wrong types on purpose."""
    return value


def test_passwords_in_bad_values_are_masked_in_messages() -> None:
    with pytest.raises(ConfigurationError) as info:
        Settings(broker_use_ssl=_bad("rediss://:hunter2@host:6380/0"))
    assert "hunter2" not in str(info.value)
    assert "rediss://:**@host:6380/0" in str(info.value)


def test_timezone_accepts_zoneinfo_objects() -> None:
    from zoneinfo import ZoneInfo

    zone: Any = ZoneInfo("Europe/Paris")
    assert Settings(timezone=zone).timezone == "Europe/Paris"
