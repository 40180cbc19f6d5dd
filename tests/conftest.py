"""Server fixtures for every test package: real Redis and RabbitMQ, started if down.

In CI (``CI=true``) and everywhere else a server that cannot be reached fails the
test that needs it; nothing is skipped (see tests/_servers.py). The fixtures are
defined once, here, so a test session leases one Redis database and one
RabbitMQ vhost however many packages use them.
"""

import sys

from tests import _servers
from tests._servers import amqp_url, rabbitmq_vhost, redis_db, redis_url

# Some packages put tests/ on sys.path and import ``_servers``: make that the
# same module object, so its leases and locks are shared.
sys.modules.setdefault("_servers", _servers)

__all__ = ["amqp_url", "rabbitmq_vhost", "redis_db", "redis_url"]
