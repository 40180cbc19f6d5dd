"""Bookkeeping of messages pushed to an idle Redis consumer (no I/O).

A short ``FETCH`` registers the consumer as idle with the tags it reserved and
left unused (a *range*); publishers then write messages straight into the
consumer's in-flight hash under those tags and announce each on the consumer's
push channel (``_redis_scripts`` describes the formats). :class:`PushLedger`
decides which announcements to take (each tag once, only from ranges of this
consumer's fetches that are not given up), buffers them until the next
``fetch()`` call, and lists the tags that may sit in the in-flight hash without
their announcement having arrived (a dropped pub/sub connection), so that a
reconcile script can read them back.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

__all__ = ["PushLedger", "split_located"]


def split_located(value: bytes) -> tuple[str, bytes]:
    """``(list name, element)`` of a located element ``<len>:<list><element>``."""
    colon = value.index(b":")
    end = colon + 1 + int(value[:colon])
    return value[colon + 1 : end].decode(), value[end:]


@dataclass(slots=True)
class _Range:
    first: int  # first tag the fetch reserved
    last: int  # last tag it reserved
    push_start: int | None = None  # first tag left for pushes (None: reply not seen yet)
    used_end: int | None = None  # one past the last tag pushes used (None: registered)
    seen: set[int] = field(default_factory=set)
    lost: bool = False  # the fetch's reply was lost: its range is given back
    overdue: bool = False  # found unsettled by one maintenance round already

    def settled(self) -> bool:
        if self.used_end is None or self.push_start is None:
            return False
        return all(t in self.seen for t in range(self.push_start, self.used_end))

    def unseen(self) -> list[int]:
        if self.push_start is None:
            return []
        end = self.last + 1 if self.used_end is None else self.used_end
        return [t for t in range(self.push_start, end) if t not in self.seen]


class PushLedger:
    """Ranges of tags open to pushes, tags seen, and pushed messages not yet returned."""

    def __init__(self) -> None:
        self._ranges: dict[int, _Range] = {}
        self.current: int | None = None  # first tag of the range registered now
        self.buffer: deque[tuple[str, str, bytes]] = deque()  # (tag, list, element)
        self.received = 0  # pushed messages taken (counter for tests and stats)

    def reserve(self, first: int, limit: int) -> None:
        """A fetch with tags ``first .. first+limit-1`` is about to be sent."""
        self._ranges[first] = _Range(first, first + limit - 1)

    def fetched(self, first: int, taken: int, *, registered: bool, previous_room: bytes) -> None:
        """The fetch reserved at ``first`` answered: it took ``taken`` messages,
        registered the consumer idle or not, and replaced the registration
        ``previous_room`` (``b''``: there was none)."""
        if self.current is not None and self.current != first:
            self._close(self.current, previous_room)
        if registered:
            self._ranges[first].push_start = first + taken
            self.current = first
        else:
            self._ranges.pop(first, None)
            self.current = None

    def stop(self) -> list[str]:
        """Take no more pushes; return the tags of those buffered (to requeue)."""
        for ranged in self._ranges.values():
            ranged.lost = True
        self.current = None
        tags = [tag for tag, _, _ in self.buffer]
        self.buffer.clear()
        return tags

    def _close(self, first: int, room: bytes) -> None:
        closing = self._ranges.get(first)
        if closing is None:
            return
        closing.used_end = int(room.split()[0]) if room else closing.last + 1
        if closing.settled():
            del self._ranges[first]

    def give_back(self, first: int) -> list[str]:
        """The fetch reserved at ``first`` has an unknown outcome: stop taking its
        pushes and return its tags not seen (to requeue)."""
        lost = self._ranges.get(first)
        if lost is None:
            return []
        lost.lost = True
        if self.current == first:
            self.current = None
        return [str(t) for t in range(lost.first, lost.last + 1) if t not in lost.seen]

    def forget_lost(self, first: int) -> None:
        """The tags of a given-back range went back to their queues."""
        self._ranges.pop(first, None)

    def take(self, tag: str, list_name: str, element: bytes) -> bool:
        """Buffer a pushed message unless its tag was taken or given up before."""
        number = int(tag)
        for pushed_to in self._ranges.values():
            if pushed_to.first <= number <= pushed_to.last:
                if pushed_to.lost or number in pushed_to.seen:
                    return False
                pushed_to.seen.add(number)
                if pushed_to.used_end is not None and pushed_to.settled():
                    del self._ranges[pushed_to.first]
                self.buffer.append((tag, list_name, element))
                self.received += 1
                return True
        return False

    def take_announcement(self, data: bytes) -> bool:
        """:meth:`take` a push channel message ``<tag>:<located element>``."""
        colon = data.index(b":")
        list_name, element = split_located(data[colon + 1 :])
        return self.take(data[:colon].decode(), list_name, element)

    def suspects(self, *, with_current: bool) -> tuple[list[int], list[str]]:
        """Ranges to read back and their tags that pushes may have used without the
        announcement arriving: every closed range found unsettled at the previous
        call too, or every range (the registered one included) when
        ``with_current`` (after a reconnect)."""
        firsts: list[int] = []
        tags: list[str] = []
        for first, pending in self._ranges.items():
            if pending.lost or pending.push_start is None:
                continue
            if not with_current:
                if first == self.current:
                    continue
                if not pending.overdue:
                    pending.overdue = True
                    continue
            firsts.append(first)
            tags += [str(t) for t in pending.unseen()]
        return firsts, tags

    def reconciled(self, firsts: list[int], *, with_current: bool, room: bytes) -> None:
        """A reconcile script read the :meth:`suspects` back (and unregistered the
        consumer when ``with_current``, ``room`` being what it dropped): the ranges
        ``firsts`` are settled; what it found was passed to :meth:`take` first."""
        if with_current and self.current is not None:
            self._close(self.current, room)
            self.current = None
        for first in firsts:
            self._ranges.pop(first, None)
