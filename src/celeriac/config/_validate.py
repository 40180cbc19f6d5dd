"""Checking and normalising setting values (private to :mod:`celeriac.config`).

Each field of :class:`~celeriac.config.settings.Settings` gets a
:class:`Coercer` built from its type annotation (``bool``, ``int``, ``float``,
``str``, ``bytes``, ``tuple[str, ...]``, ``dict[str, Any]``, ``Any`` and their
``| None`` unions) plus an optional :class:`Rule` from :data:`RULES` for value
limits (positive, 0-255, one of ...). A coercer first accepts values of the
exact type, then converts text (``"4"``, ``"true"``) because settings also come
from environment variables and ini-like files. Failures raise
:class:`~celeriac.errors.ConfigurationError` naming the setting, the value and
what was expected.
"""

from __future__ import annotations

import os
import reprlib
import ssl
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from celeriac.config.urls import mask_url
from celeriac.errors import ConfigurationError

__all__ = [
    "BROKER_SSL_EXPECTED",
    "RULES",
    "Coercer",
    "Rule",
    "build_coercers",
    "describe_value",
    "ssl_options",
]


class _NoMatch(Exception):
    """Internal signal: this kind (or rule) does not take the value."""


@dataclass(frozen=True, slots=True)
class _Kind:
    expected: str
    strict: Callable[[Any], Any]  # exact types only (normalising containers)
    lenient: Callable[[Any], Any]  # conversions, mostly from text


def _fail(_value: Any) -> Any:
    raise _NoMatch


_TRUE = frozenset({"1", "true", "yes", "y", "on", "t"})
_FALSE = frozenset({"0", "false", "no", "n", "off", "f", ""})


def _bool_strict(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    raise _NoMatch


def _bool_lenient(v: Any) -> bool:
    if isinstance(v, str) and v.strip().lower() in _TRUE | _FALSE:
        return v.strip().lower() in _TRUE
    if isinstance(v, int) and v in (0, 1):
        return bool(v)
    raise _NoMatch


def _int_strict(v: Any) -> int:
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    raise _NoMatch


def _int_lenient(v: Any) -> int:
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, str):
        try:
            return int(v.strip())
        except ValueError:
            raise _NoMatch from None
    raise _NoMatch


def _float_strict(v: Any) -> float:
    if isinstance(v, timedelta):
        return v.total_seconds()
    if isinstance(v, int | float) and not isinstance(v, bool):
        return float(v)
    raise _NoMatch


def _float_lenient(v: Any) -> float:
    if isinstance(v, str):
        try:
            return float(v.strip())
        except ValueError:
            raise _NoMatch from None
    raise _NoMatch


def _str_strict(v: Any) -> str:
    if isinstance(v, str):
        return v
    raise _NoMatch


def _bytes_strict(v: Any) -> bytes:
    if isinstance(v, bytes):
        return v
    raise _NoMatch


def _bytes_lenient(v: Any) -> bytes:
    if isinstance(v, str):
        return v.encode()
    raise _NoMatch


def _str_tuple_strict(v: Any) -> tuple[str, ...]:
    # A comma-separated string is how lists arrive from env vars and the CLI.
    if isinstance(v, str):
        return tuple(part.strip() for part in v.split(",") if part.strip())
    if isinstance(v, list | tuple | set | frozenset) and all(isinstance(x, str) for x in v):
        return tuple(v)
    raise _NoMatch


def _dict_strict(v: Any) -> dict[str, Any]:
    # A dict is kept as the same object so that app.conf.beat_schedule["x"] = ...
    # (which Celery allows) stays visible through every view of the settings.
    if isinstance(v, dict):
        return v
    if isinstance(v, Mapping):
        return dict(v)
    raise _NoMatch


def _any(v: Any) -> Any:
    return v


_BOOL = _Kind("a bool", _bool_strict, _bool_lenient)
_INT = _Kind("an int", _int_strict, _int_lenient)
_FLOAT = _Kind("a number of seconds (int, float or timedelta)", _float_strict, _float_lenient)
_STR = _Kind("a str", _str_strict, _fail)
_BYTES = _Kind("bytes", _bytes_strict, _bytes_lenient)
_STR_TUPLE = _Kind("a list of str", _str_tuple_strict, _fail)
_DICT = _Kind("a mapping", _dict_strict, _fail)
_ANY = _Kind("anything", _any, _fail)


