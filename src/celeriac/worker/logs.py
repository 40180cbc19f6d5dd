"""Worker logging: Celery's line format, set up once per process."""

from __future__ import annotations

import logging
import sys

from celeriac import signals
from celeriac.errors import ConfigurationError

__all__ = ["LOG_FORMAT", "setup_logging"]

LOG_FORMAT = "[%(asctime)s: %(levelname)s/%(processName)s] %(message)s"
_LEVELS = {"DEBUG", "INFO", "WARNING", "WARN", "ERROR", "CRITICAL", "FATAL"}


def parse_level(level: str | int) -> int:
    """``'info'`` -> ``logging.INFO``; a clear error for anything else."""
    if isinstance(level, int):
        return level
    name = level.strip().upper()
    if name not in _LEVELS:
        raise ConfigurationError(
            f"unknown log level {level!r}: use one of debug, info, warning, error, critical"
        )
    return logging.getLevelName("WARNING" if name == "WARN" else name)  # type: ignore[no-any-return]


def setup_logging(level: str | int = "WARNING", logfile: str | None = None,
                  fmt: str = LOG_FORMAT) -> None:
    """Configure the root logger unless a ``setup_logging`` receiver does it."""
    numeric = parse_level(level)
    if signals.setup_logging.receivers:
        signals.setup_logging.send(sender=None, loglevel=numeric, logfile=logfile,
                                   format=fmt, colorize=False)
        return
    handler: logging.Handler = (
        logging.FileHandler(logfile) if logfile else logging.StreamHandler(sys.stderr)
    )
    handler.setFormatter(logging.Formatter(fmt))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    signals.after_setup_logger.send(sender=None, logger=root, loglevel=numeric,
                                    logfile=logfile, format=fmt, colorize=False)
