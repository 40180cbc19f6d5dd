"""Reading settings from mappings, objects, classes, modules and environment variables.

Everything here turns user-written names into canonical (lowercase, Celery
4+) names and checks the values; :class:`~celeriac.config.conf.Config` layers
the results. Two reading modes:

* **strict** (``app.conf.update(...)``, ``app.conf.x = ...``): every key must
  be a setting; an unknown key raises
  :class:`~celeriac.errors.UnknownSettingError` with a "did you mean" hint.
* **lenient** (``config_from_object``): a settings module or class also holds
  helpers (``import os``, ``REDIS_HOST = ...``), so unknown names are skipped,
  as in Celery; a name that is a near miss of a setting (``BROKER_ULR``) is
  skipped with a :class:`SettingsWarning` naming the likely intent.

One source may mix old and new names (``BROKER_URL`` next to
``result_backend``), unlike Celery which refuses that; but one setting given
twice under two names with different values is ambiguous and raises
:class:`~celeriac.errors.ImproperlyConfigured`.
"""

from __future__ import annotations

import difflib
import importlib
import os
import sys
import types
import warnings
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from celeriac.config.aliases import ALIASES
from celeriac.config.ignored import IGNORED_SETTINGS
from celeriac.config.settings import SETTING_NAMES, check_value
from celeriac.errors import AppImportError, ImproperlyConfigured, UnknownSettingError

__all__ = [
    "KNOWN_NAMES",
    "SettingsWarning",
    "canonical_name",
    "import_object",
    "items_of",
    "read_settings",
    "unknown_setting_message",
]

#: Every canonical name celeriac accepts: its own settings and the ignored Celery ones.
KNOWN_NAMES: frozenset[str] = SETTING_NAMES | frozenset(IGNORED_SETTINGS)

# Spellings offered by "did you mean", keyed in lower case: new names for a
# lowercase key; old, uppercased and CELERY_-prefixed names for an uppercase one.
_LOWER_SPELLINGS: dict[str, str] = {name: name for name in KNOWN_NAMES}
_UPPER_SPELLINGS: dict[str, str] = (
    {name: name.upper() for name in KNOWN_NAMES}
    | {f"celery_{name}": f"CELERY_{name.upper()}" for name in KNOWN_NAMES}
    | {old.lower(): old for old in ALIASES}
)
_PREFIXES = ("broker_", "result_", "task_", "worker_", "beat_", "celery", "event_", "control_")


class SettingsWarning(UserWarning):
    """A name in a settings module that looks like a misspelt setting was ignored."""


def _strip_namespace(key: str, namespace: str) -> str | None:
    prefix = f"{namespace.upper().rstrip('_')}_"
    if key.upper().startswith(prefix):
        return key[len(prefix) :].lower()
    return None


def canonical_name(key: str, namespace: str | None = None) -> str | None:
    """The canonical setting name that ``key`` spells, or None if it spells none.

    Accepted spellings of ``broker_url``: ``broker_url``, ``BROKER_URL`` (the
    old name), ``<NAMESPACE>_BROKER_URL`` when a namespace is given, and
    ``CELERY_BROKER_URL`` (Django style, even without a namespace).
    """
    if key in KNOWN_NAMES:
        return key
    if namespace:
        stripped = _strip_namespace(key, namespace)
        if stripped in KNOWN_NAMES:
            return stripped
    if key in ALIASES:
        return ALIASES[key]
    if key.isupper():
        lowered = key.lower()
        if lowered in KNOWN_NAMES:
            return lowered
        if lowered.startswith("celery_") and lowered[7:] in KNOWN_NAMES:
            return lowered[7:]
    return None


def _suggestion(key: str, cutoff: float) -> str | None:
    spellings = _UPPER_SPELLINGS if key.isupper() else _LOWER_SPELLINGS
    matches = difflib.get_close_matches(key.lower(), spellings, n=1, cutoff=cutoff)
    if not matches:
        return None
    spelling = spellings[matches[0]]
    name = canonical_name(spelling)
    return repr(spelling) if name == spelling else f"{spelling!r} (new name {name!r})"


def unknown_setting_message(key: str) -> str:
    """The error message for a key that spells no setting, with a "did you mean" hint."""
    hint = _suggestion(key, cutoff=0.6)
    message = f"unknown setting {key!r}"
    return f"{message}; did you mean {hint}?" if hint else message