def _kind_of(hint: Any) -> _Kind:
    origin = typing.get_origin(hint)
    if hint is Any:
        return _ANY
    if origin is tuple:
        return _STR_TUPLE
    if origin is dict or hint is dict:
        return _DICT
    simple = {bool: _BOOL, int: _INT, float: _FLOAT, str: _STR, bytes: _BYTES}
    if hint in simple:
        return simple[hint]
    raise TypeError(f"no settings coercion for type {hint!r}")


@dataclass(frozen=True, slots=True)
class Rule:
    """A value limit on top of a setting's type.

    ``check`` returns the (possibly normalised) value or raises ``ValueError``.
    With ``raw=True`` it receives the value as given (``None`` included) and
    replaces the type conversion; otherwise it runs after conversion on values
    that are not ``None``. ``expected`` is the phrase used in error messages.
    """

    expected: str
    check: Callable[[Any], Any]
    raw: bool = False


def describe_value(name: str, value: Any) -> str:
    """``repr`` of ``value`` for an error message, shortened and with secrets hidden."""
    if isinstance(value, str | bytes) and any(w in name for w in ("password", "secret")):
        return "<hidden>"
    if isinstance(value, str) and "://" in value:
        return repr(mask_url(value))
    return reprlib.repr(value)


@dataclass(frozen=True, slots=True)
class Coercer:
    """Checks and normalises values of one setting; raises ConfigurationError."""

    name: str
    kinds: tuple[_Kind, ...]
    nullable: bool
    rule: Rule | None = None

    @property
    def expected(self) -> str:
        """What this setting takes, in words ("a positive int or None")."""
        if self.rule is not None:
            return self.rule.expected
        words = " or ".join(k.expected for k in self.kinds)
        return f"{words} or None" if self.nullable else words

    def __call__(self, value: Any, given_as: str | None = None) -> Any:
        try:
            return self._coerce(value)
        except (_NoMatch, ValueError, TypeError):
            pass
        label = repr(self.name)
        if given_as is not None and given_as != self.name:
            label += f" (given as {given_as!r})"
        shown = describe_value(self.name, value)
        raise ConfigurationError(f"setting {label} must be {self.expected}, got {shown}")

    def _coerce(self, value: Any) -> Any:
        rule = self.rule
        if rule is not None and rule.raw:
            return rule.check(value)
        if value is None:
            if self.nullable:
                return None
            raise _NoMatch
        for step in ("strict", "lenient"):
            for kind in self.kinds:
                try:
                    converted = getattr(kind, step)(value)
                except _NoMatch:
                    continue
                return converted if rule is None else rule.check(converted)
        raise _NoMatch


def _split_hint(hint: Any) -> tuple[tuple[_Kind, ...], bool]:
    origin = typing.get_origin(hint)
    if origin is types.UnionType or origin is typing.Union:
        members = typing.get_args(hint)
        kinds = tuple(_kind_of(m) for m in members if m is not type(None))
        return kinds, type(None) in members
    kind = _kind_of(hint)
    return (kind,), kind is _ANY


def build_coercers(cls: type) -> dict[str, Coercer]:
    """One :class:`Coercer` per dataclass field of ``cls``, from its annotations."""
    hints = typing.get_type_hints(cls)
    out: dict[str, Coercer] = {}
    for f in fields(cls):
        kinds, nullable = _split_hint(hints[f.name])
        out[f.name] = Coercer(f.name, kinds, nullable, RULES.get(f.name))
    return out


# -- rules ---------------------------------------------------------------------


def _limit(test: Callable[[Any], bool]) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if not test(value):
            raise ValueError(value)
        return value

    return check


def _concurrency(value: int) -> int | None:
    if value < 0:
        raise ValueError(value)
    return value or None  # Celery treats 0 as "one per CPU", like None


_POOLS = ("prefork", "threads", "solo", "asyncio", "eventlet", "gevent", "processes")


