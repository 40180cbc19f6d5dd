"""``app.conf``: the mutable view of an app's settings, over frozen snapshots.

A :class:`Config` holds four layers, highest first:

1. **explicit**: values given to ``Config(...)`` (what ``Celery(broker=...,
   backend=..., include=...)`` passes) and every ``app.conf.x = ...``,
   ``app.conf["x"] = ...`` and ``app.conf.update(...)``;
2. **source**: what the last ``config_from_object`` / ``config_from_envvar``
   read; a new call replaces it, as in Celery;
3. **app defaults**: ``add_defaults(...)`` and ``setdefault(...)``;
4. **built-in defaults**: :class:`~celeriac.config.settings.Settings`'s.

Like Celery's, explicit values win over the config source whichever came
first, so ``Celery("proj", broker=url).config_from_object("celeryconfig")``
keeps ``url``. Code on hot paths reads :attr:`Config.settings`, a frozen
:class:`~celeriac.config.settings.Settings` built on first use after a change
and cached.
"""

from __future__ import annotations

import copy
import os
import pprint
from collections.abc import Iterator, Mapping
from typing import Any

from celeriac.config.ignored import IGNORED_SETTINGS
from celeriac.config.loaders import (
    KNOWN_NAMES,
    canonical_name,
    import_object,
    items_of,
    read_settings,
    unknown_setting_message,
)
from celeriac.config.settings import SETTING_NAMES, Settings
from celeriac.config.urls import mask_url
from celeriac.errors import AppImportError, ImproperlyConfigured, UnknownSettingError

__all__ = ["Config", "censor"]

_SECRET_WORDS = ("password", "secret", "token", "api_key", "access_key", "signature")
_MASK = "********"


