"""The web dashboard (Flower's job, built in): live workers, queues, tasks, charts,
revoke and rate-limit buttons, a JSON API and Prometheus ``/metrics``.

Needs the ``[dashboard]`` extra (starlette, uvicorn, jinja2, prometheus-client).
It may import everything below it (``facade``, ``events``, ``control``, ``app``,
``protocol``); only ``cli`` imports it.

* :func:`~celeriac.dashboard.app.create_app` -- the ASGI app of a Celery app;
* :class:`~celeriac.dashboard.monitor.Monitor` -- its view of the cluster;
* :mod:`~celeriac.dashboard.auth` -- the login rule (loopback or ``--basic-auth``).
"""

from __future__ import annotations

from celeriac.dashboard.app import create_app
from celeriac.dashboard.monitor import Monitor

__all__ = ["Monitor", "create_app"]