def _pool(value: str) -> str:
    if value == "processes":  # Celery's old name of the prefork pool
        return "prefork"
    # "package.module:Class" names a custom pool class, as in Celery.
    if value in _POOLS or ":" in value:
        return value
    raise ValueError(value)


def _delivery_mode(value: Any) -> str:
    modes: dict[Any, str] = {1: "transient", 2: "persistent"}
    modes.update(transient="transient", persistent="persistent")
    if isinstance(value, bool) or value not in modes:
        raise ValueError(value)
    return modes[value]


def _exchange(value: Any) -> str:
    if value is None:  # Celery's None: named after task_default_queue
        return ""
    if isinstance(value, str):
        return value
    raise ValueError(value)


def _timezone(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, tzinfo):  # zoneinfo (.key), pytz (.zone) or a fixed zone
        value = getattr(value, "key", None) or getattr(value, "zone", None) or value.tzname(None)
    if not isinstance(value, str):
        raise ValueError(value)
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(value) from None
    return value


def _routes(value: Any) -> Any:
    # Passed through unchanged: the router interprets dicts, lists and callables.
    if value is None or isinstance(value, Mapping | list | tuple | str) or callable(value):
        return value
    raise ValueError(value)


def _queues(value: Any) -> Any:
    # Celery 3 allowed a dict {name: options}; Celery 4+ a list of Queue objects.
    if value is None or isinstance(value, Mapping | list | tuple | set | frozenset):
        return value
    raise ValueError(value)


def _schedule(value: Any) -> dict[str, Any]:
    table = _dict_strict(value)
    for entry in table.values():
        if not isinstance(entry, Mapping) or "task" not in entry or "schedule" not in entry:
            raise ValueError(entry)
    return table


_RETRY_POLICY_KEYS = frozenset(
    {"max_retries", "interval_start", "interval_step", "interval_max", "retry_errors"}
)


def _retry_policy(value: Any) -> dict[str, Any]:
    policy = _dict_strict(value)
    if not set(policy) <= _RETRY_POLICY_KEYS:
        raise ValueError(value)
    return policy


def _scheduler(value: Any) -> Any:
    if value is None or isinstance(value, str | type):
        return value
    raise ValueError(value)


_SSL_KEYS = ("keyfile", "certfile", "ca_certs", "cert_reqs", "server_hostname")
_CERT_REQS = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL,
              "required": ssl.CERT_REQUIRED}
BROKER_SSL_EXPECTED = (
    "True, False or a dict with keys among keyfile, certfile, ca_certs, server_hostname and "
    "cert_reqs (ssl.CERT_NONE, ssl.CERT_OPTIONAL or ssl.CERT_REQUIRED); the ssl_ spellings "
    "(ssl_ca_certs, ssl_cert_reqs, ...) work too")


def _cert_reqs(value: Any) -> ssl.VerifyMode:
    if isinstance(value, str):
        key = value.strip().lower().removeprefix("ssl.").removeprefix("cert_")
        if key in _CERT_REQS:
            return _CERT_REQS[key]
    elif isinstance(value, int) and not isinstance(value, bool):
        return ssl.VerifyMode(value)  # ValueError unless 0, 1 or 2
    raise ValueError(value)


def ssl_options(value: Any) -> bool | dict[str, Any]:
    """``broker_use_ssl`` normalised: a bool, or a dict with the canonical key names
    of :data:`_SSL_KEYS` (``ssl_`` prefix dropped) and ``cert_reqs`` a VerifyMode.
    ``ValueError`` for an unknown key, a key given twice or a bad value."""
    if isinstance(value, bool):
        return value
    if not isinstance(value, Mapping):
        raise ValueError(value)
    out: dict[str, Any] = {}
    for key, item in value.items():
        name = key.removeprefix("ssl_") if isinstance(key, str) else key
        if name not in _SSL_KEYS or name in out:
            raise ValueError(key)
        if name == "cert_reqs":
            item = _cert_reqs(item)
        elif item is not None and not isinstance(item, str | os.PathLike):
            raise ValueError(item)
        out[name] = item
    return out


