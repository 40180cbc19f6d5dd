"""``celeriac``: the command-line entry point (``celeriac -A proj worker ...``)."""

from __future__ import annotations

import sys

from celeriac.cli import beat, call, events, worker
from celeriac.cli._group import cli

__all__ = ["cli", "main"]

_SUBCOMMANDS = (beat, call, events, worker)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    cli.main(args=argv if argv is not None else sys.argv[1:], prog_name="celeriac")
