"""Exchange emulation: the routing rules of direct, fanout and topic exchanges."""

from __future__ import annotations

import pytest

from celeriac.errors import ConfigurationError
from celeriac.transports._virtual import bindings_for, matches_any, route, topic_matches
from celeriac.transports.base import Binding, QueueSpec


@pytest.mark.parametrize(
    ("pattern", "key", "expected"),
    [
        ("a.b", "a.b", True),
        ("a.b", "a.c", False),
        ("*.b", "a.b", True),
        ("*.b", "b", False),
        ("*.b", "x.y.b", False),
        ("a.#", "a", True),
        ("a.#", "a.b.c", True),
        ("a.#", "b.a", False),
        ("#", "", True),
        ("#", "anything.at.all", True),
        ("#.z", "z", True),
        ("#.z", "x.y.z", True),
        ("a.#.z", "a.z", True),
        ("a.#.z", "a.b.c.z", True),
        ("a.#.z", "a.b.c", False),
        ("a.*.#", "a", False),
        ("a.*.#", "a.b", True),
        ("task.*", "task.sent", True),
        ("task.*", "worker.online", False),
    ],
)
def test_topic_matching(pattern: str, key: str, expected: bool) -> None:
    assert topic_matches(pattern, key) is expected


def test_default_exchange_routes_to_the_queue_named_by_the_key() -> None:
    assert route([Binding("celery", "celery", "celery")], "", "video") == ["video"]


def test_direct_exchange_picks_exact_keys() -> None:
    bindings = [
        Binding("media", "video", "q1"),
        Binding("media", "video", "q2"),
        Binding("media", "image", "q3"),
        Binding("other", "video", "q4"),
    ]
    assert route(bindings, "media", "video") == ["q1", "q2"]
    assert route(bindings, "media", "audio") == []


def test_fanout_ignores_the_key_and_deduplicates() -> None:
    bindings = [
        Binding("bc", "", "q1", "fanout"),
        Binding("bc", "x", "q1", "fanout"),
        Binding("bc", "", "q2", "fanout"),
    ]
    assert route(bindings, "bc", "whatever") == ["q1", "q2"]


def test_topic_exchange() -> None:
    bindings = [Binding("ev", "task.#", "tasks", "topic"), Binding("ev", "*.online", "on", "topic")]
    assert route(bindings, "ev", "task.sent") == ["tasks"]
    assert route(bindings, "ev", "worker.online") == ["on"]
    assert route(bindings, "ev", "worker.offline") == []


def test_exchange_without_bindings_acts_like_the_default_exchange() -> None:
    assert route([], "celery", "celery") == ["celery"]
    assert route([], "celery", "") == []


def test_bindings_for_specs() -> None:
    specs = [
        QueueSpec(name="default"),
        QueueSpec(name="videos", exchange="media", routing_key="video"),
        QueueSpec(name="events", exchange="ev", exchange_type="topic", routing_key="#"),
    ]
    assert bindings_for(specs) == [
        Binding("media", "video", "videos", "direct"),
        Binding("ev", "#", "events", "topic"),
    ]


def test_headers_exchange_is_refused_with_the_alternatives() -> None:
    with pytest.raises(ConfigurationError, match="direct, fanout, topic"):
        bindings_for([QueueSpec(name="q", exchange="h", exchange_type="headers")])


def test_matches_any_without_patterns_matches_everything() -> None:
    assert matches_any((), "x.y")
    assert matches_any(("a.*", "x.*"), "x.y")
    assert not matches_any(("a.*",), "x.y")
