"""Task states."""

from __future__ import annotations

from celeriac.protocol import states


def test_sets() -> None:
    assert {"SUCCESS", "FAILURE", "REVOKED"} == states.READY_STATES
    assert {"FAILURE", "RETRY", "REVOKED"} == states.EXCEPTION_STATES
    assert {"FAILURE", "REVOKED"} == states.PROPAGATE_STATES
    assert states.READY_STATES.isdisjoint(states.UNREADY_STATES)
    assert "PENDING" in states.UNREADY_STATES


def test_precedence_higher_wins() -> None:
    p = states.precedence
    assert p("SUCCESS") > p("FAILURE") > p("REVOKED") > p("STARTED") > p("RECEIVED")
    assert p("RECEIVED") > p("RETRY") > p("PENDING")
    assert p("FAILURE") > p("MY-CUSTOM") > p("REVOKED")
    assert p(None) == p("MY-CUSTOM")


def test_may_overwrite() -> None:
    assert not states.may_overwrite("SUCCESS", "RETRY")
    assert states.may_overwrite("SUCCESS", "SUCCESS")
    assert states.may_overwrite("RETRY", "SUCCESS")
    assert states.may_overwrite(None, "STARTED")
