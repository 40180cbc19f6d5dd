"""Every name celeriac and Celery use on a broker or result store.

Celery/kombu's names are reproduced exactly so both systems share queues,
bindings, results, events and remote control. celeriac's own reliability keys
(leases, in-flight lists, the delayed zset, dead letters) all start with
``celeriac.`` so they can never collide with kombu's names or a user's queue.
"""

from __future__ import annotations

from dataclasses import dataclass

from celeriac.errors import DecodeError

__all__ = [
    "BEAT_LEADER_KEY",
    "BINDING_DEADLINES",
    "BINDING_SEP",
    "CELERIAC_PREFIX",
    "CHORD_KEY_TTL",
    "DEFAULT_EXCHANGE",
    "DEFAULT_QUEUE",
    "DELAYED_ZSET",
    "EVENT_EXCHANGE",
    "GROUP_META_PREFIX",
    "IDLE_CONSUMERS_HASH",
    "LEASES_ZSET",
    "PIDBOX_EXCHANGE",
    "PIDBOX_REPLY_EXCHANGE",
    "PRIORITY_STEPS",
    "REDELIVERED_HASH",
    "REVOKED_SET",
    "TASK_META_PREFIX",
    "UNACKED_HASH",
    "UNACKED_INDEX",
    "UNACKED_MUTEX",
    "WORKERS_ZSET",
    "ChordKeys",
    "binding_member",
    "binding_permanent_key",
    "binding_set_key",
    "chord_keys",
    "dead_letter_key",
    "delayed_key",
    "event_queue",
    "fanout_channel",
    "group_meta_key",
    "idle_consumers_prefix",
    "inflight_key",
    "lease_key",
    "parse_binding_member",
    "pidbox_queue",
    "pidbox_reply_list",
    "priority_queue",
    "priority_queues",
    "priority_step",
    "push_channel_prefix",
    "task_meta_key",
    "topic_channel",
    "topic_pattern",
    "wake_channel_prefix",
]

# -- Celery defaults -----------------------------------------------------------

DEFAULT_QUEUE = "celery"
DEFAULT_EXCHANGE = "celery"

# -- result store --------------------------------------------------------------

TASK_META_PREFIX = "celery-task-meta-"
GROUP_META_PREFIX = "celery-taskset-meta-"
#: Chord keys expire after a day, as Celery 5.7 sets them.
CHORD_KEY_TTL = 86400


def task_meta_key(task_id: str) -> str:
    """Key (and pub/sub channel) of a task's result."""
    return TASK_META_PREFIX + task_id


def group_meta_key(group_id: str) -> str:
    """Key of a saved group result (``GroupResult.save()``)."""
    return GROUP_META_PREFIX + group_id


@dataclass(frozen=True, slots=True)
class ChordKeys:
    """The Redis keys of one chord's completion counter (Celery 5.7 layout)."""

    group: str  #: ``celery-taskset-meta-<gid>`` itself
    size: str  #: ``.s``: number of header tasks, set by the client
    results: str  #: ``.j``: zset of ``[1, id, state, result]`` scored by index
    dedupe: str  #: ``.d``: set of ``<task_id>:<index>`` already counted
    total: str  #: ``.t``: counter of older Celery versions, expired alongside
    lock: str  #: ``.c``: completion lock (token NX, then ``"done"``)
    completer: str  #: celeriac's own: id of the header task that completed the chord
    completed_parts: str  #: celeriac's own: the parts, kept for a redelivered completer


def chord_keys(group_id: str) -> ChordKeys:
    """All counter keys of the chord whose header is group ``group_id``."""
    base = group_meta_key(group_id)
    own = f"celeriac.chord.{group_id}"
    return ChordKeys(base, base + ".s", base + ".j", base + ".d", base + ".t", base + ".c",
                     own + ".by", own + ".parts")


# -- kombu Redis transport -------------------------------------------------------

#: Separator kombu uses in priority queue names and binding members.
BINDING_SEP = "\x06\x16"
PRIORITY_STEPS = (0, 3, 6, 9)
UNACKED_HASH = "unacked"
UNACKED_INDEX = "unacked_index"
UNACKED_MUTEX = "unacked_mutex"
BINDING_DEADLINES = "_kombu.binding_deadlines"
_BINDING_PREFIX = "_kombu.binding."
_BINDING_PERMANENT_PREFIX = "_kombu.binding_permanent."


def priority_step(priority: int | None) -> int:
    """Round a message priority down to kombu's step (``5 -> 3``; clamped to 0..9)."""
    if not priority or priority <= 0:
        return 0
    step = 0
    for candidate in PRIORITY_STEPS:
        if candidate <= priority:
            step = candidate
    return step


def priority_queue(queue: str, priority: int | None) -> str:
    """The Redis list a message of ``priority`` goes to (plain name for step 0).

    On Redis a *lower* number is served first, the opposite of AMQP.
    """
    step = priority_step(priority)
    return queue if step == 0 else f"{queue}{BINDING_SEP}{step}"


def priority_queues(queue: str) -> list[str]:
    """All lists of ``queue``, highest priority (served first) first."""
    return [priority_queue(queue, step) for step in PRIORITY_STEPS]


