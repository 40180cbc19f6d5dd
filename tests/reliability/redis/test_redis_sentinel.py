"""Worker and client find the primary through Redis Sentinel (``sentinel://``).

A primary, one replica and two sentinels run on their own loopback ports in the
test's temp dir (sentinels are ``redis-server <conf> --sentinel``, so Debian's
separate ``redis-sentinel`` package is not needed). The broker and result URLs
name only the sentinels; ``master_name`` comes from the transport options.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from _rel_support import Project
from tests.helpers.procs import run_python, wait_until
from tests.helpers.redis_servers import HOST, RedisServer, Sentinel

from celeriac.protocol import keys

pytestmark = pytest.mark.redis

MASTER = "mymaster"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[RedisServer, RedisServer, list[Sentinel]]]:
    servers: list[RedisServer] = []
    try:
        primary = RedisServer(tmp_path / "primary", name="primary")
        servers.append(primary)
        primary.start()
        replica = RedisServer(tmp_path / "replica", ["--replicaof", HOST, str(primary.port)],
                              name="replica")  # fmt: skip
        servers.append(replica)
        replica.start()
        sentinels = [Sentinel(tmp_path / f"sentinel{i}", MASTER, primary.port, name=f"s{i}")
                     for i in (1, 2)]  # fmt: skip
        for sentinel in sentinels:
            servers.append(sentinel)
            sentinel.start()
        for sentinel in sentinels:
            wait_until(lambda s=sentinel: s.primary() == (HOST, primary.port), timeout=10,
                       what=f"{sentinel.name} names the primary")  # fmt: skip
        yield primary, replica, sentinels
    finally:
        for server in reversed(servers):
            server.stop()


def test_round_trip_through_sentinels(
    tmp_path: Path, cluster: tuple[RedisServer, RedisServer, list[Sentinel]]
) -> None:
    primary, replica, sentinels = cluster
    url = ";".join(f"sentinel://{HOST}:{s.port}" for s in sentinels)
    project = Project(tmp_path, url)
    project.write(master_name=MASTER)
    with (tmp_path / "rel_tasks.py").open("a") as module:
        module.write(f"app.conf.result_backend_transport_options = {{'master_name': {MASTER!r}}}\n")
    # The tasks record runs with a plain client, so point that one at the primary.
    text = (tmp_path / "rel_tasks.py").read_text()
    (tmp_path / "rel_tasks.py").write_text(text.replace(
        "redis.Redis.from_url(URL,", f"redis.Redis.from_url({primary.url!r},"))  # fmt: skip
    try:
        worker = project.worker("-P", "solo")
        assert "sentinel://" in worker.output  # the banner names the broker
        sent = run_python(
            "import json\nfrom rel_tasks import stamp\n"
            "r = stamp.delay(7)\nprint(json.dumps([r.id, r.get(timeout=20)[0]]))\n",
            tmp_path, timeout=60,
        )  # fmt: skip
        assert sent.returncode == 0, sent.stderr + worker.output
        task_id, value = json.loads(sent.stdout)
        assert value == 7
    finally:
        project.cleanup()
    # The result was written to the primary (and replicated), found through the sentinels.
    with primary.client() as client:
        assert client.exists(keys.task_meta_key(task_id))
    with replica.client() as client:
        wait_until(lambda: client.exists(keys.task_meta_key(task_id)), timeout=10,
                   what="the result replicated")  # fmt: skip
