"""Typed settings for celeriac apps, under Celery's new and old names.

* :class:`Settings` (``settings.py``): every setting celeriac acts on, as a
  frozen, validated dataclass grouped by prefix (``broker_*``, ``result_*``,
  ``task_*``, ``worker_*``, ``beat_*``, ...). Transports and backends never
  read it; the app turns it into their explicit options.
* :class:`Config` (``conf.py``): ``app.conf``, the mutable view users write to
  (``app.conf.update(...)``, ``app.conf.broker_url = ...``,
  ``config_from_object``); ``Config.settings`` is the current frozen snapshot.
* :data:`ALIASES` (``aliases.py``): Celery's old uppercase names -> new names;
  :data:`IGNORED_SETTINGS` (``ignored.py``): Celery settings accepted and ignored.
* ``loaders.py``: name resolution and reading modules, objects and mappings;
  ``urls.py``: URL helpers (:func:`mask_url`).

This package may import only :mod:`celeriac.errors` and the standard library.
"""

from celeriac.config.aliases import ALIASES, namespaced_aliases
from celeriac.config.conf import Config
from celeriac.config.ignored import IGNORED_SETTINGS
from celeriac.config.loaders import KNOWN_NAMES, SettingsWarning, canonical_name
from celeriac.config.settings import EMBEDDED_BROKER_URL, SETTING_NAMES, Settings
from celeriac.config.urls import mask_url, scheme_of

__all__ = [
    "ALIASES",
    "EMBEDDED_BROKER_URL",
    "IGNORED_SETTINGS",
    "KNOWN_NAMES",
    "SETTING_NAMES",
    "Config",
    "Settings",
    "SettingsWarning",
    "canonical_name",
    "mask_url",
    "namespaced_aliases",
    "scheme_of",
]
