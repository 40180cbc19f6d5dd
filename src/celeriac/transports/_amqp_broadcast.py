"""Broadcast on the async face: Celery's fanout/topic exchanges (control, events)
and the private queues that subscribe to them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Sequence

import aiormq

from celeriac.protocol.amqp_topology import broadcast_queue, exchange_facts
from celeriac.transports._amqp_common import DeclareExchange, Plan
from celeriac.transports._amqp_link import envelope_of
from celeriac.transports.base import OnBroadcast

__all__ = ["consume_broadcasts", "exchange_plan"]

logger = logging.getLogger("celeriac.transports.amqp")


def exchange_plan(exchange: str) -> Plan:
    """Declaring ``exchange`` as Celery declares it (type and durability by name)."""
    facts = exchange_facts(exchange)
    return Plan((DeclareExchange(exchange, facts.type, facts.durable),), ())


async def consume_broadcasts(channel: aiormq.abc.AbstractChannel, exchange: str,
                             binding_keys: Sequence[str], handler: OnBroadcast) -> None:
    """Feed ``handler`` from a private exclusive queue on ``channel`` bound to
    ``exchange`` with ``binding_keys``, until the channel closes; then close it."""
    try:
        name, arguments = broadcast_queue(exchange, str(uuid.uuid4()))
        await channel.queue_declare(name, exclusive=True, auto_delete=True,
                                    arguments=arguments or None)
        for key in binding_keys or ("#",):
            await channel.queue_bind(name, exchange, routing_key=key)

        async def on_message(message: aiormq.abc.DeliveredMessage) -> None:
            try:
                outcome = handler(envelope_of(message))
                if outcome is not None:
                    await outcome
            except Exception:
                logger.exception("broadcast handler for %r failed", exchange)

        await channel.basic_consume(name, on_message, no_ack=True)
        await asyncio.shield(channel.closing)
    finally:
        if not channel.is_closed:
            with contextlib.suppress(Exception):
                await channel.close()
