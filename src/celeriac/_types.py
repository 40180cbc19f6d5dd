"""Small shared type aliases (stdlib only)."""

from __future__ import annotations

from typing import Any

JSONValue = Any
"""A value that the task serializer can encode."""
