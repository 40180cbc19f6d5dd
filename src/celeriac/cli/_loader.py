"""Finding the app named by ``-A/--app``: ``module``, ``module:attr`` or ``package``."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

from celeriac.app.core import App
from celeriac.errors import AppImportError

__all__ = ["find_app"]


def find_app(spec: str) -> App:
    """Import ``spec`` and return its app (``app`` or ``celery`` attribute, or ``mod:attr``).

    The current directory is on ``sys.path`` first, as with ``python -m``.
    """
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise AppImportError(
                f"cannot find app module {module_name!r} (from -A {spec}): check the name and "
                "that its directory is the current one or on PYTHONPATH"
            ) from None
        raise AppImportError(f"importing {module_name!r} failed: {exc}") from exc
    except Exception as exc:
        raise AppImportError(
            f"importing {module_name!r} raised {type(exc).__name__}: {exc}"
        ) from exc
    candidates = [attr] if attr else ["app", "celery"]
    for name in candidates:
        found: Any = getattr(module, name, None)
        if found is None and "." in name:
            found = module
            for part in name.split("."):
                found = getattr(found, part, None)
        if callable(found) and not isinstance(found, App):
            found = found()
        if isinstance(found, App):
            return found
    if not attr:
        # A package named with -A proj: look at proj.celery like Celery does.
        try:
            sub = importlib.import_module(f"{module_name}.celery")
        except ImportError:
            sub = None
        if sub is not None:
            for name in ("app", "celery"):
                found = getattr(sub, name, None)
                if isinstance(found, App):
                    return found
        apps = [v for v in vars(module).values() if isinstance(v, App)]
        if len(apps) == 1:
            return apps[0]
    wanted = f"attribute {attr!r}" if attr else "an attribute named 'app' or 'celery'"
    raise AppImportError(
        f"module {module_name!r} has no celeriac app: expected {wanted} holding a "
        "Celery(...) instance; use -A module:attr to name it"
    )
