"""Celery-compatible import path for result handles: ``from celeriac.result import AsyncResult``.

The implementation lives in ``celeriac.app.result``.
"""

from celeriac.app.result import AsyncResult, EagerResult, GroupResult, ResultSet, result_from_tuple

__all__ = ["AsyncResult", "EagerResult", "GroupResult", "ResultSet", "result_from_tuple"]
