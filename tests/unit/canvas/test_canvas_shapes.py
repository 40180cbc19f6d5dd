"""Canvas values: Celery's dict shapes, the messages they become, JSON round trips.

The messages a workflow sends are built with the real producer and compared
byte for byte (ids normalised) with Celery 5.7's captured messages.
"""

from __future__ import annotations

import copy
import json
import os
import pickle
import re
from pathlib import Path
from typing import Any

import pytest

from celeriac import Celery
from celeriac.canvas import (
    Chain,
    Chord,
    Chunks,
    Group,
    Plan,
    Signature,
    XMap,
    XStarmap,
    chain,
    chord,
    group,
    maybe_signature,
    signature,
    signature_from_dict,
)

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _vectors() -> Path:
    override = os.environ.get("CELERIAC_VECTORS")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[4] / "shared" / "protocol" / "vectors"


def _normalise(text: str) -> str:
    seen: dict[str, str] = {}
    return _UUID.sub(lambda m: seen.setdefault(m.group(0), f"<id{len(seen)}>"), text)


def _vector_bodies(case: str) -> list[str]:
    data = json.loads((_vectors() / f"{case}.json").read_text())
    return [m["body_decoded"]["body_utf8"] for m in data["messages"]]


@pytest.fixture
def app(tmp_path: Path) -> Celery:
    app = Celery("t", broker=f"memory://{tmp_path.name}", backend=f"memory://{tmp_path.name}")

    @app.task(name="tasks.add")
    def add(x: int, y: int) -> int:
        return x + y

    @app.task(name="tasks.tsum")
    def tsum(xs: list[int]) -> int:
        return sum(xs)

    @app.task(name="tasks.on_err")
    def on_err(request: Any, exc: Any, tb: Any) -> None:
        return None

    return app


def _bodies(app: Celery, sig: Signature) -> tuple[Plan, list[str], Any]:
    plan = Plan()
    result = sig.prepare(plan, (), {}, {})
    bodies = []
    for send in plan.sends:
        out = app.producer.build(send.name, send.args, send.kwargs, send.options,
                                 app.tasks.get(send.name))
        # compact orjson on the wire; kombu's spacing here so text compares
        bodies.append(json.dumps(json.loads(out.envelope.body), separators=(", ", ": ")))
    return plan, bodies, result


# -- messages equal to Celery's ------------------------------------------------------
def test_chain_message_is_celerys(app: Celery) -> None:
    add = app.tasks["tasks.add"]
    plan, bodies, result = _bodies(app, chain(add.s(1, 2), add.s(3), add.s(4)))
    assert len(bodies) == 1
    assert _normalise(bodies[0]) == _normalise(_vector_bodies("redis_chain")[0])
    # the handle is the LAST step's, parents lead back to the first (the one sent)
    assert result.id == json.loads(bodies[0])[2]["chain"][0]["options"]["task_id"]
    assert result.parent.parent.id == plan.sends[0].options["task_id"]


def test_group_messages_are_celerys(app: Celery) -> None:
    add = app.tasks["tasks.add"]
    plan, bodies, result = _bodies(app, group(add.s(1, 1), add.s(2, 2)))
    expected = sorted(_normalise(b) for b in _vector_bodies("redis_group"))
    assert sorted(_normalise(b) for b in bodies) == expected
    assert [s.options["group_id"] for s in plan.sends] == [result.id, result.id]
    assert [s.options["group_index"] for s in plan.sends] == [0, 1]
    assert [r.id for r in result.results] == [s.options["task_id"] for s in plan.sends]


def test_chord_messages_are_celerys(app: Celery) -> None:
    add, tsum = app.tasks["tasks.add"], app.tasks["tasks.tsum"]
    plan, bodies, result = _bodies(app, chord([add.s(1, 1), add.s(2, 2)], tsum.s()))
    captured = _vector_bodies("redis_chord")
    assert sorted(_normalise(b) for b in bodies) == sorted(_normalise(b) for b in captured)
    gid = result.parent.id
    assert plan.chord_sizes == [(gid, 2)]
    body = json.loads(bodies[0])[2]["chord"]
    assert body["options"]["task_id"] == result.id and body["options"]["group_id"] == gid


def test_link_and_link_error_are_celerys(app: Celery) -> None:
    add, on_err = app.tasks["tasks.add"], app.tasks["tasks.on_err"]
    out = app.producer.build("tasks.add", (2, 3), {},
                             {"link": add.s(10), "link_error": on_err.s()}, add)
    spaced = json.dumps(json.loads(out.envelope.body), separators=(", ", ": "))
    assert _normalise(spaced) == _normalise(
        _vector_bodies("redis_link_linkerror")[0])