def _broker_use_ssl(value: Any) -> Any:
    ssl_options(value)  # checked here; kept as given (the transports normalise it)
    return value


_positive = Rule("a positive number", _limit(lambda v: v > 0))
_positive_or_none = Rule("a positive number or None", _limit(lambda v: v > 0))
_non_negative = Rule("a number >= 0", _limit(lambda v: v >= 0))
_non_negative_or_none = Rule("a number >= 0 or None", _limit(lambda v: v >= 0))
_positive_int_or_none = Rule("a positive int or None", _limit(lambda v: v > 0))
_priority = Rule("an int from 0 to 255 or None", _limit(lambda v: 0 <= v <= 255))

#: Value limits beyond the annotated type, by setting name.
RULES: dict[str, Rule] = {
    "worker_concurrency": Rule("a positive int, or None for one per CPU", _concurrency),
    "worker_pool": Rule(f"one of {', '.join(_POOLS)} or 'module:Class'", _pool),
    "worker_prefetch_multiplier": Rule(
        "an int >= 0, or None for the pool's default", _limit(lambda v: v >= 0)
    ),
    "worker_max_tasks_per_child": _positive_int_or_none,
    "worker_max_memory_per_child": _positive_int_or_none,
    "worker_lease_seconds": _positive,
    "worker_lost_wait": _non_negative,
    "worker_proc_alive_timeout": _positive,
    "worker_timer_precision": _positive,
    "worker_soft_shutdown_timeout": _non_negative,
    "broker_connection_max_retries": _non_negative_or_none,
    "broker_connection_timeout": _non_negative,
    "broker_heartbeat": _non_negative_or_none,
    "broker_heartbeat_checkrate": _positive,
    "broker_pool_limit": _non_negative_or_none,
    "broker_use_ssl": Rule(BROKER_SSL_EXPECTED, _broker_use_ssl),
    "redis_backend_use_ssl": Rule(BROKER_SSL_EXPECTED, _broker_use_ssl),
    "broker_port": Rule("an int from 1 to 65535 or None", _limit(lambda v: 0 < v < 65536)),
    "redis_max_connections": _positive_int_or_none,
    "redis_socket_timeout": _positive_or_none,
    "redis_socket_connect_timeout": _positive_or_none,
    "result_expires": _non_negative_or_none,
    "result_chord_join_timeout": _non_negative,
    "result_chord_retry_interval": _non_negative,
    "result_backend_max_retries": _non_negative,
    "result_backend_base_sleep_between_retries_ms": _non_negative,
    "result_backend_max_sleep_between_retries_ms": _non_negative,
    "task_time_limit": _positive_or_none,
    "task_soft_time_limit": _positive_or_none,
    "task_default_priority": _priority,
    "task_queue_max_priority": _priority,
    "task_protocol": Rule("1 or 2", _limit(lambda v: v in (1, 2))),
    "task_default_delivery_mode": Rule(
        "'persistent', 'transient', 2 or 1", _delivery_mode, raw=True
    ),
    "task_default_exchange": Rule("a str or None", _exchange, raw=True),
    "task_routes": Rule("a dict, a list, a callable, a 'module:router' str or None", _routes),
    "task_queues": Rule("a list of Queue objects (or a dict) or None", _queues),
    "task_publish_retry_policy": Rule(
        f"a mapping with keys among {', '.join(sorted(_RETRY_POLICY_KEYS))}", _retry_policy
    ),
    "beat_schedule": Rule("a mapping of name -> {'task': ..., 'schedule': ...}", _schedule),
    "beat_scheduler": Rule("a 'module:Class' str, a class or None", _scheduler),
    "beat_max_loop_interval": _positive,
    "beat_lease_seconds": _positive,
    "beat_sync_every": Rule("an int >= 0", _limit(lambda v: v >= 0)),
    "event_queue_ttl": _non_negative_or_none,
    "event_queue_expires": _non_negative_or_none,
    "control_queue_ttl": _non_negative_or_none,
    "control_queue_expires": _non_negative_or_none,
    "timezone": Rule("an IANA time zone name such as 'Europe/Paris', or None", _timezone, True),
}
