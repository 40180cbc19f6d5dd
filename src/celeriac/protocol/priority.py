"""Message priorities: celeriac's rule and kombu's Redis numbering.

celeriac's rule is the same on every broker: **a higher ``priority`` runs
first** (0 lowest, 9 highest, as on AMQP). kombu's Redis transport numbers the
other way: it polls the plain list (priority 0) first, then the sub-lists of
steps 3, 6 and 9, so *lower* is served first there. To keep both the rule and
the wire layout, a producer publishing to Redis writes ``9 - priority``
(:func:`to_redis`): priority 9 lands in the plain list a Celery worker polls
first, priority 0 in the step-9 list polled last. Messages sent without a
priority stay in the plain list, byte for byte what Celery writes.
"""

from __future__ import annotations

__all__ = ["MAX_REDIS_PRIORITY", "to_redis"]

MAX_REDIS_PRIORITY = 9


def to_redis(priority: int) -> int:
    """The number kombu's Redis transport orders by for celeriac's ``priority``."""
    return MAX_REDIS_PRIORITY - max(0, min(MAX_REDIS_PRIORITY, int(priority)))
