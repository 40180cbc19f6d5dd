"""The old-name table and the spellings the loaders accept."""

from __future__ import annotations

import pytest

from celeriac.config import (
    ALIASES,
    IGNORED_SETTINGS,
    KNOWN_NAMES,
    SETTING_NAMES,
    canonical_name,
    namespaced_aliases,
)

# Renames users meet most, as documented in Celery's 4.0 migration table.
EXPECTED = {
    "BROKER_URL": "broker_url",
    "BROKER_TRANSPORT_OPTIONS": "broker_transport_options",
    "CELERY_RESULT_BACKEND": "result_backend",
    "CELERY_TASK_SERIALIZER": "task_serializer",
    "CELERY_RESULT_SERIALIZER": "result_serializer",
    "CELERY_ACCEPT_CONTENT": "accept_content",
    "CELERY_TIMEZONE": "timezone",
    "CELERY_ENABLE_UTC": "enable_utc",
    "CELERY_ROUTES": "task_routes",
    "CELERY_QUEUES": "task_queues",
    "CELERYBEAT_SCHEDULE": "beat_schedule",
    "CELERY_DEFAULT_QUEUE": "task_default_queue",
    "CELERY_DEFAULT_EXCHANGE": "task_default_exchange",
    "CELERY_DEFAULT_EXCHANGE_TYPE": "task_default_exchange_type",
    "CELERY_DEFAULT_ROUTING_KEY": "task_default_routing_key",
    "CELERYD_CONCURRENCY": "worker_concurrency",
    "CELERYD_PREFETCH_MULTIPLIER": "worker_prefetch_multiplier",
    "CELERYD_MAX_TASKS_PER_CHILD": "worker_max_tasks_per_child",
    "CELERY_TASK_RESULT_EXPIRES": "result_expires",
    "CELERY_ALWAYS_EAGER": "task_always_eager",
    "CELERY_EAGER_PROPAGATES_EXCEPTIONS": "task_eager_propagates",
    "CELERY_ACKS_LATE": "task_acks_late",
    "CELERY_IGNORE_RESULT": "task_ignore_result",
    "CELERY_TRACK_STARTED": "task_track_started",
    "CELERYD_TASK_TIME_LIMIT": "task_time_limit",
    "CELERYD_TASK_SOFT_TIME_LIMIT": "task_soft_time_limit",
    "CELERY_IMPORTS": "imports",
    "CELERY_INCLUDE": "include",
    "CELERY_ANNOTATIONS": "task_annotations",
    "CELERY_SEND_TASK_SENT_EVENT": "task_send_sent_event",
    "CELERY_MESSAGE_COMPRESSION": "task_compression",
    "CELERY_SEND_EVENTS": "worker_send_task_events",
    "CELERY_DISABLE_RATE_LIMITS": "worker_disable_rate_limits",
    "CELERY_MAX_CACHED_RESULTS": "result_cache_max",
    "CELERY_RESULT_DBURI": "database_url",
    "CELERY_WORKER_DIRECT": "worker_direct",
}


@pytest.mark.parametrize(("old", "new"), sorted(EXPECTED.items()))
def test_old_names_map_to_new_names(old: str, new: str) -> None:
    assert ALIASES[old] == new
    assert canonical_name(old) == new


def test_every_alias_targets_a_known_setting() -> None:
    assert set(ALIASES.values()) <= KNOWN_NAMES
    assert all(old == old.upper() for old in ALIASES)


def test_ignored_settings_do_not_shadow_real_ones() -> None:
    assert not SETTING_NAMES & set(IGNORED_SETTINGS)


def test_namespaced_names_agree_with_the_old_table() -> None:
    # CELERY_RESULT_BACKEND is both an old name and a namespaced new name: same target.
    namespaced = namespaced_aliases(KNOWN_NAMES, "CELERY")
    overlap = set(namespaced) & set(ALIASES)
    assert "CELERY_RESULT_BACKEND" in overlap
    assert all(namespaced[key] == ALIASES[key] for key in overlap)


@pytest.mark.parametrize(
    ("key", "namespace", "expected"),
    [
        ("broker_url", None, "broker_url"),
        ("BROKER_URL", None, "broker_url"),
        ("CONTROL_QUEUE_TTL", None, "control_queue_ttl"),  # uppercased new name
        ("CELERY_TASK_ACKS_LATE", None, "task_acks_late"),  # Django style
        ("CELERY_TASK_ACKS_LATE", "CELERY", "task_acks_late"),
        ("MYAPP_BROKER_URL", "MYAPP", "broker_url"),
        ("CELERY_ALWAYS_EAGER", "CELERY", "task_always_eager"),  # old name under a namespace
        ("Broker_Url", None, None),
        ("broker_ulr", None, None),
        ("DEBUG", "CELERY", None),
    ],
)
def test_canonical_name(key: str, namespace: str | None, expected: str | None) -> None:
    assert canonical_name(key, namespace) == expected