def binding_set_key(exchange: str) -> str:
    """The set of binding members of ``exchange`` (``_kombu.binding.<exchange>``)."""
    return _BINDING_PREFIX + exchange


def binding_permanent_key(exchange: str) -> str:
    """kombu 5.7's copy of the bindings of non-expiring queues."""
    return _BINDING_PERMANENT_PREFIX + exchange


def binding_member(routing_key: str, pattern: str, queue: str) -> str:
    """One binding: ``routing_key \\x06\\x16 pattern \\x06\\x16 queue``."""
    return BINDING_SEP.join((routing_key, pattern, queue))


def parse_binding_member(member: str | bytes) -> tuple[str, str, str]:
    """Split a binding member into ``(routing_key, pattern, queue)``."""
    text = member.decode("utf-8") if isinstance(member, bytes) else member
    parts = text.split(BINDING_SEP)
    if len(parts) != 3:
        raise DecodeError(f"binding member {text!r} does not have three parts")
    return parts[0], parts[1], parts[2]


def fanout_channel(db: int, exchange: str) -> str:
    """Pub/sub channel of a fanout exchange: ``/<db>.<exchange>``."""
    return f"/{db}.{exchange}"


def topic_channel(db: int, exchange: str, routing_key: str) -> str:
    """Pub/sub channel a topic message is published on: ``/<db>.<exchange>/<key>``."""
    return f"/{db}.{exchange}/{routing_key}"


def topic_pattern(db: int, exchange: str, binding_key: str) -> str:
    """PSUBSCRIBE pattern for a topic binding (``worker.#`` -> ``/0.celeryev/worker.*``).

    Glob wildcards are wider than AMQP's (``*`` also spans dots), so receivers
    still filter by routing key; glob metacharacters in names are escaped.
    """
    escaped = "".join(f"[{c}]" if c in "?[]\\" else c for c in binding_key)
    return topic_channel(db, exchange, escaped.replace("#", "*"))


# -- events and remote control ---------------------------------------------------

EVENT_EXCHANGE = "celeryev"
PIDBOX_EXCHANGE = "celery.pidbox"
PIDBOX_REPLY_EXCHANGE = "reply.celery.pidbox"


def event_queue(receiver_id: str) -> str:
    """Queue of one event receiver: ``celeryev.<uuid>``."""
    return f"{EVENT_EXCHANGE}.{receiver_id}"


def pidbox_queue(nodename: str) -> str:
    """A worker's control queue: ``<nodename>.celery.pidbox``."""
    return f"{nodename}.{PIDBOX_EXCHANGE}"


def pidbox_reply_list(oid: str) -> str:
    """The list replies to client ``oid`` land in: ``<oid>.reply.celery.pidbox``."""
    return f"{oid}.{PIDBOX_REPLY_EXCHANGE}"


# -- celeriac's own reliability keys -------------------------------------------------

CELERIAC_PREFIX = "celeriac."
#: zset of ETA/countdown messages (unacked-style entries) scored by due time.
DELAYED_ZSET = "celeriac.delayed"
#: zset of worker ids scored by the deadline of their lease.
LEASES_ZSET = "celeriac.leases"
#: zset of live workers scored by their last heartbeat.
WORKERS_ZSET = "celeriac.workers"
#: set of revoked task ids that outlive worker restarts.
REVOKED_SET = "celeriac.revoked"
#: lock held by the beat process that is allowed to send.
BEAT_LEADER_KEY = "celeriac.beat.leader"
#: hash of ``sha1(element)`` of messages put back on a queue after a delivery,
#: so the next fetch flags them redelivered (Redis transport).
REDELIVERED_HASH = "celeriac.redelivered"
#: hash of idle consumers (Redis transport): consumer id -> the in-flight tags
#: still free for messages pushed to it and until when (``"<next> <last> <expires>"``).
IDLE_CONSUMERS_HASH = "celeriac.idle"


def idle_consumers_prefix() -> str:
    """Prefix of the per-list zsets of consumers idle on a list (prefix + list name)."""
    return f"{CELERIAC_PREFIX}idle."


def push_channel_prefix(db: int) -> str:
    """Prefix of the pub/sub channel on which a consumer of ``db`` receives messages
    pushed to it (prefix + consumer id)."""
    return f"{CELERIAC_PREFIX}push/{db}/"


def wake_channel_prefix(db: int) -> str:
    """Prefix of the pub/sub channels that wake idle consumers of ``db``'s lists.

    The channel of a list is this prefix plus the list name. The database is
    part of the name because pub/sub channels are shared by all databases.
    """
    return f"{CELERIAC_PREFIX}wake/{db}/"


def inflight_key(worker_id: str) -> str:
    """The messages a worker has taken and not yet acked."""
    return f"{CELERIAC_PREFIX}inflight.{worker_id}"


def lease_key(worker_id: str) -> str:
    """A worker's lease (expires unless its heartbeat renews it)."""
    return f"{CELERIAC_PREFIX}lease.{worker_id}"


def delayed_key(queue: str) -> str:
    """Per-queue delayed zset, for transports that keep ETA messages per queue."""
    return f"{DELAYED_ZSET}.{queue}"


def dead_letter_key(queue: str) -> str:
    """Where rejected or undecodable messages of ``queue`` are kept."""
    return f"{CELERIAC_PREFIX}dead.{queue}"
