"""basic.publish frames written by celeriac's sync publisher, byte for byte as py-amqp
(kombu, so Celery) writes them, and read back by the libraries on the other side."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import amqp  # type: ignore[import-untyped]
import pytest
from amqp.method_framing import frame_writer  # type: ignore[import-untyped]
from amqp.serialization import loads  # type: ignore[import-untyped]
from pamqp import frame as pamqp_frame

from celeriac.protocol.amqp import from_amqp, to_amqp_properties
from celeriac.protocol.amqp_frames import encode_properties, encode_table, publish_frames
from celeriac.protocol.message import build_task_envelope, parse_task_envelope


class _Capture:
    """Just enough of a py-amqp connection and transport for its frame writer."""

    def __init__(self, frame_max: int) -> None:
        self.frame_max = frame_max
        self.bytes_sent = 0
        self.buffer = io.BytesIO()

    def write(self, data: Any) -> None:
        self.buffer.write(bytes(data))


def _py_amqp_publish(channel: int, exchange: str, key: str, props: dict[str, Any],
                     body: bytes, frame_max: int = 131072) -> bytes:
    capture = _Capture(frame_max)
    write = frame_writer(capture, capture)
    message = amqp.Message(body, **props)
    write(1, channel, amqp.spec.Basic.Publish, amqp.serialization.dumps(
        "Bssbb", (0, exchange, key, False, False)), message)
    return capture.buffer.getvalue()


def _py_amqp_props(props: dict[str, Any]) -> dict[str, Any]:
    out = dict(props)
    if "headers" in out:
        out["application_headers"] = out.pop("headers")
    return out


def test_celery_task_messages_encode_exactly_as_py_amqp(
    amqp_task: tuple[str, dict[str, Any]],
) -> None:
    _, message = amqp_task
    env = from_amqp(message["body"]["utf8"].encode(), message["properties"],
                    exchange="", routing_key="celery")
    rebuilt = build_task_envelope(parse_task_envelope(env, {"json"}), queue="celery", exact=True)
    props = to_amqp_properties(rebuilt)
    ours = publish_frames(1, "", "celery", encode_properties(props), rebuilt.body, 131072)
    assert ours == _py_amqp_publish(1, "", "celery", _py_amqp_props(props), rebuilt.body)


def test_every_table_type_matches_py_amqp_and_reads_back() -> None:
    table = {
        "s": "héllo", "b": b"raw", "yes": True, "no": False, "small": -5, "int32": 2147483647,
        "big": 2**40, "neg_big": -(2**40), "f": 1.5, "none": None, "d": Decimal("12.34"),
        "when": datetime(2024, 5, 1, 12, 0, tzinfo=UTC), "nested": {"a": [1, "x", None]},
        "tuple": (1, 2), "empty": {}, "empty_list": [],
    }
    props = {"headers": table}
    ours = encode_properties(props)
    assert ours == amqp.Message(b"", **_py_amqp_props(props))._serialize_properties()
    decoded, _ = loads("F", encode_table(table), 0)
    assert decoded[0]["nested"] == {"a": [1, "x", None]}
    assert decoded[0]["big"] == 2**40


def test_big_body_is_cut_at_frame_max_and_pamqp_reads_it_back() -> None:
    body = bytes(range(256)) * 40  # 10,240 bytes
    props = {"content_type": "application/json", "delivery_mode": 2, "headers": {"k": "v"}}
    ours = publish_frames(3, "ex", "rk", encode_properties(props), body, 4096)
    assert ours == _py_amqp_publish(3, "ex", "rk", _py_amqp_props(props), body, 4096)
    offset, frames = 0, []
    while offset < len(ours):
        used, channel, frame = pamqp_frame.unmarshal(ours[offset:])
        assert channel == 3
        frames.append(frame)
        offset += used
    assert frames[0].exchange == "ex" and frames[0].routing_key == "rk"
    assert frames[1].body_size == len(body)
    assert frames[1].properties.headers == {"k": "v"}
    assert b"".join(f.value for f in frames[2:]) == body
    assert len(frames) == 2 + 3  # 4088-byte chunks


def test_empty_body_has_no_body_frame() -> None:
    ours = publish_frames(1, "", "q", encode_properties({"delivery_mode": 1}), b"", 131072)
    assert ours == _py_amqp_publish(1, "", "q", {"delivery_mode": 1}, b"")


def test_unencodable_values_are_refused() -> None:
    with pytest.raises(ValueError, match="cannot put a object"):
        encode_table({"x": object()})
    with pytest.raises(ValueError, match="longer than 255"):
        encode_properties({"correlation_id": "x" * 300})
