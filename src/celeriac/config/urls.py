"""Broker and backend URL helpers: masking passwords and naming schemes."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

__all__ = ["mask_url", "scheme_of"]


def mask_url(url: str) -> str:
    """Return ``url`` with its password replaced by ``**`` (for logs and banners)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    netloc = f"{user}:**@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def scheme_of(url: str) -> str:
    """The URL's scheme in lower case (``'redis'`` for ``redis://...``), or ``''``."""
    head, sep, _ = url.partition("://")
    return head.lower() if sep else ""
