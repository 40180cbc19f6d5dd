"""The signature dict shape."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from celeriac.errors import DecodeError
from celeriac.protocol.signatures import is_signature_dict, normalize_signature_dict, signature_dict


def test_matches_celery_bytes(vector: Any) -> None:
    element = json.loads(vector("redis_link_linkerror")["messages"][0]["raw_list_element"])
    embed = json.loads(base64.b64decode(element["body"]))[2]
    assert embed["callbacks"] == [signature_dict("tasks.add", (10,))]
    assert json.dumps(embed["errbacks"][0]) == json.dumps(signature_dict("tasks.on_err"))


def test_chain_options(vector: Any) -> None:
    element = json.loads(vector("redis_chain")["messages"][0]["raw_list_element"])
    for sig in json.loads(base64.b64decode(element["body"]))[2]["chain"]:
        assert is_signature_dict(sig)
        assert normalize_signature_dict(sig) == sig
        assert set(sig["options"]) == {"task_id", "reply_to"}


@pytest.mark.parametrize(
    "obj",
    [None, [], {"args": []}, {"task": 1}, {"task": "t", "args": 3}, {"task": "t", "kwargs": []}],
)
def test_not_signatures(obj: Any) -> None:
    assert not is_signature_dict(obj)
    with pytest.raises(DecodeError):
        normalize_signature_dict(obj)


def test_partial_signature_is_completed() -> None:
    assert normalize_signature_dict({"task": "t"}) == signature_dict("t")
    assert signature_dict("g", subtask_type="group", immutable=True)["subtask_type"] == "group"
