"""A call of a task from its template is byte for byte the message built in full.

``TaskCallTemplate`` (the message side) and ``element_template`` (kombu's
Redis element) are what a ``delay()`` with no options is made from; whatever
the arguments, the element must equal ``encode_element(build_task_envelope(...))``
for the same id and delivery tag, or the template must say it cannot render it
(``None``) so that the full encoder is used.
"""

from __future__ import annotations

import math
import os
import uuid
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from celeriac.protocol._ids import uuid4_str, uuid4_strs
from celeriac.protocol.kombu_json import decode_element, element_template, encode_element
from celeriac.protocol.message import (
    TaskCallTemplate,
    TaskMessage,
    build_task_envelope,
    message_with,
    parse_task_envelope,
)

ACCEPT = ("application/json", "application/x-python-serialize")

BASE = TaskMessage(task="tests.t", id="11111111-2222-4333-8444-555555555555",
                   origin="gen1@host", ignore_result=True, reply_to="r-1",
                   timelimit=(10, 5), shadow="shown", priority=3)

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


def _full(msg: TaskMessage, task_id: str, args: tuple[Any, ...], kwargs: dict[str, Any],
          tag: str, **build: Any) -> bytes:
    root = {"root_id": task_id} if msg.root_id in (None, msg.id) else {}
    one = message_with(msg, id=task_id, args=args, kwargs=kwargs, **root)
    envelope = build_task_envelope(one, queue="q", **build)
    return encode_element(replace(envelope, delivery_tag=tag))


def _templated(template: TaskCallTemplate, task_id: str, args: tuple[Any, ...],
               kwargs: dict[str, Any], tag: str) -> bytes:
    cut = element_template(template.prototype, template.varying)
    assert cut is not None
    correlation_id, body, values = template.row(task_id, args, kwargs)
    element = cut.render(correlation_id, body, values, tag)
    if element is None:  # a value only the stdlib encoder writes as kombu does
        element = encode_element(replace(template.batch(task_id, args, kwargs).envelope(0),
                                          delivery_tag=tag))
    return element


@settings(max_examples=150, deadline=None)
@given(args=st.lists(_json, max_size=4).map(tuple),
       kwargs=st.dictionaries(st.text(min_size=1), _json, max_size=3))
def test_templated_element_is_the_full_element(args: tuple[Any, ...],
                                               kwargs: dict[str, Any]) -> None:
    template = TaskCallTemplate(BASE, queue="q")
    task_id, tag = uuid4_str(), uuid4_str()
    assert _templated(template, task_id, args, kwargs, tag) == _full(BASE, task_id, args, kwargs,
                                                                     tag)


@pytest.mark.parametrize("args", [
    (1, "x"), ("é\u2028", {"k": [1.5, None]}), (2**70,), (math.nan,), ("\ud800",),
    (uuid.UUID(int=5),), (b"\xff",),
])
@pytest.mark.parametrize("build", [
    {}, {"compression": "zlib"}, {"serializer": "pickle"}, {"exchange": "ex"},
], ids=["json", "zlib", "pickle", "exchange"])
def test_unusual_values_and_codecs(args: tuple[Any, ...], build: dict[str, Any]) -> None:
    template = TaskCallTemplate(BASE, queue="q", **build)
    task_id, tag = "id-é-\"quoted\"", uuid4_str()
    kwargs = {"n": args[0]}
    element = _templated(template, task_id, args, kwargs, tag)
    full = _full(BASE, task_id, args, kwargs, tag, **build)
    if build.get("serializer") == "pickle":  # equal values (pickle's bytes may differ)
        assert decode_element(element).headers == decode_element(full).headers
    else:
        assert element == full
    msg = parse_task_envelope(decode_element(element), ACCEPT)
    assert msg.id == task_id and msg.root_id == task_id
    assert msg.argsrepr == repr(args)


@pytest.mark.parametrize("msg", [BASE, message_with(BASE, root_id="root-1", parent_id="p-1")],
                         ids=["own-root", "in-a-tree"])
def test_the_envelope_of_a_call_is_the_full_envelope(msg: TaskMessage) -> None:
    # what transports without a template of their own (AMQP, memory, SQLite) publish
    template = TaskCallTemplate(msg, queue="q", exchange="ex")
    task_id = uuid4_str()
    made = template.batch(task_id, (1, "a"), {"k": None}).envelope(0)
    root = {"root_id": task_id} if msg.root_id is None else {}
    full = build_task_envelope(message_with(msg, id=task_id, args=(1, "a"), kwargs={"k": None},
                                            **root), queue="q", exchange="ex")
    assert made == full
    assert list(made.headers.items()) == list(full.headers.items())  # the AMQP table order


def test_a_call_in_a_tree_keeps_its_root() -> None:
    child = message_with(BASE, root_id="root-1", parent_id="parent-1")
    template = TaskCallTemplate(child, queue="q")
    assert "root_id" not in template.varying
    task_id, tag = uuid4_str(), uuid4_str()
    assert _templated(template, task_id, (1,), {}, tag) == _full(child, task_id, (1,), {}, tag)
    msg = parse_task_envelope(decode_element(_templated(template, task_id, (1,), {}, tag)),
                              ACCEPT)
    assert (msg.root_id, msg.parent_id) == ("root-1", "parent-1")


def test_only_protocol_2_with_default_reprs() -> None:
    with pytest.raises(ValueError):
        TaskCallTemplate(message_with(BASE, protocol=1), queue="q")
    with pytest.raises(ValueError):
        TaskCallTemplate(message_with(BASE, argsrepr="(...)"), queue="q")


def test_uuid4_strings_are_version_4_and_unique() -> None:
    made = uuid4_strs(3000) + [uuid4_str() for _ in range(3000)]
    assert len(set(made)) == len(made)
    for text in made:
        value = uuid.UUID(text)
        assert value.version == 4 and value.variant == uuid.RFC_4122 and str(value) == text


def test_a_forked_child_does_not_hand_out_its_parents_ids() -> None:
    uuid4_str()  # the stock is filled here, before the fork
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, to the parent
        try:
            os.write(write, ",".join(uuid4_str() for _ in range(50)).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = set(pipe.read().split(","))
    os.waitpid(pid, 0)
    parent = {uuid4_str() for _ in range(50)}
    assert len(child) == 50 and not child & parent
