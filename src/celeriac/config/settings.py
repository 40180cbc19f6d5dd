"""The typed, frozen settings of an app: one field per Celery setting that celeriac uses.

Field names are Celery's lowercase (4.0+) names, grouped by prefix; old
uppercase names are translated by :mod:`celeriac.config.aliases`. Defaults are
Celery's unless a field's docstring says otherwise. Every value is checked and
normalised on construction (``timedelta`` -> float seconds, ``"4"`` -> ``4``,
a list of str -> tuple), so ``Settings(worker_concurrency="four")`` raises
:class:`~celeriac.errors.ConfigurationError`.

``Settings`` is immutable: fields cannot be reassigned. Mapping-valued fields
(``beat_schedule``, ``broker_transport_options``, ...) hold the very dict the
user gave, so Celery's ``app.conf.beat_schedule["x"] = {...}`` stays visible.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import Any

from celeriac.config import _validate
from celeriac.config.urls import scheme_of

__all__ = [
    "BROKER_URL_ENV",
    "EMBEDDED_BROKER_URL",
    "RESULT_BACKEND_ENV",
    "SETTING_NAMES",
    "Settings",
    "check_value",
]

#: The broker used when none is configured: one SQLite file in the current directory.
EMBEDDED_BROKER_URL = "sqlite:///celeriac.sqlite"

#: Environment variables that override the configured URLs, as in Celery
#: (a deployment points an unchanged project at another server).
BROKER_URL_ENV = "CELERY_BROKER_URL"
RESULT_BACKEND_ENV = "CELERY_RESULT_BACKEND"

# Brokers that are also result stores, so results work with zero configuration.
_SELF_STORING_SCHEMES = frozenset({"sqlite", "memory"})


def _retry_policy() -> dict[str, Any]:
    return {"max_retries": 3, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}


@dataclass(frozen=True, slots=True)
class Settings:
    """Every setting celeriac acts on, validated; build one with ``Settings(**values)``."""

    # -- general -----------------------------------------------------------------
    timezone: str | None = None
    """IANA zone name for beat schedules and local times; None means UTC."""
    enable_utc: bool = True
    """Dates in messages are UTC (keep True unless talking to very old Celery)."""
    imports: tuple[str, ...] = ()
    """Modules imported by workers at start-up (to register tasks)."""
    include: tuple[str, ...] = ()
    """Like ``imports``, imported after them (``Celery(include=[...])``)."""
    accept_content: tuple[str, ...] = ("json",)
    """Serializers (names or MIME types) accepted; add 'pickle' only if all senders are trusted."""

    # -- broker ------------------------------------------------------------------
    broker_url: str | None = None
    """Broker URL; None means the embedded SQLite broker (see effective_broker_url)."""
    broker_read_url: str | None = None
    """Broker URL for consuming only; None means broker_url."""
    broker_write_url: str | None = None
    """Broker URL for publishing only; None means broker_url."""
    broker_transport: str | None = None
    """Scheme used with the legacy broker_host/port/... settings; default 'amqp'."""
    broker_host: str | None = None
    """Legacy (Celery 2/3): host of the broker when broker_url is not set."""
    broker_port: int | None = None
    """Legacy: port of the broker when broker_url is not set."""
    broker_user: str | None = None
    """Legacy: user name when broker_url is not set."""
    broker_password: str | None = None
    """Legacy: password when broker_url is not set."""
    broker_vhost: str | None = None
    """Legacy: virtual host (or Redis db) when broker_url is not set."""
    broker_transport_options: dict[str, Any] = field(default_factory=dict)
    """Extra transport options (e.g. ``visibility_timeout``, ``queue_order_strategy``)."""
    broker_connection_retry: bool = True
    """Reconnect automatically when the broker connection is lost."""
    broker_connection_retry_on_startup: bool = True
    """Retry the first connection at start-up instead of failing at once."""
    broker_connection_max_retries: int | None = 100
    """Reconnect attempts before giving up; 0 or None retries forever."""
    broker_connection_timeout: float = 4.0
    """Seconds to wait for a broker connection to open."""
    broker_channel_error_retry: bool = False
    """Also retry on channel errors (AMQP), not only connection errors."""
    broker_heartbeat: float | None = 120.0
    """AMQP heartbeat interval in seconds; 0 or None disables it."""
    broker_heartbeat_checkrate: float = 3.0
    """How many times per heartbeat interval the heartbeat is checked."""
    broker_pool_limit: int | None = 10
    """Most broker connections kept open by producers; 0 or None disables the pool."""
    broker_use_ssl: bool | dict[str, Any] = False
    """TLS for the broker: True, or a dict of ssl options (``ssl_cert_reqs``, ...)."""
    broker_login_method: str | None = None
    """AMQP SASL login method (e.g. 'AMQPLAIN', 'EXTERNAL'); None means the client default."""

    # -- results -----------------------------------------------------------------
    result_backend: str | None = None
    """Result store URL; None: the broker if it is sqlite:// or memory://, else no results."""
    result_serializer: str = "json"
    """Serializer of stored results."""
    result_accept_content: tuple[str, ...] | None = None
    """Serializers accepted when reading results; None means accept_content."""
    result_expires: float | None = 86400.0
    """Seconds results are kept (timedelta accepted); None or 0 keeps them forever."""
    result_extended: bool = False
    """Store task name, args, kwargs, worker and queue with each result."""
    result_persistent: bool | None = None
    """rpc:// results survive a broker restart (persistent messages)."""
    result_compression: str | None = None
    """Compression of stored results ('gzip', 'bzip2', 'zlib', ...); None means none."""
    result_backend_transport_options: dict[str, Any] = field(default_factory=dict)
    """Extra options passed to the result backend."""
    result_cache_max: int = -1
    """Results cached client-side; -1 disables the cache."""
    result_chord_join_timeout: float = 3.0
    """Seconds a chord waits to join its header results."""
    result_chord_retry_interval: float = 1.0
    """Seconds between chord unlock retries on backends without an atomic counter."""
    result_chord_ordered: bool = False
    """Keep chord results in header order (Celery: a result_backend_transport_options key)."""
    result_exchange: str | None = None
    """AMQP exchange of rpc:// results; None means the protocol's default."""
    result_exchange_type: str = "direct"
    """Type of result_exchange."""
    result_backend_always_retry: bool = False
    """Retry recoverable result backend errors."""
    result_backend_max_retries: float = float("inf")
    """Most retries when result_backend_always_retry is on."""
    result_backend_base_sleep_between_retries_ms: int = 10
    """Base of the exponential backoff between backend retries, in ms."""
    result_backend_max_sleep_between_retries_ms: int = 10000
    """Cap of the backoff between backend retries, in ms."""
    database_url: str | None = None
    """Legacy SQL URL (CELERY_RESULT_DBURI) used when result_backend is 'database'."""
    cache_backend: str | None = None
    """Legacy memcached URL (CELERY_CACHE_BACKEND) used when result_backend is 'cache'."""
    cache_backend_options: dict[str, Any] = field(default_factory=dict)
    """Options for the memcached client."""

    # -- tasks -------------------------------------------------------------------
    task_serializer: str = "json"
    """Serializer of task messages ('json', 'msgpack', 'yaml', 'pickle')."""
    task_compression: str | None = None
    """Compression of task messages; None means none."""
    task_protocol: int = 2
    """Task message protocol version sent (1 or 2; both are read)."""
    task_default_queue: str = "celery"
    """Queue of tasks without a route."""
    task_default_queue_type: str = "classic"
    """AMQP queue type of declared queues ('classic' or 'quorum')."""
    task_default_exchange: str = ""
    """Exchange of the default queue; '' (Celery's None) names it after task_default_queue."""
    task_default_exchange_type: str = "direct"
    """Type of the default exchange."""
    task_default_routing_key: str | None = None
    """Routing key of the default queue; None means task_default_queue."""
    task_default_priority: int | None = None
    """Priority of messages that set none (0-255)."""
    task_default_delivery_mode: str = "persistent"
    """'persistent' (2) or 'transient' (1) messages."""
    task_default_rate_limit: str | float | None = None
    """Rate limit of every task ('10/s', '100/m', a number per second); None means none."""
    task_queue_max_priority: int | None = None
    """``x-max-priority`` of declared queues; None means no priority queues."""
    task_inherit_parent_priority: bool = False
    """Tasks sent from a task get the parent's priority."""
    task_routes: Any = None
    """Routes: a dict (glob/regex -> queue or options), a list of those or routers, a callable."""
    task_queues: Any = None
    """Queues to declare and consume (``Queue`` objects); None means task_default_queue only."""
    task_create_missing_queues: bool = True
    """Declare queues that routes name but task_queues does not."""
    task_annotations: Any = None
    """Per-task attribute overrides: a dict, an object, or a list of them."""
    task_acks_late: bool = True
    """Ack after the task ran (celeriac's default: no task lost; Celery's is False)."""
    task_acks_on_failure_or_timeout: bool = True
    """With late acks, also ack tasks that failed or timed out (False requeues them)."""
    task_reject_on_worker_lost: bool = False
    """Requeue a task whose worker process died instead of failing it."""
    task_track_started: bool = False
    """Record the STARTED state when a worker begins a task."""
    task_ignore_result: bool = False
    """Do not store results by default."""
    task_store_errors_even_if_ignored: bool = False
    """Store failures even when results are ignored."""
    task_store_eager_result: bool = False
    """Eagerly run tasks store their result in the backend."""
    task_time_limit: float | None = None
    """Hard time limit in seconds: the process running the task is replaced."""
    task_soft_time_limit: float | None = None
    """Soft time limit in seconds: SoftTimeLimitExceeded is raised inside the task."""
    task_always_eager: bool = False
    """Run tasks in the calling process instead of sending them (for tests)."""
    task_eager_propagates: bool = False
    """Eager tasks re-raise their exception in the caller."""
    task_publish_retry: bool = True
    """Retry publishing when the broker connection fails."""
    task_publish_retry_policy: dict[str, Any] = field(default_factory=_retry_policy)
    """Publish retry policy: max_retries, interval_start, interval_step, interval_max."""
    task_send_sent_event: bool = False
    """Send a task-sent event for every published task."""
    task_remote_tracebacks: bool = False
    """Show the worker's traceback when re-raising a task's exception."""
    task_allow_error_cb_on_chord_header: bool = False
    """Link errbacks of a chord to its header tasks too."""

    # -- workers -----------------------------------------------------------------
    worker_concurrency: int | None = None
    """Processes or threads of the pool; None (or 0) means os.cpu_count()."""
    worker_pool: str = "prefork"
    """Pool kind: 'prefork', 'threads', 'solo', 'asyncio' (or 'module:Class')."""
    worker_prefetch_multiplier: int | None = None
    """Messages reserved per pool slot; None means the pool's default: 4 (as
    Celery), 16 for the solo and prefork pools, whose slots would otherwise
    fetch a few messages per broker round trip (prefork keeps the extra ones in
    the parent, at most 4 per child; docs/decisions.md)."""
    worker_max_tasks_per_child: int | None = None
    """Replace a pool process after this many tasks."""
    worker_max_memory_per_child: int | None = None
    """Replace a pool process whose resident memory exceeds this many KiB."""
    worker_lease_seconds: float = 30.0
    """celeriac: seconds a dead worker's messages stay invisible before redelivery."""
    worker_lost_wait: float = 10.0
    """Seconds to wait for a lost process's result before failing with WorkerLostError."""
    worker_proc_alive_timeout: float = 4.0
    """Seconds a new pool process has to report it is up."""
    worker_hijack_root_logger: bool = True
    """The worker replaces the root logger's handlers with its own."""
    worker_log_color: bool | None = None
    """Colour log output; None means when writing to a terminal."""
    worker_log_format: str = "[%(asctime)s: %(levelname)s/%(processName)s] %(message)s"
    """Log format of worker messages."""
    worker_task_log_format: str = (
        "[%(asctime)s: %(levelname)s/%(processName)s] %(task_name)s[%(task_id)s]: %(message)s"
    )
    """Log format of messages logged from tasks."""
    worker_redirect_stdouts: bool = True
    """Redirect print() and stderr of tasks to the logger."""
    worker_redirect_stdouts_level: str = "WARNING"
    """Log level of redirected output."""
    worker_send_task_events: bool = False
    """Send task events (for monitors) by default (``-E``)."""
    worker_enable_remote_control: bool = True
    """Answer remote control and inspect commands."""
    worker_state_db: str | None = None
    """File keeping revoked ids across restarts (``--statedb``)."""
    worker_disable_rate_limits: bool = False
    """Ignore all task rate limits."""
    worker_timer_precision: float = 1.0
    """Longest sleep of the ETA timer, in seconds."""
    worker_cancel_long_running_tasks_on_connection_loss: bool = False
    """Cancel running late-ack tasks when the broker connection is lost (they are redelivered)."""
    worker_deduplicate_successful_tasks: bool = False
    """Skip redelivered late-ack tasks that already succeeded (needs a result backend)."""
    worker_soft_shutdown_timeout: float = 0.0
    """Seconds a cold shutdown waits for running tasks before requeueing them."""
    worker_enable_soft_shutdown_on_idle: bool = False
    """Apply worker_soft_shutdown_timeout even when no task is running."""
    worker_pool_restarts: bool = False
    """Allow the pool_restart remote control command."""

    # -- beat --------------------------------------------------------------------
    beat_schedule: dict[str, Any] = field(default_factory=dict)
    """Periodic tasks: name -> {'task', 'schedule', 'args', 'kwargs', 'options'}."""
    beat_scheduler: Any = None
    """Scheduler class or 'module:Class'; None means celeriac's persistent scheduler."""
    beat_schedule_filename: str = "celerybeat-schedule"
    """File where the default scheduler keeps its state."""
    beat_max_loop_interval: float = 300.0
    """Longest sleep of beat between checks, in seconds."""
    beat_sync_every: int = 0
    """Save the schedule state after this many sent tasks; 0 means on each tick."""
    beat_cron_starting_deadline: int | None = None
    """Seconds after a missed crontab run during which it still runs at start-up."""
    beat_lease_seconds: float = 15.0
    """celeriac: lease of the beat leader lock; another beat takes over after it lapses."""

    # -- events and remote control ------------------------------------------------
    event_serializer: str = "json"
    """Serializer of event messages."""
    event_queue_ttl: float | None = 5.0
    """Seconds an event waits in a monitor's queue (``x-message-ttl``)."""
    event_queue_expires: float | None = 60.0
    """Seconds after which an unused monitor queue is deleted (``x-expires``)."""
    event_queue_prefix: str | None = None
    """Prefix of monitor queue names; None means Celery's."""
    event_exchange: str | None = None
    """Exchange of events; None means Celery's."""
    control_queue_ttl: float | None = 300.0
    """Seconds a remote control command waits in a worker's queue."""
    control_queue_expires: float | None = 10.0
    """Seconds after which an unused control queue is deleted."""
    control_exchange: str = "celery"
    """Name part of the remote control exchanges."""

    # -- message signing -----------------------------------------------------------
    security_key: str | None = None
    """Path to the private key that signs messages (serializer 'auth')."""
    security_key_password: bytes | None = None
    """Password of security_key."""
    security_certificate: str | None = None
    """Path to the X.509 certificate matching security_key."""
    security_cert_store: str | None = None
    """Glob of trusted certificates ('/etc/certs/*.pem')."""
    security_digest: str = "sha256"
    """Digest of message signatures."""

    # -- redis ---------------------------------------------------------------------
    redis_max_connections: int | None = None
    """Most connections in the Redis result backend's pool."""
    redis_socket_timeout: float | None = 5.0
    """Seconds a command of the Redis result backend may take (None: no bound; Celery's
    default is 120). The broker's is broker_transport_options['socket_timeout']."""
    redis_socket_connect_timeout: float | None = 5.0
    """Seconds a connection of the Redis result backend may take to open."""
    redis_retry_on_timeout: bool = False
    """Retry Redis commands that timed out."""
    redis_socket_keepalive: bool = False
    """TCP keepalive on Redis connections."""
    redis_backend_use_ssl: dict[str, Any] | None = None
    """ssl options of a rediss:// result backend."""

    def __post_init__(self) -> None:
        for name, coerce in _COERCERS.items():
            value = getattr(self, name)
            checked = coerce(value)
            if checked is not value:
                object.__setattr__(self, name, checked)

    def effective_broker_url(self) -> str:
        """The broker to use: environment variable ``CELERY_BROKER_URL`` when set (it
        wins over every setting, as in Celery), else broker_url, or one built from
        legacy broker_host & co., or the embedded SQLite broker in the current directory."""
        from_env = os.environ.get(BROKER_URL_ENV)
        if from_env:
            return from_env
        if self.broker_url:
            return self.broker_url
        if self.broker_host:
            auth = ""
            if self.broker_user or self.broker_password:
                auth = f"{self.broker_user or ''}:{self.broker_password or ''}@"
            port = f":{self.broker_port}" if self.broker_port else ""
            vhost = (self.broker_vhost or "").lstrip("/")
            return f"{self.broker_transport or 'amqp'}://{auth}{self.broker_host}{port}/{vhost}"
        return EMBEDDED_BROKER_URL

    def effective_result_backend(self) -> str | None:
        """The result store URL, or None when results are disabled.

        Environment variable ``CELERY_RESULT_BACKEND`` when set (as in Celery, it
        wins over every setting); else result_backend when set (legacy 'database'
        and 'cache' resolve through database_url and cache_backend); otherwise the
        broker itself when it can store results (sqlite://, memory://); otherwise None.
        """
        backend = os.environ.get(RESULT_BACKEND_ENV) or self.result_backend
        if backend == "database" and self.database_url:
            return f"db+{self.database_url}"
        if backend == "cache" and self.cache_backend:
            return f"cache+{self.cache_backend}"
        if backend:
            return backend
        broker = self.effective_broker_url()
        return broker if scheme_of(broker) in _SELF_STORING_SCHEMES else None

    def effective_result_accept_content(self) -> tuple[str, ...]:
        """Serializers accepted for results: result_accept_content or accept_content."""
        if self.result_accept_content is None:
            return self.accept_content
        return self.result_accept_content

    def effective_worker_concurrency(self) -> int:
        """Pool size: worker_concurrency, or the number of CPUs."""
        return self.worker_concurrency or os.cpu_count() or 1


_COERCERS = _validate.build_coercers(Settings)

#: The names of all settings that :class:`Settings` holds.
SETTING_NAMES: frozenset[str] = frozenset(f.name for f in fields(Settings))


def check_value(name: str, value: Any, given_as: str | None = None) -> Any:
    """Validate and normalise ``value`` for setting ``name``.

    Raises :class:`~celeriac.errors.ConfigurationError` naming the setting
    (and ``given_as``, the name the user wrote, when different). Names that
    are not fields of :class:`Settings` (Celery settings celeriac ignores)
    pass unchanged.
    """
    coerce = _COERCERS.get(name)
    return value if coerce is None else coerce(value, given_as)
