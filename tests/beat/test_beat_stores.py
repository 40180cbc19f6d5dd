"""Every beat store keeps the same promises: one claim per run, one leader, shared entries."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from celeriac import Celery
from celeriac.beat.api import BeatSchedule
from celeriac.beat.stores import (
    BeatStore,
    Claim,
    FileStore,
    MemoryStore,
    RedisStore,
    SqliteStore,
    open_store,
)
from celeriac.errors import ConfigurationError
from celeriac.schedules import crontab

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
KINDS = ["memory", "file", "sqlite", "redis"]


@pytest.fixture(params=KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BeatStore]:
    made: BeatStore
    if request.param == "memory":
        made = MemoryStore()
    elif request.param == "file":
        made = FileStore(str(tmp_path / "state.json"))
    elif request.param == "sqlite":
        made = SqliteStore(f"sqlite:///{tmp_path}/broker.db", "celeriac.beat.test")
    else:
        made = RedisStore(request.getfixturevalue("redis_url"), "celeriac.beat.test")
    yield made
    made.close()


def test_only_the_lease_holder_claims_and_each_run_once(store: BeatStore) -> None:
    assert store.claim("e", T0, "me") is Claim.NOT_LEADER
    assert store.acquire("me", 5.0)
    assert store.claim("e", T0, "me") is Claim.CLAIMED
    assert store.claim("e", T0, "me") is Claim.DONE
    assert store.claim("e", T0 - timedelta(seconds=1), "me") is Claim.DONE
    assert store.claim("e", T0 + timedelta(seconds=1), "me") is Claim.CLAIMED
    assert store.claim("other", T0, "me") is Claim.CLAIMED
    assert store.marks() == {"e": T0 + timedelta(seconds=1), "other": T0}


def test_one_leader_at_a_time_and_release_hands_over(store: BeatStore) -> None:
    assert store.acquire("a", 5.0)
    # another process opens its own lock file
    second = FileStore(store.path) if isinstance(store, FileStore) else store
    assert not second.acquire("b", 5.0)
    assert store.acquire("a", 5.0)  # renewal
    assert second.claim("e", T0, "b") is Claim.NOT_LEADER
    store.release("a")
    assert second.acquire("b", 5.0)
    assert store.claim("e", T0, "a") is Claim.NOT_LEADER
    second.release("b")


@pytest.mark.parametrize("kind", ["memory", "sqlite", "redis"])
def test_a_lapsed_lease_is_taken_over(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    made: BeatStore
    if kind == "memory":
        made = MemoryStore()
    elif kind == "sqlite":
        made = SqliteStore(f"sqlite:///{tmp_path}/broker.db", "celeriac.beat.test")
    else:
        made = RedisStore(request.getfixturevalue("redis_url"), "celeriac.beat.test")
    try:
        assert made.acquire("a", 0.2)
        assert not made.acquire("b", 0.2)
        deadline = time.monotonic() + 5
        while not made.acquire("b", 5.0):
            assert time.monotonic() < deadline, "lease never lapsed"
            time.sleep(0.02)
        assert made.claim("e", T0, "a") is Claim.NOT_LEADER
        assert made.claim("e", T0, "b") is Claim.CLAIMED
    finally:
        made.close()


def test_file_lease_is_freed_when_the_holder_process_dies(tmp_path: Path) -> None:
    path = str(tmp_path / "state.json")
    code = (
        "import sys, time\n"
        "from celeriac.beat.stores import FileStore\n"
        f"s = FileStore({path!r}); assert s.acquire('child', 1.0)\n"
        "print('held', flush=True); time.sleep(60)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "held"
        mine = FileStore(path)
        assert not mine.acquire("me", 1.0)
        child.kill()
        child.wait(10)
        assert mine.acquire("me", 1.0)
        mine.close()
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(10)
        if child.stdout is not None:
            child.stdout.close()


def test_dynamic_entries_change_the_version_and_removal_forgets_the_mark(
    store: BeatStore,
) -> None:
    before = store.version()
    store.put_entry("poll", {"task": "t", "schedule": 5.0})
    assert store.version() != before
    assert store.entries() == {"poll": {"task": "t", "schedule": 5.0}}
    assert store.acquire("me", 5.0)
    assert store.claim("poll", T0, "me") is Claim.CLAIMED
    changed = store.version()
    assert store.remove_entry("poll")
    assert store.version() != changed
    assert store.entries() == {}
    assert "poll" not in store.marks()
    assert not store.remove_entry("poll")


def test_file_store_refuses_a_foreign_file(tmp_path: Path) -> None:
    path = tmp_path / "celerybeat-schedule"
    path.write_bytes(b"\x00\x01not json")
    with pytest.raises(ConfigurationError, match="not a celeriac beat state file"):
        FileStore(str(path)).marks()


def test_open_store_picks_the_broker_store(tmp_path: Path, redis_url: str) -> None:
    def kind(**conf: object) -> str:
        app = Celery("pick", set_as_current=False)
        app.conf.update(conf)
        store = open_store(app)
        store.close()
        return type(store).__name__

    assert kind(broker_url=f"sqlite:///{tmp_path}/b.db") == "SqliteStore"
    assert kind(broker_url=redis_url) == "RedisStore"
    assert kind(broker_url="amqp://guest@127.0.0.1//", result_backend=redis_url) == "RedisStore"
    assert kind(broker_url="memory://") == "MemoryStore"
    assert kind(broker_url="amqp://guest@127.0.0.1//") == "FileStore"
    app = Celery("pick", broker=f"sqlite:///{tmp_path}/b.db", set_as_current=False)
    assert isinstance(open_store(app, path=str(tmp_path / "s.json")), FileStore)


def test_api_adds_lists_and_removes_entries_through_the_store(tmp_path: Path) -> None:
    app = Celery("api", broker=f"sqlite:///{tmp_path}/b.db", set_as_current=False)
    app.conf.timezone = "Europe/Paris"
    app.conf.beat_schedule = {"static": {"task": "t.static", "schedule": 60}}
    with BeatSchedule(app) as beat:
        entry = beat.add_entry(
            "report",
            "t.report",
            crontab(minute=0, hour=7),
            args=[1],
            kwargs={"x": 2},
            options={"queue": "reports"},
        )
        assert entry.schedule.tz.key == "Europe/Paris"
        beat.add_entry("poll", "t.poll", "*/5 * * * *")
    with BeatSchedule(
        Celery("api", broker=f"sqlite:///{tmp_path}/b.db", set_as_current=False)
    ) as other:
        names = {e.name: e for e in other.list_entries()}
        assert set(names) == {"poll", "report"}
        assert names["report"].args == (1,) and names["report"].options == {"queue": "reports"}
        assert names["poll"].schedule == crontab(minute="*/5", tz="Europe/Paris")
        assert other.remove_entry("report")
    with BeatSchedule(app) as beat:
        assert [e.name for e in beat.list_entries()] == ["poll", "static"]


def test_api_rejects_what_cannot_be_stored(tmp_path: Path) -> None:
    app = Celery("api", broker=f"sqlite:///{tmp_path}/b.db", set_as_current=False)
    with BeatSchedule(app) as beat:
        with pytest.raises(ConfigurationError, match="'bad': field 'args': must be JSON"):
            beat.add_entry("bad", "t", 5, args=[object()])
        with pytest.raises(ConfigurationError, match="'cron': field 'schedule': crontab field"):
            beat.add_entry("cron", "t", "0 25 * * *")
        assert beat.list_entries() == []