def _same(a: Any, b: Any) -> bool:
    try:
        return a is b or bool(a == b)
    except Exception:  # objects whose == misbehaves count as different
        return False


def read_settings(
    items: Iterable[tuple[str, Any]],
    *,
    namespace: str | None = None,
    strict: bool = True,
    origin: str = "settings",
) -> dict[str, Any]:
    """Canonical name -> checked value for ``items`` (pairs of key and raw value).

    In strict mode unknown keys raise :class:`UnknownSettingError`; in lenient
    mode they are skipped (with a :class:`SettingsWarning` for near misses),
    and with a ``namespace`` only keys that carry its prefix are read, as in
    Celery. ``origin`` names the source in messages.
    """
    found: dict[str, Any] = {}
    spelt: dict[str, str] = {}
    for key, value in items:
        if not strict and namespace and _strip_namespace(key, namespace) is None:
            continue
        name = canonical_name(key, namespace)
        if name is None:
            if strict:
                raise UnknownSettingError(unknown_setting_message(key))
            _warn_if_misspelt(key, namespace, origin)
            continue
        checked = check_value(name, value, given_as=key)
        if name in found and spelt[name] != key and not _same(found[name], checked):
            raise ImproperlyConfigured(
                f"{origin} sets {name!r} twice with different values, as {spelt[name]!r} "
                f"and as {key!r}; keep one of them"
            )
        found[name] = checked
        spelt[name] = key
    return found


def _warn_if_misspelt(key: str, namespace: str | None, origin: str) -> None:
    looks_like_setting = key.lower().startswith(_PREFIXES) or bool(
        namespace and _strip_namespace(key, namespace) is not None
    )
    hint = _suggestion(key, cutoff=0.88) if looks_like_setting else None
    if hint:
        warnings.warn(
            f"{origin}: ignoring unknown setting {key!r}; did you mean {hint}?",
            SettingsWarning,
            stacklevel=4,
        )


def items_of(obj: Any) -> Iterator[tuple[str, Any]]:
    """(name, value) pairs of a mapping, or the public attributes of a module, class
    or object (inherited class attributes included, so config classes can subclass).

    Imported modules and ``datetime`` classes are skipped, so ``from datetime import
    timezone`` in a settings module is not read as the ``timezone`` setting."""
    if isinstance(obj, Mapping):
        yield from obj.items()
        return
    for name in dir(obj):
        if name.startswith("_"):
            continue
        value = getattr(obj, name)
        # `from datetime import timezone` in a settings module is an import, not a setting.
        imported_class = isinstance(value, type) and value.__module__ == "datetime"
        if not (imported_class or isinstance(value, types.ModuleType)):
            yield name, value


def import_object(reference: str) -> Any:
    """Import ``'pkg.module'``, ``'pkg.module:attr'`` or ``'pkg.module.attr'``.

    The current directory is searched too (as ``celery -A`` does), so a
    ``celeryconfig.py`` next to the project is found. Raises
    :class:`~celeriac.errors.AppImportError` when the module does not exist or
    has no such attribute; errors raised while the module runs (including a
    failed import of one of its own dependencies) propagate unchanged.
    """
    module_name, _, attr = reference.partition(":")
    try:
        module = _import_from_cwd(module_name)
    except ModuleNotFoundError as exc:
        if not _is_missing(exc, module_name):
            raise  # the module exists but one of its own imports failed
        head, _, tail = module_name.rpartition(".")
        if attr or not head:
            raise AppImportError(f"cannot import config {reference!r}: {exc}") from exc
        # 'pkg.module.Config': the last part may be an attribute, not a module
        module_name, attr = head, tail
        try:
            module = _import_from_cwd(module_name)
        except ModuleNotFoundError as exc2:
            if not _is_missing(exc2, module_name):
                raise
            raise AppImportError(f"cannot import config {reference!r}: {exc2}") from exc2
    if not attr:
        return module
    try:
        return getattr(module, attr)
    except AttributeError:
        raise AppImportError(f"module {module_name!r} has no attribute {attr!r}") from None


def _is_missing(exc: ModuleNotFoundError, module_name: str) -> bool:
    # True when the module itself is missing, not a module that it imports.
    return exc.name is not None and (
        module_name == exc.name or module_name.startswith(f"{exc.name}.")
    )


def _import_from_cwd(module_name: str) -> Any:
    cwd = os.getcwd()
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(module_name)
    finally:
        if added and cwd in sys.path:
            sys.path.remove(cwd)
