"""What celeriac's own consumer reads from RabbitMQ and writes back (protocol/amqp_wire.py):
frames captured from a real RabbitMQ 3.10, tables as py-amqp (Celery's client) reads
them, any chunking of the socket stream, and client frames identical to pamqp's."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from amqp.serialization import dumps, loads  # type: ignore[import-untyped]
from pamqp import commands
from pamqp import frame as pamqp_frame
from pamqp.header import ContentHeader
from pamqp.heartbeat import Heartbeat

from celeriac.protocol import amqp_wire as wire
from celeriac.protocol.amqp import from_amqp
from celeriac.protocol.amqp_frames import encode_properties, encode_table, publish_frames
from celeriac.protocol.message import parse_task_envelope

VECTORS = Path("/work/shared/protocol/vectors")

#: RabbitMQ 3.10 -> consumer, captured: qos-ok, consume-ok (tag "ctag"), the
#: delivery of Celery's ``add.delay(2, 3)`` (vector amqp_delay_add, published by
#: py-amqp with kombu's properties), connection.close-ok.
CAPTURED_DELAY_ADD = bytes.fromhex(
    "01000100000004003c000bce01000100000009003c00150463746167ce0100010000001d003c003c046374"
    "61670000000000000001000009636170747572652e71ce020001000001c8003c00000000000000000051fe"
    "00106170706c69636174696f6e2f6a736f6e057574662d3800000153046c616e6753000000027079047461"
    "736b53000000097461736b732e616464026964530000002438613562353665632d326339652d346461652d"
    "393338312d66376336633038373737623906736861646f775603657461560765787069726573560567726f"
    "7570560b67726f75705f696e64657856077265747269657349000000000974696d656c696d697441000000"
    "02565607726f6f745f6964530000002438613562353665632d326339652d346461652d393338312d663763"
    "36633038373737623909706172656e745f696456086172677372657072530000000628322c2033290a6b77"
    "617267737265707253000000027b7d066f726967696e530000000a67656e3938323040766d0d69676e6f72"
    "655f726573756c747400157265706c616365645f7461736b5f6e657374696e6749000000000f7374616d70"
    "65645f6865616465727356067374616d7073460000000002002438613562353665632d326339652d346461"
    "652d393338312d6637633663303837373762392432303765383937312d643430632d333638312d62653539"
    "2d366436316336396135643834ce030001000000515b5b322c20335d2c207b7d2c207b2263616c6c626163"
    "6b73223a206e756c6c2c20226572726261636b73223a206e756c6c2c2022636861696e223a206e756c6c2c"
    "202263686f7264223a206e756c6c7d5dce01000000000004000a0033ce"
)

#: RabbitMQ 3.10 -> consumer, captured: consume-ok, then a message the broker
#: dead-lettered (TTL expired): its own ``x-death`` table (``l`` count, ``T`` time,
#: arrays), message_id, timestamp, type, app_id; then connection.close-ok.
CAPTURED_X_DEATH = bytes.fromhex(
    "01000100000009003c00150463746167ce01000100000020003c003c04637461670000000000000001000"
    "00c636170747572652e64656164ce0200010000012f003c0000000000000000000120e80000010e016b4900"
    "00000107782d64656174684100000099460000009405636f756e746c000000000000000106726561736f6e"
    "530000000765787069726564057175657565530000000b636170747572652e74746c0474696d6554000000"
    "006b0186250865786368616e676553000000000c726f7574696e672d6b6579734100000010530000000b63"
    "6170747572652e74746c136f726967696e616c2d65787069726174696f6e5300000005363030303016782d"
    "66697273742d64656174682d65786368616e6765530000000013782d66697273742d64656174682d717565"
    "7565530000000b636170747572652e74746c14782d66697273742d64656174682d726561736f6e53000000"
    "0765787069726564026d31000000006553f10001740161ce0300010000000178ce01000000000004000a00"
    "33ce"
)


def _events(stream: bytes, chunk: int = 0) -> list[Any]:
    reader = wire.FrameReader()
    if not chunk:
        return reader.feed(stream)
    out: list[Any] = []
    for at in range(0, len(stream), chunk):
        out += reader.feed(stream[at:at + chunk])
    return out


@pytest.mark.parametrize("chunk", [0, 1, 7, 64, 300])
def test_celery_delay_add_as_rabbitmq_delivers_it(chunk: int) -> None:
    vector = json.loads((VECTORS / "amqp_delay_add.json").read_text())
    events = _events(CAPTURED_DELAY_ADD, chunk)
    assert [type(e).__name__ for e in events] == ["Method", "Method", "Delivered", "Method"]
    assert [events[0].key, events[1].key, events[3].key] == [
        wire.BASIC_QOS_OK, wire.BASIC_CONSUME_OK, wire.CONNECTION_CLOSE_OK]
    delivered = events[2]
    assert (delivered.channel, delivered.consumer_tag, delivered.delivery_tag,
            delivered.redelivered, delivered.exchange, delivered.routing_key) == (
        1, "ctag", 1, False, "", "capture.q")
    assert delivered.properties == vector["properties"]
    assert delivered.body == vector["body"]["utf8"].encode()
    envelope = from_amqp(delivered.body, delivered.properties, routing_key="capture.q")
    message = parse_task_envelope(envelope, {"json"})
    assert (message.task, message.args) == ("tasks.add", (2, 3))


def test_broker_written_x_death_and_rarer_properties() -> None:
    events = _events(CAPTURED_X_DEATH, 5)
    delivered = events[1]
    props = delivered.properties
    assert props["message_id"] == "m1" and props["type"] == "t" and props["app_id"] == "a"
    assert props["timestamp"] == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    death = props["headers"]["x-death"][0]
    assert death["count"] == 1 and death["reason"] == "expired"
    assert death["routing-keys"] == ["capture.ttl"]
    assert isinstance(death["time"], datetime) and death["time"].tzinfo is not None
    assert props["headers"]["x-first-death-queue"] == "capture.ttl"
    assert delivered.body == b"x"


TABLE: dict[str, Any] = {
    "s": "héllo", "i": 7, "neg": -2**31 + 1, "big": 2**40, "t": True, "f": False,
    "none": None, "d": 1.5, "nested": {"a": [1, "b", None, {"c": 2.25}]},
    "dec": Decimal("3.14"), "when": datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
}


def test_tables_read_as_py_amqp_reads_them() -> None:
    for raw in (encode_table(TABLE), dumps("F", [TABLE])):
        ours, end = wire.decode_table(raw)
        assert end == len(raw)
        theirs = loads("F", raw, 0)[0][0]
        assert ours == theirs | {"when": TABLE["when"]}  # py-amqp gives a naive datetime
        assert ours == TABLE


def test_every_field_type_rabbitmq_may_send() -> None:
    raw = (b"\x01bb\xfe" b"\x01BB\xfe" b"\x01ss\xff\xfe" b"\x01uu\xff\xfe" b"\x01ii\xff\xff\xff\xff"
           b"\x01ll\xff\xff\xff\xff\xff\xff\xff\xfe" b"\x01ff\x3f\xc0\x00\x00"
           b"\x01xx\x00\x00\x00\x02\x00\xff")
    table, _ = wire.decode_table(len(raw).to_bytes(4, "big") + raw)
    assert table == {"b": -2, "B": 254, "s": -2, "u": 65534, "i": 2**32 - 1, "l": -2,
                     "f": 1.5, "x": b"\x00\xff"}
    with pytest.raises(wire.FrameError):
        wire.decode_table(b"\x00\x00\x00\x03\x01k?")


def test_big_body_in_many_frames_and_heartbeats_between() -> None:
    body = bytes(range(256)) * 1000
    props = {"content_type": "application/json", "headers": {"id": "x"}, "priority": 3}
    publish = publish_frames(1, "ex", "rk", encode_properties(props), body, 4096)
    deliver = pamqp_frame.marshal(commands.Basic.Deliver(
        consumer_tag="c1", delivery_tag=2**40, redelivered=True, exchange="ex",
        routing_key="rk"), 1)
    # publish_frames = method frame + header + bodies: swap the method for a deliver.
    method_size = 7 + int.from_bytes(publish[3:7], "big") + 1
    stream = (pamqp_frame.marshal(Heartbeat(), 0) + deliver + publish[method_size:]
              + pamqp_frame.marshal(Heartbeat(), 0))
    for chunk in (0, 1000, 4103):
        events = _events(stream, chunk)
        assert events[0] == wire.HEARTBEAT and events[2] == wire.HEARTBEAT
        delivered = events[1]
        assert (delivered.consumer_tag, delivered.delivery_tag, delivered.redelivered) == (
            "c1", 2**40, True)
        assert delivered.properties == props and delivered.body == body


def test_empty_body_and_broken_streams() -> None:
    deliver = pamqp_frame.marshal(commands.Basic.Deliver("c", 1, False, "", "q"), 1)
    header = pamqp_frame.marshal(ContentHeader(0, 0), 1)
    assert _events(deliver + header)[0].body == b""
    with pytest.raises(wire.FrameError):
        _events(header)  # a content header with no deliver before it
    with pytest.raises(wire.FrameError):
        _events(deliver[:-1] + b"\x00")  # no frame-end octet


@pytest.mark.parametrize(("ours", "pamqp_method", "channel"), [
    (wire.qos_frame(1, 64, True), commands.Basic.Qos(prefetch_count=64, global_=True), 1),
    (wire.consume_frame(1, "celery", "t.1"),
     commands.Basic.Consume(queue="celery", consumer_tag="t.1"), 1),
    (wire.cancel_frame(1, "t.1"), commands.Basic.Cancel("t.1"), 1),
    (wire.ack_frame(1, 2**33, True), commands.Basic.Ack(2**33, True), 1),
    (wire.reject_frame(1, 5, False), commands.Basic.Reject(5, False), 1),
    (wire.channel_open_frame(1), commands.Channel.Open(), 1),
    (wire.channel_close_ok_frame(1), commands.Channel.CloseOk(), 1),
    (wire.open_frame("/v h"), commands.Connection.Open(virtual_host="/v h"), 0),
    (wire.tune_ok_frame(2047, 131072, 60),
     commands.Connection.TuneOk(channel_max=2047, frame_max=131072, heartbeat=60), 0),
    (wire.close_frame(0, 200, "bye"), commands.Connection.Close(200, "bye", 0, 0), 0),
    (wire.close_ok_frame(), commands.Connection.CloseOk(), 0),
])
def test_client_frames_are_what_pamqp_writes(ours: bytes, pamqp_method: Any,
                                             channel: int) -> None:
    assert ours == pamqp_frame.marshal(pamqp_method, channel)


def test_start_ok_logs_in_with_plain() -> None:
    frame = wire.start_ok_frame({"product": "celeriac"}, "guest", "pw")
    _, _, method = pamqp_frame.unmarshal(frame)
    assert method.mechanism == "PLAIN" and method.locale == "en_US"
    assert method.response == "\x00guest\x00pw"
    assert method.client_properties == {"product": "celeriac"}