# -- signature values ---------------------------------------------------------------
def test_signature_is_a_dict_with_celerys_keys(app: Celery) -> None:
    add = app.tasks["tasks.add"]
    sig = add.s(2).set(countdown=3, queue="q")
    assert isinstance(sig, dict)
    assert list(sig) == ["task", "args", "kwargs", "options", "subtask_type", "immutable"]
    assert sig.as_dict() == {"task": "tasks.add", "args": [2], "kwargs": {},
                             "options": {"countdown": 3, "queue": "q"},
                             "subtask_type": None, "immutable": False}
    assert add.si(1, 2).immutable and repr(add.si(1, 2)) == "%tasks.add(1, 2)"


def test_partial_application_prepends(app: Celery) -> None:
    add = app.tasks["tasks.add"]
    assert add.s(2).clone((1,)).args == (1, 2)
    assert add.si(2).clone((1,)).args == (2,)
    assert add.s(y=2).clone((1,), {"z": 3}).kwargs == {"y": 2, "z": 3}
    assert add.s(2)(1) == 3
    plan = Plan()
    add.s(2).prepare(plan, (1,), {}, {"countdown": 1})
    assert plan.sends[0].args == (1, 2) and plan.sends[0].options["countdown"] == 1


def test_clone_is_deep_and_shares_the_app(app: Celery) -> None:
    add = app.tasks["tasks.add"]
    sig = add.s(1)
    sig.link(add.s(5))
    copy_ = sig.clone()
    copy_.options["link"].append(add.s(6))
    assert len(sig.options["link"]) == 1
    assert copy_.app is app and copy.deepcopy(sig).app is app
    restored = pickle.loads(pickle.dumps(chain(add.s(1, 1), add.s(2))))
    assert isinstance(restored, Chain) and restored == chain(add.s(1, 1), add.s(2))


def test_link_link_error_on_error(app: Celery) -> None:
    add, on_err = app.tasks["tasks.add"], app.tasks["tasks.on_err"]
    sig = add.s(1)
    assert sig.link(add.s(2)) == add.s(2)
    sig.link(add.s(2))
    assert sig.on_error(on_err.s()) is sig
    assert sig.options["link"] == [add.s(2)] and sig.options["link_error"] == [on_err.s()]


def test_freeze_assigns_the_id_once(app: Celery) -> None:
    add = app.tasks["tasks.add"]
    sig = add.s(1, 1)
    res = sig.freeze()
    assert sig.id == res.id and sig.freeze().id == res.id
    assert sig.options["reply_to"] == app.oid
    assert add.s(1).freeze("fixed").id == "fixed"


@pytest.mark.parametrize("make", [
    lambda t: t.s(1, 2),
    lambda t: t.si(1, 2).set(queue="q"),
    lambda t: chain(t.s(1, 2), t.s(3)),
    lambda t: group(t.s(1, 1), t.s(2, 2)),
    lambda t: chord([t.s(1, 1), t.s(2, 2)], t.s(3)),
    lambda t: t.s(1, 1) | group(t.s(1), t.s(2)) | t.s(3),
    lambda t: chord([chord([t.s(1, 1)], t.s(1)), t.s(2, 2) | t.s(1)], t.s(3) | t.s(4)),
    lambda t: t.map([1, 2]),
    lambda t: t.starmap([[1, 2]]),
    lambda t: t.chunks([[1, 2], [3, 4]], 1),
], ids=["task", "immutable", "chain", "group", "chord", "upgrade", "nested", "map",
        "starmap", "chunks"])
def test_json_round_trip(app: Celery, make: Any) -> None:
    sig = make(app.tasks["tasks.add"])
    again = signature_from_dict(json.loads(json.dumps(sig)), app=app)
    assert type(again) is type(sig)
    assert again == sig
    assert json.dumps(again) == json.dumps(sig)
    frozen = copy.deepcopy(sig)
    frozen.freeze()
    assert signature_from_dict(json.loads(json.dumps(frozen)), app=app) == frozen


def test_types_from_dicts(app: Celery) -> None:
    add = app.tasks["tasks.add"]
    assert isinstance(maybe_signature(dict(chain(add.s(1, 1), add.s(1))), app=app), Chain)
    assert isinstance(maybe_signature(dict(group(add.s(1, 1))), app=app), Group)
    assert isinstance(maybe_signature(dict(chord([add.s(1, 1)], add.s(1))), app=app), Chord)
    assert isinstance(maybe_signature(dict(add.map([1])), app=app), XMap)
    assert isinstance(maybe_signature(dict(add.starmap([(1, 1)])), app=app), XStarmap)
    assert isinstance(maybe_signature(dict(add.chunks([(1, 1)], 1)), app=app), Chunks)
    assert maybe_signature(None) is None
    plain = signature("tasks.add", args=(1,), countdown=2)
    assert plain.options == {"countdown": 2} and plain.app is app


