"""Contract suites: the behaviour every transport and result backend must show.

A new broker or result store is done when it passes its contract. Use them
from a test module by subclassing and naming the URL::

    from celeriac.testing.contracts import BackendContract, TransportContract

    class TestRedisTransport(TransportContract):
        def make_url(self, tmp_path):
            return "redis://127.0.0.1:6379/0"

    class TestRedisBackend(BackendContract):
        expiry_seconds = 1.0
        def make_url(self, tmp_path):
            return "redis://127.0.0.1:6379/0"

Each suite builds its instances through the URL registries (override
``make_transport``/``make_backend`` to build them otherwise) and gives tests
the fixtures ``transport``/``transport_factory`` and ``backend``/
``backend_factory``. Queue, task and group names are fresh per test, so a
shared server needs no flushing. Class attributes tune the suites to the
broker: ``leases``, ``lease_seconds``, ``preserved_fields`` (transports) and
``expiry_seconds`` (backends).
"""

from __future__ import annotations

from celeriac.testing._backend_contract import BackendContract, BackendFactory
from celeriac.testing._transport_contract import TransportContract, TransportFactory

__all__ = ["BackendContract", "BackendFactory", "TransportContract", "TransportFactory"]
