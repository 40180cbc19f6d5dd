"""Publishing on the async face: confirmed batches on aiormq, unconfirmed frames
on the consuming connection, and the ``confirm_window`` option of the sync face.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import aiormq
from aiormq.abc import ChannelFrame
from pamqp import commands as spec

from celeriac.errors import ConfigurationError, OperationalError
from celeriac.protocol.amqp import to_amqp_properties
from celeriac.protocol.amqp_frames import encode_properties, publish_frames
from celeriac.protocol.envelope import Envelope
from celeriac.transports._amqp_consumer import CHANNEL, ConsumerConnection

__all__ = ["confirm_window", "publish_ahead", "publish_confirmed"]


def confirm_window(value: Any) -> int:
    """The ``confirm_window`` transport option: a whole number >= 1."""
    try:
        window = 0 if isinstance(value, bool) else int(value)
    except (TypeError, ValueError):
        window = 0
    if window < 1:
        raise ConfigurationError(
            f"broker_transport_options confirm_window={value!r} is not a whole number >= 1 "
            "(1: each delay() waits for its confirm; N > 1: up to N unconfirmed)")
    return window


async def publish_confirmed(channel: aiormq.Channel, frame_max: int,
                            envelopes: Sequence[Envelope], masked_url: str) -> None:
    """Publish on the confirm ``channel`` in one write, then wait for every confirm.

    The frames are encoded by :mod:`celeriac.protocol.amqp_frames` and
    handed to aiormq's writer as one chunk, with a confirmation future per
    delivery tag registered where aiormq resolves them (its channel's
    ``confirmations``, under its publish lock): one socket write per batch
    instead of one per message, and no per-message task. aiormq rejects
    those futures if the channel or connection closes.
    """
    futures: list[asyncio.Future[Any]] = []
    parts: list[bytes] = []
    async with channel.lock:
        for env in envelopes:
            parts.append(publish_frames(
                channel.number, env.exchange, env.routing_key,
                encode_properties(to_amqp_properties(env)), env.body, frame_max))
        for _ in envelopes:
            channel.delivery_tag += 1
            future = channel.create_future()
            channel.confirmations[channel.delivery_tag] = future
            futures.append(future)
        await channel.write_queue.put(ChannelFrame(payload=b"".join(parts),
                                                   should_close=False))
    outcomes = await asyncio.gather(*futures, return_exceptions=True)
    refused = 0
    for outcome in outcomes:
        if isinstance(outcome, spec.Basic.Ack):
            continue
        if isinstance(outcome, aiormq.exceptions.DeliveryError | spec.Basic.Nack):
            refused += 1
        elif isinstance(outcome, BaseException):
            raise outcome
    if refused:
        keys = sorted({env.routing_key for env in envelopes})
        raise OperationalError(f"RabbitMQ at {masked_url} refused (nacked) "
                               f"{refused} of {len(envelopes)} message(s) for {keys}")


def publish_ahead(consumer: ConsumerConnection | None, envelopes: Sequence[Envelope]) -> bool:
    """Write ``envelopes`` on the consuming channel, unconfirmed, in one write.

    ``False`` (nothing written) when ``consumer`` is missing, not open, lost or
    blocked by a resource alarm (see ``AMQPTransport.publish_ahead_of_acks``).
    """
    if consumer is None or not consumer.opened or consumer.blocked \
            or consumer.lost is not None:
        return False
    frame_max = consumer.frame_max
    consumer.publish(b"".join([
        publish_frames(CHANNEL, env.exchange, env.routing_key,
                       encode_properties(to_amqp_properties(env)), env.body, frame_max)
        for env in envelopes]))
    return True
