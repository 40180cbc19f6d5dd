"""Celery's old uppercase setting names, mapped to the lowercase names (Celery 4.0+).

:data:`ALIASES` is the one table of renames. It lists the names Celery 4/5
still accept (``CELERY_*``, ``CELERYD_*``, ``CELERYBEAT_*``, ``BROKER_*``);
targets are fields of :class:`~celeriac.config.settings.Settings` or names in
:data:`~celeriac.config.ignored.IGNORED_SETTINGS`. Besides this table the
loaders accept, for every setting ``x``, the uppercase ``X`` (Celery's rule for
namespaces without an old prefix, such as ``CONTROL_QUEUE_TTL``) and the
namespaced ``<NAMESPACE>_X`` form used with ``config_from_object(...,
namespace='CELERY')`` (Django's ``CELERY_BROKER_URL``); see
:func:`namespaced_aliases`.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["ALIASES", "namespaced_aliases"]

#: Old uppercase name -> new lowercase name.
ALIASES: dict[str, str] = {
    # general
    "CELERY_ACCEPT_CONTENT": "accept_content",
    "CELERY_ENABLE_UTC": "enable_utc",
    "CELERY_IMPORTS": "imports",
    "CELERY_INCLUDE": "include",
    "CELERY_TIMEZONE": "timezone",
    # broker (Celery's old names are the new ones in upper case)
    "BROKER_URL": "broker_url",
    "BROKER_READ_URL": "broker_read_url",
    "BROKER_WRITE_URL": "broker_write_url",
    "BROKER_TRANSPORT": "broker_transport",
    "BROKER_BACKEND": "broker_transport",  # Celery 2 name of BROKER_TRANSPORT
    "BROKER_HOST": "broker_host",
    "BROKER_PORT": "broker_port",
    "BROKER_USER": "broker_user",
    "BROKER_PASSWORD": "broker_password",
    "BROKER_VHOST": "broker_vhost",
    "BROKER_TRANSPORT_OPTIONS": "broker_transport_options",
    "BROKER_CONNECTION_RETRY": "broker_connection_retry",
    "BROKER_CONNECTION_RETRY_ON_STARTUP": "broker_connection_retry_on_startup",
    "BROKER_CONNECTION_MAX_RETRIES": "broker_connection_max_retries",
    "BROKER_CONNECTION_TIMEOUT": "broker_connection_timeout",
    "BROKER_CHANNEL_ERROR_RETRY": "broker_channel_error_retry",
    "BROKER_FAILOVER_STRATEGY": "broker_failover_strategy",
    "BROKER_HEARTBEAT": "broker_heartbeat",
    "BROKER_HEARTBEAT_CHECKRATE": "broker_heartbeat_checkrate",
    "BROKER_LOGIN_METHOD": "broker_login_method",
    "BROKER_POOL_LIMIT": "broker_pool_limit",
    "BROKER_USE_SSL": "broker_use_ssl",
    # results
    "CELERY_RESULT_BACKEND": "result_backend",
    "CELERY_RESULT_SERIALIZER": "result_serializer",
    "CELERY_TASK_RESULT_EXPIRES": "result_expires",
    "CELERY_RESULT_EXTENDED": "result_extended",
    "CELERY_RESULT_PERSISTENT": "result_persistent",
    "CELERY_RESULT_COMPRESSION": "result_compression",
    "CELERY_RESULT_EXCHANGE": "result_exchange",
    "CELERY_RESULT_EXCHANGE_TYPE": "result_exchange_type",
    "CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS": "result_backend_transport_options",
    "CELERY_MAX_CACHED_RESULTS": "result_cache_max",
    "CELERY_RESULT_CHORD_JOIN_TIMEOUT": "result_chord_join_timeout",
    "CELERY_RESULT_CHORD_RETRY_INTERVAL": "result_chord_retry_interval",
    "CELERY_RESULT_BACKEND_ALWAYS_RETRY": "result_backend_always_retry",
    "CELERY_RESULT_BACKEND_MAX_RETRIES": "result_backend_max_retries",
    "CELERY_RESULT_BACKEND_BASE_SLEEP_BETWEEN_RETRIES_MS": (
        "result_backend_base_sleep_between_retries_ms"
    ),
    "CELERY_RESULT_BACKEND_MAX_SLEEP_BETWEEN_RETRIES_MS": (
        "result_backend_max_sleep_between_retries_ms"
    ),
    "CELERY_RESULT_BACKEND_THREAD_SAFE": "result_backend_thread_safe",
    "CELERY_RESULT_DBURI": "database_url",
    "CELERY_RESULT_ENGINE_OPTIONS": "database_engine_options",
    "CELERY_RESULT_DB_SHORT_LIVED_SESSIONS": "database_short_lived_sessions",
    "CELERY_RESULT_DB_TABLENAMES": "database_table_names",
    "CELERY_CACHE_BACKEND": "cache_backend",
    "CELERY_CACHE_BACKEND_OPTIONS": "cache_backend_options",
    "CELERY_MONGODB_BACKEND_SETTINGS": "mongodb_backend_settings",
    "CELERY_COUCHBASE_BACKEND_SETTINGS": "couchbase_backend_settings",
    "CELERY_ARANGODB_BACKEND_SETTINGS": "arangodb_backend_settings",
    "CELERY_ELASTICSEARCH_RETRY_ON_TIMEOUT": "elasticsearch_retry_on_timeout",
    "CELERY_ELASTICSEARCH_MAX_RETRIES": "elasticsearch_max_retries",
    "CELERY_ELASTICSEARCH_TIMEOUT": "elasticsearch_timeout",
    "CELERY_ELASTICSEARCH_SAVE_META_AS_TEXT": "elasticsearch_save_meta_as_text",
    # redis result backend
    "CELERY_REDIS_HOST": "redis_host",
    "CELERY_REDIS_PORT": "redis_port",
    "CELERY_REDIS_DB": "redis_db",
    "CELERY_REDIS_USERNAME": "redis_username",
    "CELERY_REDIS_PASSWORD": "redis_password",
    "CELERY_REDIS_MAX_CONNECTIONS": "redis_max_connections",
    "CELERY_REDIS_SOCKET_TIMEOUT": "redis_socket_timeout",
    "CELERY_REDIS_SOCKET_CONNECT_TIMEOUT": "redis_socket_connect_timeout",
    "CELERY_REDIS_RETRY_ON_TIMEOUT": "redis_retry_on_timeout",
    "CELERY_REDIS_SOCKET_KEEPALIVE": "redis_socket_keepalive",
    "CELERY_REDIS_BACKEND_USE_SSL": "redis_backend_use_ssl",
    "CELERY_REDIS_BACKEND_HEALTH_CHECK_INTERVAL": "redis_backend_health_check_interval",
    # tasks
    "CELERY_TASK_SERIALIZER": "task_serializer",
    "CELERY_MESSAGE_COMPRESSION": "task_compression",
    "CELERY_TASK_PROTOCOL": "task_protocol",
    "CELERY_DEFAULT_QUEUE": "task_default_queue",
    "CELERY_DEFAULT_QUEUE_TYPE": "task_default_queue_type",
    "CELERY_DEFAULT_EXCHANGE": "task_default_exchange",
    "CELERY_DEFAULT_EXCHANGE_TYPE": "task_default_exchange_type",
    "CELERY_DEFAULT_ROUTING_KEY": "task_default_routing_key",
    "CELERY_DEFAULT_PRIORITY": "task_default_priority",
    "CELERY_DEFAULT_DELIVERY_MODE": "task_default_delivery_mode",
    "CELERY_DEFAULT_RATE_LIMIT": "task_default_rate_limit",
    "CELERY_QUEUE_MAX_PRIORITY": "task_queue_max_priority",
    "CELERY_INHERIT_PARENT_PRIORITY": "task_inherit_parent_priority",
    "CELERY_ROUTES": "task_routes",
    "CELERY_QUEUES": "task_queues",
    "CELERY_CREATE_MISSING_QUEUES": "task_create_missing_queues",
    "CELERY_ANNOTATIONS": "task_annotations",
    "CELERY_ACKS_LATE": "task_acks_late",
    "CELERY_ACKS_ON_FAILURE_OR_TIMEOUT": "task_acks_on_failure_or_timeout",
    "CELERY_REJECT_ON_WORKER_LOST": "task_reject_on_worker_lost",
    "CELERY_TRACK_STARTED": "task_track_started",
    "CELERY_IGNORE_RESULT": "task_ignore_result",
    "CELERY_STORE_ERRORS_EVEN_IF_IGNORED": "task_store_errors_even_if_ignored",
    "CELERY_STORE_EAGER_RESULT": "task_store_eager_result",
    "CELERYD_TASK_TIME_LIMIT": "task_time_limit",
    "CELERYD_TASK_SOFT_TIME_LIMIT": "task_soft_time_limit",
    "CELERY_ALWAYS_EAGER": "task_always_eager",
    "CELERY_EAGER_PROPAGATES_EXCEPTIONS": "task_eager_propagates",
    "CELERY_TASK_PUBLISH_RETRY": "task_publish_retry",
    "CELERY_TASK_PUBLISH_RETRY_POLICY": "task_publish_retry_policy",
    "CELERY_SEND_TASK_SENT_EVENT": "task_send_sent_event",
    "CELERY_REMOTE_TRACEBACKS": "task_remote_tracebacks",
    "CELERY_ALLOW_ERROR_CB_ON_CHORD_HEADER": "task_allow_error_cb_on_chord_header",
    # workers
    "CELERYD_CONCURRENCY": "worker_concurrency",
    "CELERYD_POOL": "worker_pool",
    "CELERYD_PREFETCH_MULTIPLIER": "worker_prefetch_multiplier",
    "CELERYD_MAX_TASKS_PER_CHILD": "worker_max_tasks_per_child",
    "CELERYD_MAX_MEMORY_PER_CHILD": "worker_max_memory_per_child",
    "CELERYD_WORKER_LOST_WAIT": "worker_lost_wait",
    "CELERYD_PROC_ALIVE_TIMEOUT": "worker_proc_alive_timeout",
    "CELERYD_HIJACK_ROOT_LOGGER": "worker_hijack_root_logger",
    "CELERYD_LOG_COLOR": "worker_log_color",
    "CELERYD_LOG_FORMAT": "worker_log_format",
    "CELERYD_TASK_LOG_FORMAT": "worker_task_log_format",
    "CELERY_REDIRECT_STDOUTS": "worker_redirect_stdouts",
    "CELERY_REDIRECT_STDOUTS_LEVEL": "worker_redirect_stdouts_level",
    "CELERY_SEND_EVENTS": "worker_send_task_events",
    "CELERY_ENABLE_REMOTE_CONTROL": "worker_enable_remote_control",
    "CELERYD_STATE_DB": "worker_state_db",
    "CELERY_DISABLE_RATE_LIMITS": "worker_disable_rate_limits",
    "CELERYD_TIMER_PRECISION": "worker_timer_precision",
    "CELERYD_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS": (
        "worker_cancel_long_running_tasks_on_connection_loss"
    ),
    "CELERYD_DEDUPLICATE_SUCCESSFUL_TASKS": "worker_deduplicate_successful_tasks",
    "CELERYD_SOFT_SHUTDOWN_TIMEOUT": "worker_soft_shutdown_timeout",
    "CELERYD_ENABLE_SOFT_SHUTDOWN_ON_IDLE": "worker_enable_soft_shutdown_on_idle",
    "CELERYD_POOL_RESTARTS": "worker_pool_restarts",
    "CELERY_WORKER_DIRECT": "worker_direct",
    "CELERYD_AGENT": "worker_agent",
    "CELERYD_AUTOSCALER": "worker_autoscaler",
    "CELERYD_CONSUMER": "worker_consumer",
    "CELERYD_TIMER": "worker_timer",
    "CELERYD_POOL_PUTLOCKS": "worker_pool_putlocks",
    "CELERYD_ENABLE_PREFETCH_COUNT_REDUCTION": "worker_enable_prefetch_count_reduction",
    "CELERYD_DETECT_QUORUM_QUEUES": "worker_detect_quorum_queues",
    # beat
    "CELERYBEAT_SCHEDULE": "beat_schedule",
    "CELERYBEAT_SCHEDULER": "beat_scheduler",
    "CELERYBEAT_SCHEDULE_FILENAME": "beat_schedule_filename",
    "CELERYBEAT_MAX_LOOP_INTERVAL": "beat_max_loop_interval",
    "CELERYBEAT_SYNC_EVERY": "beat_sync_every",
    "CELERYBEAT_CRON_STARTING_DEADLINE": "beat_cron_starting_deadline",
    # events
    "CELERY_EVENT_SERIALIZER": "event_serializer",
    "CELERY_EVENT_QUEUE_TTL": "event_queue_ttl",
    "CELERY_EVENT_QUEUE_EXPIRES": "event_queue_expires",
    "CELERY_EVENT_QUEUE_PREFIX": "event_queue_prefix",
    "CELERY_EVENT_EXCHANGE": "event_exchange",
    # message signing
    "CELERY_SECURITY_KEY": "security_key",
    "CELERY_SECURITY_KEY_PASSWORD": "security_key_password",
    "CELERY_SECURITY_CERTIFICATE": "security_certificate",
    "CELERY_SECURITY_CERT_STORE": "security_cert_store",
    "CELERY_SECURITY_DIGEST": "security_digest",
}


def namespaced_aliases(names: Iterable[str], namespace: str = "CELERY") -> dict[str, str]:
    """``{'<NAMESPACE>_<NAME>': name}`` for each of ``names``.

    This is how settings are spelled in a Django ``settings.py`` read with
    ``config_from_object('django.conf:settings', namespace='CELERY')``:
    ``CELERY_BROKER_URL``, ``CELERY_TASK_ACKS_LATE``, ``CELERY_BEAT_SCHEDULE``.
    """
    prefix = f"{namespace.upper().rstrip('_')}_"
    return {f"{prefix}{name.upper()}": name for name in names}