def censor(name: str, value: Any) -> Any:
    """``value`` with passwords in URLs and values of secret-named keys masked."""
    lowered = name.lower()
    if isinstance(value, str | bytes) and value and any(w in lowered for w in _SECRET_WORDS):
        return _MASK
    if isinstance(value, str) and "://" in value:
        return mask_url(value)
    if isinstance(value, Mapping):
        return {k: censor(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(censor(name, v) for v in value)
    return value


def _builtin_defaults() -> dict[str, Any]:
    defaults = Settings()
    values = {name: getattr(defaults, name) for name in SETTING_NAMES}
    values.update({name: copy.copy(v) for name, v in IGNORED_SETTINGS.items()})
    return values


class Config:
    """The settings of one app, readable and writable under Celery's old and new names.

    ``Config(defaults)`` starts from ``defaults`` (keys in any spelling; None
    values are dropped so that ``Celery(broker=None)`` sets nothing); they
    count as explicitly set. Reads: ``conf.broker_url``, ``conf["BROKER_URL"]``,
    ``conf.get(...)``; writes validate and raise
    :class:`~celeriac.errors.ConfigurationError` (or its subclass
    :class:`~celeriac.errors.UnknownSettingError`) naming the setting.
    """

    __slots__ = (
        "_app_defaults",
        "_base",
        "_explicit",
        "_namespace",
        "_snapshot",
        "_source",
        "_values",
    )

    _base: dict[str, Any]
    _app_defaults: dict[str, Any]
    _source: dict[str, Any]
    _explicit: dict[str, Any]
    _values: dict[str, Any]
    _namespace: str | None
    _snapshot: Settings | None

    def __init__(self, defaults: Mapping[str, Any] | None = None) -> None:
        base = _builtin_defaults()
        for slot, value in (
            ("_base", base),
            ("_app_defaults", {}),
            ("_source", {}),
            ("_explicit", {}),
            ("_values", dict(base)),
            ("_namespace", None),
            ("_snapshot", None),
        ):
            object.__setattr__(self, slot, value)
        if defaults:
            self.update({k: v for k, v in defaults.items() if v is not None})

    def __getstate__(self) -> dict[str, Any]:
        return {slot: getattr(self, slot) for slot in self.__slots__}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for slot, value in state.items():
            object.__setattr__(self, slot, value)

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any]) -> Config:
        """A Config holding ``mapping`` (strict: unknown keys raise)."""
        return cls(mapping)

    # -- the frozen snapshot ------------------------------------------------------

    @property
    def settings(self) -> Settings:
        """The current settings, frozen; rebuilt lazily after each change, then cached."""
        snapshot = self._snapshot
        if snapshot is None:
            values = self._values
            snapshot = Settings(**{name: values[name] for name in SETTING_NAMES})
            object.__setattr__(self, "_snapshot", snapshot)
        return snapshot

    def _changed(self, rebuild: bool) -> None:
        if rebuild:
            values = dict(self._base)
            values.update(self._app_defaults)
            values.update(self._source)
            values.update(self._explicit)
            object.__setattr__(self, "_values", values)
        object.__setattr__(self, "_snapshot", None)

    # -- names --------------------------------------------------------------------

    def _name(self, key: str) -> str:
        name = canonical_name(key, self._namespace) if isinstance(key, str) else None
        if name is None:
            raise UnknownSettingError(unknown_setting_message(str(key)))
        return name

    # -- mapping and attribute access ---------------------------------------------

    def __getattr__(self, key: str) -> Any:
        # Only reached for names that are not slots or methods.
        if key.startswith("_"):
            raise AttributeError(key)
        name = canonical_name(key, self._namespace)
        if name is None:
            raise AttributeError(unknown_setting_message(key))
        return self._values[name]

    def __setattr__(self, key: str, value: Any) -> None:
        if key.startswith("_"):
            raise AttributeError(f"cannot set private attribute {key!r} on Config")
        self.update({key: value})

    def __delattr__(self, key: str) -> None:
        del self[key]

    def __getitem__(self, key: str) -> Any:
        return self._values[self._name(key)]

    def __setitem__(self, key: str, value: Any) -> None:
        self.update({key: value})

    def __delitem__(self, key: str) -> None:
        """Forget every value set for ``key``: it reads its built-in default again."""
        name = self._name(key)
        for layer in (self._explicit, self._source, self._app_defaults):
            layer.pop(name, None)
        self._changed(rebuild=True)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and canonical_name(key, self._namespace) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __dir__(self) -> list[str]:
        return sorted(set(object.__dir__(self)) | KNOWN_NAMES)

    def __repr__(self) -> str:
        return f"<Config: {len(self.changes)} settings changed>"

    def get(self, key: str, default: Any = None) -> Any:
        """The value of ``key``, or ``default`` when ``key`` names no setting."""
        name = canonical_name(key, self._namespace)
        return default if name is None else self._values[name]

    def keys(self) -> list[str]:
        """Canonical names of all settings, including Celery ones celeriac ignores."""
        return list(self._values)

    def values(self) -> list[Any]:
        """Current values, in :meth:`keys` order."""
        return list(self._values.values())

    def items(self) -> list[tuple[str, Any]]:
        """(canonical name, current value) pairs."""
        return list(self._values.items())

    @property
    def changes(self) -> dict[str, Any]:
        """Settings given a value by any layer above the built-in defaults."""
        names = self._app_defaults.keys() | self._source.keys() | self._explicit.keys()
        return {name: self._values[name] for name in sorted(names)}

    # -- writing ------------------------------------------------------------------

    def update(self, mapping: Mapping[str, Any] | None = None, /, **kwargs: Any) -> None:
        """Set several settings at once; nothing changes if any of them is invalid.

        Keys may be new or old names; one setting given under two names with
        different values raises :class:`~celeriac.errors.ImproperlyConfigured`.
        """
        items = dict(mapping or {})
        items.update(kwargs)
        found = read_settings(items.items(), namespace=self._namespace, origin="update()")
        self._explicit.update(found)
        self._values.update(found)
        self._changed(rebuild=False)

    def setdefault(self, key: str, value: Any) -> Any:
        """Give ``key`` a default below the config source and explicit values.

        Unlike a dict (and Celery, where every setting already "exists"), the
        default applies whenever nothing but a built-in default was set, and a
        later ``config_from_object`` still overrides it. Returns the value now
        in effect.
        """
        name = self._name(key)
        if name not in self._app_defaults:
            self.add_defaults({key: value})
        return self._values[name]

    def add_defaults(self, mapping: Mapping[str, Any]) -> None:
        """Set app-level defaults (Celery's ``app.add_defaults``), below every source."""
        found = read_settings(mapping.items(), namespace=self._namespace, origin="add_defaults()")
        self._app_defaults.update(found)
        self._changed(rebuild=True)

    # -- loading ------------------------------------------------------------------

    def config_from_object(
        self, obj: Any, namespace: str | None = None, silent: bool = False
    ) -> bool:
        """Read settings from a module (or its dotted name), class, object or mapping.

        Reads attributes that spell a setting (``broker_url``, ``BROKER_URL``;
        with ``namespace='CELERY'`` only ``CELERY_...`` ones) and ignores the
        rest. The result replaces what an earlier call read; explicit values
        still win. With ``silent=True`` a module that does not exist returns
        False instead of raising :class:`~celeriac.errors.AppImportError`.
        """
        origin = obj if isinstance(obj, str) else getattr(obj, "__name__", type(obj).__name__)
        if isinstance(obj, str):
            try:
                obj = import_object(obj)
            except AppImportError:
                if silent:
                    return False
                raise
        found = read_settings(
            items_of(obj), namespace=namespace, strict=False, origin=f"config {origin!r}"
        )
        object.__setattr__(self, "_source", found)
        object.__setattr__(self, "_namespace", namespace)
        self._changed(rebuild=True)
        return True

    def config_from_envvar(
        self, variable_name: str, silent: bool = False, namespace: str | None = None
    ) -> bool:
        """:meth:`config_from_object` of the module named by environment variable
        ``variable_name``; raises ImproperlyConfigured when it is unset (unless silent)."""
        module_name = os.environ.get(variable_name)
        if not module_name:
            if silent:
                return False
            raise ImproperlyConfigured(
                f"environment variable {variable_name!r} is not set; it should name the "
                "module holding the settings (e.g. 'proj.celeryconfig')"
            )
        return self.config_from_object(module_name, namespace=namespace, silent=silent)

    # -- reporting ----------------------------------------------------------------

    def table(self, with_defaults: bool = False, censored: bool = True) -> dict[str, Any]:
        """Canonical name -> value, only changed settings unless ``with_defaults``."""
        source = dict(self._values) if with_defaults else self.changes
        if not censored:
            return source
        return {name: censor(name, value) for name, value in source.items()}

    def humanize(self, with_defaults: bool = False, censored: bool = True) -> str:
        """The settings as ``name: value`` lines (passwords masked), for ``celeriac report``.

        Celery settings that celeriac accepts but ignores are marked.
        """
        lines = []
        for name, value in sorted(self.table(with_defaults, censored).items()):
            text = pprint.pformat(value, width=72).replace("\n", "\n    ")
            note = "  # ignored by celeriac" if name in IGNORED_SETTINGS else ""
            lines.append(f"{name}: {text}{note}")
        return "\n".join(lines)
