"""Fixtures of the benchmark smoke test: the real Redis server, a private database."""

from __future__ import annotations

import sys
from pathlib import Path

_TESTS = str(Path(__file__).resolve().parents[1])
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)


__all__ = []
