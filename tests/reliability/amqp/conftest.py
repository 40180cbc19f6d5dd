"""Fixtures of the RabbitMQ reliability tests (helpers in ``_amqp_rel.py``)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_ROOT = Path(__file__).resolve().parents[3]
for _path in (str(_ROOT), str(_ROOT / "tests"), str(Path(__file__).parent)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from _amqp_rel import Run  # noqa: E402

__all__ = ["rel_run"]


@pytest.fixture
def rel_run(tmp_path: Path, amqp_url: str, redis_url: str) -> Iterator[Run]:
    """Tasks over this session's vhost, results on this session's (flushed) Redis db."""
    run = Run(tmp_path, amqp_url, redis_url)
    try:
        yield run
    finally:
        run.close()
