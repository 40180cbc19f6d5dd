"""Celery settings that celeriac accepts without acting on them.

A Celery project must keep loading unchanged, so every setting Celery 5
defines is accepted: the ones celeriac uses are fields of
:class:`~celeriac.config.settings.Settings`; the rest are listed here with
Celery's default. They are stored as given (not validated) and can be read
back from ``app.conf``, but nothing in celeriac reads them, and
``app.conf.humanize()`` marks them. They fall in three groups:

* result stores celeriac does not ship (Cassandra, S3, Azure, GCS, CosmosDB,
  Couchbase, ArangoDB, MongoDB, Elasticsearch) and their knobs;
* hooks into Celery's own classes (``worker_consumer``, ``worker_agent``,
  ``worker_autoscaler``, ``worker_timer``) that have no meaning here;
* knobs of Celery internals celeriac replaced (``worker_direct``: celeriac
  has no per-worker direct queues yet; ``worker_pool_putlocks``,
  ``worker_enable_prefetch_count_reduction``, ``broker_failover_strategy``,
  ``result_backend_thread_safe``, the legacy ``redis_host``/``redis_port``/...
  pieces of a Celery 3 Redis result URL, and the SQL ``database_*`` table
  options, because the SQL backend takes its options from the URL).
"""

from __future__ import annotations

from typing import Any

__all__ = ["IGNORED_SETTINGS"]

#: Celery setting name -> Celery's default, for settings celeriac accepts and ignores.
IGNORED_SETTINGS: dict[str, Any] = {
    # hooks into Celery's classes
    "worker_agent": None,
    "worker_autoscaler": "celery.worker.autoscale:Autoscaler",
    "worker_consumer": "celery.worker.consumer:Consumer",
    "worker_timer": None,
    # Celery internals replaced by celeriac's own design
    "worker_direct": False,
    "worker_pool_putlocks": True,
    "worker_enable_prefetch_count_reduction": True,
    "worker_detect_quorum_queues": True,
    "broker_failover_strategy": None,
    "broker_native_delayed_delivery_queue_type": "quorum",
    "result_backend_thread_safe": False,
    "redis_host": None,
    "redis_port": None,
    "redis_db": None,
    "redis_username": None,
    "redis_password": None,
    "redis_backend_health_check_interval": None,
    "database_engine_options": None,
    "database_short_lived_sessions": False,
    "database_table_names": None,
    "database_table_schemas": None,
    "database_create_tables_at_setup": True,
    # result stores celeriac does not ship
    "mongodb_backend_settings": None,
    "couchbase_backend_settings": None,
    "arangodb_backend_settings": None,
    "elasticsearch_retry_on_timeout": None,
    "elasticsearch_max_retries": None,
    "elasticsearch_timeout": None,
    "elasticsearch_save_meta_as_text": True,
    "cassandra_servers": None,
    "cassandra_port": None,
    "cassandra_keyspace": None,
    "cassandra_table": None,
    "cassandra_entry_ttl": None,
    "cassandra_read_consistency": None,
    "cassandra_write_consistency": None,
    "cassandra_auth_provider": None,
    "cassandra_auth_kwargs": None,
    "cassandra_options": {},
    "cassandra_secure_bundle_path": None,
    "s3_access_key_id": None,
    "s3_secret_access_key": None,
    "s3_bucket": None,
    "s3_base_path": None,
    "s3_endpoint_url": None,
    "s3_region": None,
    "azureblockblob_container_name": "celery",
    "azureblockblob_base_path": "",
    "azureblockblob_retry_initial_backoff_sec": 2,
    "azureblockblob_retry_increment_base": 2,
    "azureblockblob_retry_max_attempts": 3,
    "azureblockblob_connection_timeout": 20,
    "azureblockblob_read_timeout": 120,
    "gcs_bucket": None,
    "gcs_project": None,
    "gcs_base_path": "",
    "gcs_ttl": 0,
    "gcs_threadpool_maxsize": 10,
    "cosmosdbsql_database_name": "celerydb",
    "cosmosdbsql_collection_name": "celerycol",
    "cosmosdbsql_consistency_level": "Session",
    "cosmosdbsql_max_retry_attempts": 9,
    "cosmosdbsql_max_retry_wait_time": 30,
}
