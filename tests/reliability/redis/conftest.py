"""Fixtures of the Redis reliability tests (helpers in ``_rel_support.py``)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_ROOT = Path(__file__).resolve().parents[3]
for _path in (str(_ROOT), str(_ROOT / "tests"), str(Path(__file__).parent)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from _rel_support import Project  # noqa: E402

__all__ = ["project"]


@pytest.fixture
def project(tmp_path: Path, redis_url: str) -> Iterator[Project]:
    """A task module on this session's (flushed) database of the shared server."""
    made = Project(tmp_path, redis_url)
    made.write()
    yield made
    made.cleanup()
