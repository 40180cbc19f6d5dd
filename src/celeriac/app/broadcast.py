"""Sending a pidbox broadcast (``revoke`` today) from a client process.

Broadcasts are rare admin calls, so the sync face may hop to a short-lived
event loop (DESIGN.md section 2.3 allows a bridge for control): when no loop
runs in this thread the coroutine runs on a fresh one here; inside a running
loop (a sync call from async code) it runs on a fresh loop in a helper thread
that is joined before returning. Each broadcast opens its own transport
connection and closes it, so nothing lingers in the caller's process.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from celeriac.protocol.keys import PIDBOX_EXCHANGE
from celeriac.protocol.pidbox import ControlRequest, control_request_envelope

if TYPE_CHECKING:
    from celeriac.app.core import App

__all__ = ["abroadcast", "broadcast", "run_blocking"]


async def abroadcast(app: App, request: ControlRequest) -> None:
    """Publish ``request`` on the pidbox fanout exchange of the app's broker."""
    if request.clock is None:  # stamped with the app's Lamport clock, as kombu does
        request = replace(request, clock=app.clock.forward())
    envelope = control_request_envelope(request, app.conf.settings.task_serializer
                                        if app.conf.settings.task_serializer != "auth" else "json")
    transport = app.new_transport()
    await transport.connect()
    try:
        await transport.broadcast(PIDBOX_EXCHANGE, envelope)
    finally:
        await transport.close()


def run_blocking(make: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run the coroutine ``make()`` to completion from sync code, loop or no loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(make())
        return
    failure: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(make())
        except BaseException as exc:  # handed to the calling thread
            failure.append(exc)

    helper = threading.Thread(target=target, name="celeriac-broadcast")
    helper.start()
    helper.join()
    if failure:
        raise failure[0]


def broadcast(app: App, request: ControlRequest) -> None:
    """Blocking :func:`abroadcast`."""
    run_blocking(lambda: abroadcast(app, request))
