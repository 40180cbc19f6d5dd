"""Server fixtures for every test package: real Redis and RabbitMQ, started if down.

In CI (``CI=true``) and everywhere else a server that cannot be reached fails the
test that needs it; nothing is skipped (see tests/_servers.py).
"""

from tests._servers import amqp_url, rabbitmq_vhost, redis_db, redis_url

__all__ = ["amqp_url", "rabbitmq_vhost", "redis_db", "redis_url"]
