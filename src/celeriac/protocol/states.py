"""Task state names, exactly as Celery writes them to result stores.

The names are the wire values (``"SUCCESS"``, ``"FAILURE"`` ...). PENDING is
never stored: it is what a task id without a stored result reads as.
"""

from __future__ import annotations

__all__ = [
    "ALL_STATES",
    "EXCEPTION_STATES",
    "FAILURE",
    "IGNORED",
    "PENDING",
    "PROPAGATE_STATES",
    "READY_STATES",
    "RECEIVED",
    "REJECTED",
    "RETRY",
    "REVOKED",
    "STARTED",
    "SUCCESS",
    "UNREADY_STATES",
    "may_overwrite",
    "precedence",
]

PENDING = "PENDING"
RECEIVED = "RECEIVED"
STARTED = "STARTED"
SUCCESS = "SUCCESS"
FAILURE = "FAILURE"
RETRY = "RETRY"
REVOKED = "REVOKED"
REJECTED = "REJECTED"
IGNORED = "IGNORED"

ALL_STATES = frozenset(
    {PENDING, RECEIVED, STARTED, SUCCESS, FAILURE, RETRY, REVOKED, REJECTED, IGNORED}
)
#: States after which the task will not change again (``AsyncResult.ready()``).
READY_STATES = frozenset({SUCCESS, FAILURE, REVOKED})
UNREADY_STATES = frozenset({PENDING, RECEIVED, STARTED, REJECTED, RETRY})
#: States whose stored result is an exception (in wire form).
EXCEPTION_STATES = frozenset({FAILURE, RETRY, REVOKED})
#: States whose exception ``AsyncResult.get()`` re-raises by default.
PROPAGATE_STATES = frozenset({FAILURE, REVOKED})

# Lowest to highest, the same order as Celery's precedence table; states that
# are not listed (custom states, IGNORED) rank between REVOKED and FAILURE,
# where Celery puts unknown states.
_ORDER = (PENDING, RETRY, REJECTED, RECEIVED, STARTED, REVOKED, None, FAILURE, SUCCESS)
_RANK = {state: rank for rank, state in enumerate(_ORDER)}
_UNKNOWN_RANK = _RANK[None]


def precedence(state: str | None) -> int:
    """Rank a state: a higher number is a more advanced state.

    ``precedence(SUCCESS) > precedence(FAILURE) > precedence(STARTED) >
    precedence(PENDING)``. Unknown (custom) states rank in the middle, like
    Celery. Note the direction: Celery's own table is an index where *lower*
    wins; here higher wins, which reads naturally in comparisons.
    """
    if state is None:
        return _UNKNOWN_RANK
    return _RANK.get(state, _UNKNOWN_RANK)


def may_overwrite(current: str | None, new: str) -> bool:
    """Whether a backend may replace a stored ``current`` state with ``new``.

    Mirrors the Celery worker's rule: a stored SUCCESS is never replaced by
    anything but SUCCESS (a late RETRY or duplicate delivery must not undo a
    finished task); everything else may be overwritten.
    """
    return current != SUCCESS or new == SUCCESS