# -- composition ---------------------------------------------------------------------
def test_chain_flattens_and_upgrades_group_then_task(app: Celery) -> None:
    add = app.tasks["tasks.add"]
    c = chain(add.s(1, 1) | add.s(1), chain(add.s(2)), add.s(3))
    assert [s.args for s in c.tasks] == [(1, 1), (1,), (2,), (3,)]
    upgraded = add.s(1, 1) | group(add.s(1), add.s(2)) | add.s(3)
    assert [type(s) for s in upgraded.tasks] == [Signature, Chord]
    assert isinstance(group(add.s(1, 1)) | add.s(1), Chord)


def test_chord_parts_attach_to_the_last_step_and_to_inner_bodies(app: Celery) -> None:
    add = app.tasks["tasks.add"]
    inner = chord([add.s(1, 1), add.s(2, 2)], add.s(0))
    workflow = chord([inner, add.s(3, 3) | add.s(1), group(add.s(4, 4), add.s(5, 5))], add.s(9))
    plan = Plan()
    result = workflow.prepare(plan, (), {}, {})
    outer_gid = result.parent.id
    inner_gid = inner.header.options["task_id"]
    assert plan.chord_sizes == [(outer_gid, 4), (inner_gid, 2)]
    by_args = {s.args: s.options for s in plan.sends}
    # the inner chord's parts count for the inner chord...
    assert by_args[(1, 1)]["group_id"] == inner_gid
    # ...and its body is part 0 of the outer chord
    assert by_args[(1, 1)]["chord"]["options"]["group_id"] == outer_gid
    assert by_args[(1, 1)]["chord"]["options"]["group_index"] == 0
    # a chain in the header reports from its last step (part 1)
    chain_embed = by_args[(3, 3)]["chain"][0]["options"]
    assert chain_embed["group_id"] == outer_gid and chain_embed["group_index"] == 1
    assert "chord" not in by_args[(3, 3)]
    # a group in the header is flattened into parts 2 and 3
    assert [by_args[(4, 4)]["group_index"], by_args[(5, 5)]["group_index"]] == [2, 3]


def test_empty_group_and_empty_chord(app: Celery) -> None:
    add = app.tasks["tasks.add"]
    plan = Plan()
    res = group([]).prepare(plan, (), {}, {})
    assert plan.sends == [] and res.ready() and res.get() == []
    plan = Plan()
    chord([], add.s(5)).prepare(plan, (), {}, {})
    assert plan.chord_sizes == [] and [s.args for s in plan.sends] == [([], 5)]


def test_chunks_group_and_map_messages(app: Celery) -> None:
    add = app.tasks["tasks.add"]
    members = add.chunks([(1, 1), (2, 2), (3, 3)], 2).group().tasks
    assert [m.task for m in members] == ["celery.starmap", "celery.starmap"]
    assert [m.kwargs["it"] for m in members] == [[(1, 1), (2, 2)], [(3, 3)]]
    plan = Plan()
    add.map([1, 2]).prepare(plan, (), {}, {})
    send = plan.sends[0]
    assert send.name == "celery.map" and send.kwargs["it"] == [1, 2]
    assert send.kwargs["task"]["task"] == "tasks.add"


def test_eager_workflows(tmp_path: Path) -> None:
    app = Celery("e", broker="memory://", backend="memory://", task_always_eager=True)

    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    @app.task
    def tsum(xs: list[int]) -> int:
        return sum(xs)

    assert (add.s(1, 1) | add.s(2)).delay().get() == 4
    assert group(add.s(1, 1), add.s(2, 2)).delay().get() == [2, 4]
    assert chord([add.s(1, 1), add.s(2, 2)], tsum.s()).delay().get() == 6
    assert add.starmap([(1, 2)]).delay().get() == [3]


def test_builtin_tasks_are_registered(app: Celery) -> None:
    for name in ("celery.map", "celery.starmap", "celery.chunks", "celery.group",
                 "celery.chain", "celery.chord", "celery.accumulate", "celery.backend_cleanup"):
        assert name in app.tasks
    add = app.tasks["tasks.add"]
    assert app.tasks["celery.starmap"](add.s().as_dict(), [(1, 2), (3, 4)]) == [3, 7]
    assert app.tasks["celery.chunks"](add.s().as_dict(), [(1, 2), (3, 4)], 1) == [[3], [7]]
    assert app.tasks["celery.accumulate"](1, 2, 3, index=1) == 2

