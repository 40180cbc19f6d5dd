"""The push ledger: which announcements of pushed messages a Redis consumer takes."""

from __future__ import annotations

from celeriac.transports._redis_pushed import PushLedger, split_located


def announce(tag: int, body: bytes = b"e") -> bytes:
    return b"%d:1:q%s" % (tag, body)


def test_split_located() -> None:
    assert split_located(b"3:abcXYZ") == ("abc", b"XYZ")
    assert split_located(b"0:rest") == ("", b"rest")


def test_takes_each_announced_tag_of_a_registered_range_once() -> None:
    ledger = PushLedger()
    ledger.reserve(0, 4)
    ledger.fetched(0, 1, registered=True, previous_room=b"")
    assert ledger.take_announcement(announce(1))
    assert not ledger.take_announcement(announce(1))  # a duplicate
    assert not ledger.take_announcement(announce(9))  # not a tag of ours
    assert list(ledger.buffer) == [("1", "q", b"e")] and ledger.received == 1


def test_an_announcement_may_arrive_before_the_fetch_reply() -> None:
    ledger = PushLedger()
    ledger.reserve(0, 4)
    assert ledger.take_announcement(announce(2))
    ledger.fetched(0, 2, registered=True, previous_room=b"")
    assert ledger.suspects(with_current=True)[1] == ["3"]


def test_a_replaced_range_is_checked_after_one_quiet_round() -> None:
    ledger = PushLedger()
    ledger.reserve(0, 4)
    ledger.fetched(0, 0, registered=True, previous_room=b"")
    ledger.reserve(4, 4)
    # the next fetch replaced a registration whose next free tag was 2: 0 and 1 used
    ledger.fetched(4, 0, registered=True, previous_room=b"2 3")
    assert ledger.take_announcement(announce(0))
    assert ledger.suspects(with_current=False) == ([], [])  # first round: wait
    firsts, tags = ledger.suspects(with_current=False)
    assert (firsts, tags) == ([0], ["1"])
    ledger.reconciled(firsts, with_current=False, room=b"")
    assert not ledger.take_announcement(announce(1))  # late: read back already


def test_a_fully_announced_replaced_range_is_forgotten() -> None:
    ledger = PushLedger()
    ledger.reserve(0, 2)
    ledger.fetched(0, 0, registered=True, previous_room=b"")
    assert ledger.take_announcement(announce(0))
    assert ledger.take_announcement(announce(1))
    ledger.reserve(2, 2)
    ledger.fetched(2, 2, registered=False, previous_room=b"")  # room ran out: all used
    ledger.suspects(with_current=False)
    assert ledger.suspects(with_current=False) == ([], [])


def test_given_back_and_stopped_ranges_take_nothing() -> None:
    ledger = PushLedger()
    ledger.reserve(0, 3)
    assert ledger.take_announcement(announce(1))
    assert ledger.give_back(0) == ["0", "2"]
    assert not ledger.take_announcement(announce(2))
    ledger.reserve(3, 2)
    ledger.fetched(3, 0, registered=True, previous_room=b"")
    assert ledger.take_announcement(announce(3))
    assert ledger.stop() == ["1", "3"]
    assert not ledger.take_announcement(announce(4)) and not ledger.buffer
