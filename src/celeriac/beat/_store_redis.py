"""The beat store in Redis: shared by every beat process on that Redis.

Keys (celeriac's own, not Celery's), under ``celeriac.beat.<app>.``:

* ``leader``: the lease, a string holding the leader's token, with a TTL.
  Taken with the equivalent of ``SET NX PX`` and renewed by a script that
  compares the token first (a lapsed leader cannot renew someone else's lease).
* ``marks``: a hash, entry name -> due instant of its last run (microseconds).
  The claim script checks the lease token and moves the mark forward in one
  atomic step, so only the current leader can claim, and each run once.
* ``entries``: a hash, entry name -> JSON; ``version``: a counter bumped on
  every edit.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import redis

from celeriac.beat._store_base import BeatStore, Claim
from celeriac.beat.entries import from_us, to_us
from celeriac.errors import OperationalError
from celeriac.transports._redis_conn import make_sync_client, parse_redis_url, translating

__all__ = ["RedisStore"]

_ACQUIRE = """
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not current then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

# 1 claimed, 0 already claimed (mark at or past due), -1 caller is not the leader.
_CLAIM = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return -1
end
local current = redis.call('HGET', KEYS[2], ARGV[2])
if current and tonumber(current) >= tonumber(ARGV[3]) then
  return 0
end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
return 1
"""

_CLAIMS = {1: Claim.CLAIMED, 0: Claim.DONE, -1: Claim.NOT_LEADER}


class RedisStore(BeatStore):
    """Beat state in Redis (see the module docstring)."""

    shared = True

    def __init__(self, url: str, namespace: str) -> None:
        self.target = parse_redis_url(url)
        self.namespace = namespace
        self._client: redis.Redis | None = None
        self._leader_key = f"{namespace}.leader"
        self._marks_key = f"{namespace}.marks"
        self._entries_key = f"{namespace}.entries"
        self._version_key = f"{namespace}.version"

    def describe(self) -> str:
        """``redis <url> (keys celeriac.beat.<app>.*)``."""
        return f"redis {self.target.masked} (keys {self.namespace}.*)"

    @property
    def client(self) -> redis.Redis:
        """The sync redis-py client (created on first use)."""
        if self._client is None:
            self._client = make_sync_client(self.target, retries=1)
        return self._client

    def _script(self, source: str, keys: list[str], args: list[Any], doing: str) -> int:
        with translating(self.target, doing, OperationalError):
            return int(self.client.eval(source, len(keys), *keys, *args))

    def marks(self) -> dict[str, datetime]:
        """See :meth:`BeatStore.marks`."""
        with translating(self.target, "reading beat marks", OperationalError):
            raw: dict[bytes, bytes] = self.client.hgetall(self._marks_key)  # type: ignore[assignment]
        return {name.decode(): from_us(int(value)) for name, value in raw.items()}

    def claim(self, name: str, due: datetime, holder: str) -> Claim:
        """See :meth:`BeatStore.claim`."""
        keys = [self._leader_key, self._marks_key]
        code = self._script(_CLAIM, keys, [holder, name, to_us(due)], "claiming a beat run")
        return _CLAIMS[code]

    def acquire(self, holder: str, seconds: float) -> bool:
        """See :meth:`BeatStore.acquire`."""
        ms = max(1, int(seconds * 1000))
        code = self._script(_ACQUIRE, [self._leader_key], [holder, ms], "taking the beat lease")
        return code == 1

    def release(self, holder: str) -> None:
        """See :meth:`BeatStore.release`."""
        self._script(_RELEASE, [self._leader_key], [holder], "releasing the beat lease")

    def entries(self) -> dict[str, dict[str, Any]]:
        """See :meth:`BeatStore.entries`."""
        with translating(self.target, "reading beat entries", OperationalError):
            raw: dict[bytes, bytes] = self.client.hgetall(self._entries_key)  # type: ignore[assignment]
        return {name.decode(): json.loads(value) for name, value in raw.items()}

    def version(self) -> int:
        """See :meth:`BeatStore.version`."""
        with translating(self.target, "reading the beat entries version", OperationalError):
            value = self.client.get(self._version_key)
        return int(value) if value is not None else 0

    def put_entry(self, name: str, data: Mapping[str, Any]) -> None:
        """See :meth:`BeatStore.put_entry`."""
        text = json.dumps(dict(data), sort_keys=True)
        with translating(self.target, "storing a beat entry", OperationalError):
            pipe = self.client.pipeline(transaction=True)
            pipe.hset(self._entries_key, name, text)
            pipe.incr(self._version_key)
            pipe.execute()

    def remove_entry(self, name: str) -> bool:
        """See :meth:`BeatStore.remove_entry`."""
        with translating(self.target, "removing a beat entry", OperationalError):
            pipe = self.client.pipeline(transaction=True)
            pipe.hdel(self._entries_key, name)
            pipe.hdel(self._marks_key, name)
            pipe.incr(self._version_key)
            removed, _, _ = pipe.execute()
        return bool(removed)

    def close(self) -> None:
        """Close the client's connections."""
        if self._client is not None:
            self._client.close()
            self._client = None
