"""Declaring a :class:`~._amqp_common.Plan` on the async face (aiormq).

Each entity is declared once per link (remembered by its ``repr``). An entity
that exists with other flags or arguments (``PRECONDITION_FAILED``, which
closes the admin channel) is logged and used as it is: a fresh admin channel
is taken for what follows.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import partial

import aiormq

from celeriac.transports._amqp_common import DeclareExchange, DeclareQueue, Plan
from celeriac.transports._amqp_link import Link

__all__ = ["AdminChannel", "declare_plan"]

logger = logging.getLogger("celeriac.transports.amqp")

#: Returns the link's admin channel, opening a new one if the last was closed.
AdminChannel = Callable[[], Awaitable[aiormq.abc.AbstractChannel]]


async def _declare_exchange(ex: DeclareExchange, channel: aiormq.abc.AbstractChannel) -> None:
    await channel.exchange_declare(ex.name, exchange_type=ex.type, durable=ex.durable,
                                   auto_delete=ex.auto_delete)


async def _declare_queue(q: DeclareQueue, channel: aiormq.abc.AbstractChannel) -> None:
    await channel.queue_declare(q.name, durable=q.durable, exclusive=q.exclusive,
                                auto_delete=q.auto_delete, arguments=q.arguments or None)


async def _tolerant(admin: AdminChannel, name: str,
                    op: Callable[[aiormq.abc.AbstractChannel], Awaitable[None]]) -> None:
    try:
        await op(await admin())
    except aiormq.exceptions.ChannelPreconditionFailed as exc:
        logger.warning("RabbitMQ: %r exists with different flags or arguments; "
                       "using it as it is (%s)", name, exc)


async def declare_plan(link: Link, plan: Plan, admin: AdminChannel) -> None:
    """Declare what ``plan`` holds and ``link`` has not declared yet (exchanges first)."""
    for ex in plan.exchanges:
        if repr(ex) not in link.declared:
            await _tolerant(admin, ex.name, partial(_declare_exchange, ex))
            link.declared.add(repr(ex))
    for q in plan.queues:
        if repr(q) in link.declared:
            continue
        await _tolerant(admin, q.name, partial(_declare_queue, q))
        channel = await admin()
        for exchange, key in q.bindings:
            await channel.queue_bind(q.name, exchange, routing_key=key)
        link.declared.add(repr(q))
