"""How a signature finds its app without importing :mod:`celeriac.app`.

The canvas sits below the app layer, so it cannot import ``celeriac.app``. A
signature holds the app it was made from (``task.s()`` passes it); one made
from a bare name or a dict asks the resolver, which the app layer installs when
it is imported (``set_app_resolver(current_app)`` in ``celeriac.app.core``).
See docs/decisions-canvas.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from celeriac.errors import ImproperlyConfigured

__all__ = ["resolve_app", "set_app_resolver"]

_resolver: Callable[[], Any] | None = None


def set_app_resolver(resolver: Callable[[], Any]) -> None:
    """Install the function that returns the current app (called by the app layer)."""
    global _resolver
    _resolver = resolver


def resolve_app(app: Any = None) -> Any:
    """``app`` if given, else the current app from the installed resolver."""
    if app is not None:
        return app
    if _resolver is None:
        raise ImproperlyConfigured(
            "this signature has no app and none is current: create an app "
            "(celeriac.Celery(...)) or pass app=... when building the signature"
        )
    return _resolver()
