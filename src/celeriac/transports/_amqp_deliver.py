"""Consuming on the async face: deliveries into a link's buffer, fetches out of it,
acks and the dead-letter copy of a rejected message.

The consuming connection (:mod:`._amqp_consumer`) calls :func:`on_delivery`
for each message; :func:`wait_for_deliveries` is the waiting half of
``AMQPTransport.fetch``. Delivery tags are ``(link generation, tag)``: a tag
of a dropped link is never acked on a newer one (see :func:`live_tags`).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import replace

import aiormq
from pamqp import commands as spec

from celeriac.protocol.amqp import from_amqp
from celeriac.protocol.amqp_topology import (
    DEAD_LETTER_EXCHANGE,
    DEAD_LETTER_REASON_HEADER,
    DEATH_HEADER,
    dead_letter_queue,
)
from celeriac.protocol.amqp_wire import Delivered
from celeriac.protocol.envelope import Envelope
from celeriac.transports._amqp_common import AMQPParams, lost_error
from celeriac.transports._amqp_consumer import ConsumerConnection
from celeriac.transports._amqp_link import Link, envelope_of, wake
from celeriac.transports.base import Delivery

__all__ = [
    "ack_frames",
    "consume_queues",
    "dead_letter_envelope",
    "live_tags",
    "on_delivery",
    "read_dead_letters",
    "wait_for_deliveries",
]

logger = logging.getLogger("celeriac.transports.amqp")


async def consume_queues(link: Link, consumer: ConsumerConnection, queues: Sequence[str],
                         limit: int, quorum: bool) -> None:
    """Size the prefetch for ``limit`` more and consume exactly ``queues``.

    Queues no longer asked for are cancelled; their buffered deliveries are
    rejected back to the broker (requeued).
    """
    desired = max(1, len(link.handed) + limit)
    if link.qos == 0 or (not quorum and (desired > link.qos or desired <= link.qos // 2)):
        await consumer.qos(desired, global_=not quorum)
        link.qos = desired
    for queue in queues:
        if queue not in link.consumers:
            tag = f"celeriac.{link.generation}.{len(link.queue_of) + 1}"
            link.consumers[queue] = tag
            link.queue_of[tag] = queue
            await consumer.consume(queue, tag)
    for queue in [q for q in link.consumers if q not in queues]:
        await consumer.cancel(link.consumers.pop(queue))
        for delivery in link.buffer.pop(queue, ()):
            consumer.reject(delivery.tag[1], requeue=True)
            link.settle([delivery.tag[1]])


async def wait_for_deliveries(link: Link, queues: Sequence[str], timeout: float,
                              params: AMQPParams) -> None:
    """Wait up to ``timeout`` until ``link`` holds a delivery of ``queues``;
    raise the lost-connection error if the link breaks meanwhile."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not link.ready(queues):
        if link.broken is not None:
            raise lost_error(params, link.broken)
        remaining = deadline - loop.time()
        if remaining <= 0:
            return
        # A bare future and a timer: woken in the loop turn after the delivery
        # (wait_for on an Event would add a task and two turns per wake-up).
        waiter: asyncio.Future[None] = loop.create_future()
        link.waiters.add(waiter)
        timer = loop.call_later(remaining, wake, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            link.waiters.discard(waiter)


def on_delivery(link: Link, message: Delivered) -> None:
    """One delivery from the consuming connection, straight into the fetch buffer."""
    queue = link.queue_of.get(message.consumer_tag)
    if link.broken is not None or queue is None:
        return
    envelope = from_amqp(message.body, message.properties, exchange=message.exchange,
                         routing_key=message.routing_key)
    tag = message.delivery_tag
    link.unacked.add(tag)
    pending = link.buffer.get(queue)
    if pending is None:
        pending = link.buffer[queue] = deque()
    pending.append(Delivery(envelope, queue, (link.generation, tag), message.redelivered))
    link.wake()


def live_tags(link: Link | None, deliveries: Sequence[Delivery], what: str) -> list[int]:
    """The sorted tags of ``deliveries`` still unacked on ``link``; the others
    came from a lost connection (the broker redelivers them) and are skipped."""
    tags: list[int] = []
    for d in deliveries:
        generation, tag = d.tag
        if link is not None and generation == link.generation and tag in link.unacked:
            tags.append(tag)
        else:
            logger.debug("%s of a delivery from a lost connection ignored (tag %s); "
                         "the broker redelivers it", what, d.tag)
    return sorted(tags)


def ack_frames(link: Link, tags: Sequence[int]) -> list[tuple[int, bool]]:
    """``(tag, multiple)`` acks for sorted ``tags``: one ``multiple`` ack for the
    longest run of the oldest unacked tags that are all in the batch, one each
    for the rest."""
    batch = set(tags)
    prefix = 0
    for tag in sorted(link.unacked):
        if tag not in batch:
            break
        prefix += 1
    frames = [(tags[prefix - 1], True)] if prefix > 1 else []
    frames += [(tag, False) for tag in tags[prefix if prefix > 1 else 0:]]
    return frames


def dead_letter_envelope(delivery: Delivery, reason: str) -> Envelope:
    """The copy of ``delivery`` set aside in its dead queue, with ``reason`` in a header."""
    env = delivery.envelope
    headers = {**env.headers, DEAD_LETTER_REASON_HEADER: reason}
    return replace(env, headers=headers, exchange=DEAD_LETTER_EXCHANGE,
                   routing_key=delivery.queue, expiration=None)


async def read_dead_letters(channel: aiormq.abc.AbstractChannel,
                            queue: str) -> list[tuple[Envelope, str]]:
    """Every message in ``queue``'s dead queue with its reason, read with
    ``basic.get`` and left there: closing ``channel`` (done here) returns them."""
    out: list[tuple[Envelope, str]] = []
    try:
        while True:
            message = await channel.basic_get(dead_letter_queue(queue), no_ack=False)
            if not isinstance(message.delivery, spec.Basic.GetOk):
                break
            env = envelope_of(message)
            headers = dict(env.headers)
            reason = headers.pop(DEAD_LETTER_REASON_HEADER, None)
            if reason is None:
                deaths = headers.get(DEATH_HEADER) or [{}]
                reason = deaths[0].get("reason", "dead-lettered by the broker")
            out.append((replace(env, headers=headers), str(reason)))
    except aiormq.exceptions.ChannelNotFoundEntity:
        return []
    finally:
        if not channel.is_closed:
            await channel.close()  # unacked gets go back to the dead queue
    return out
