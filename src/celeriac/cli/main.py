"""``celeriac``: the command-line entry point (``celeriac -A proj worker ...``)."""

from __future__ import annotations

import sys
from typing import Any

from celeriac.cli import beat, call, control, dashboard, events, inspect, status, worker
from celeriac.cli._group import cli

__all__ = ["cli", "main"]

_SUBCOMMANDS = (beat, call, control, dashboard, events, inspect, status, worker)


def main(argv: list[str] | None = None, app: Any = None) -> None:
    """Console-script entry point; ``app`` stands in for ``-A`` (``app.start()``)."""
    cli.main(args=argv if argv is not None else sys.argv[1:], prog_name="celeriac",
             obj={"app": app} if app is not None else None)
