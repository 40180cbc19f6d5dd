"""Lua scripts of the Redis transport: every state change that must be atomic.

The scripts know no Celery wire names: key names arrive in ``KEYS``/``ARGV``
from :mod:`celeriac.protocol.keys`. Two private formats are used:

* a *located element* is ``"<len>:<list><element>"``: the queue list a message
  came from (or goes to), length-prefixed, followed by the raw kombu element.
  In-flight hash values and delayed-zset members have this form, so a restore
  or a due ETA knows where to put a message back without parsing its JSON.
* an in-flight tag is a decimal sequence number chosen by the fetching consumer
  (unique per consumer id), so restores can put messages back in fetch order.
  Each fetch reserves ``limit`` numbers and uses the first ``n`` it takes.
* push delivery: a fetch that comes back short registers its consumer as idle
  (``IDLE_CONSUMERS_HASH``: consumer id -> ``"<next> <last> <expires>"``, the
  tags its fetch reserved and left unused, and the server time after which the
  registration is stale unless a later fetch renews it: an idle consumer polls
  well within that); one zset per list, prefix + list name, of
  the consumers idle on it, oldest first). A publish onto an empty list with a
  registered consumer whose lease is live writes the message into that
  consumer's in-flight hash under the next free tag and ``PUBLISH``es
  ``"<tag>:<located element>"`` on ``<push prefix><consumer id>`` instead of
  pushing it onto the list; the consumer moves to the back of the zset (round
  robin) or leaves it when its tags run out. Stale registrations and those of
  consumers whose lease ran out are dropped by publishers (and ``MAINTAIN``).

Every push onto a list that finds the list empty (``LPUSH``/``RPUSH`` returned 1)
also ``PUBLISH``es an empty message on ``<wake prefix><list>``: idle consumers
of celeriac wait on those channels instead of polling (see
``docs/decisions-redis.md``). Scripts touch list keys named inside members
(not in ``KEYS``), which is fine on a single Redis or a Sentinel-managed
primary and is why Redis Cluster is not supported.

Time is the server's (``TIME``), so workers with skewed clocks agree on leases.
"""

from __future__ import annotations

__all__ = [
    "DEAD_LETTER",
    "DEFER",
    "FETCH",
    "MAINTAIN",
    "PUBLISH",
    "PUSH_MANY",
    "RECONCILE",
    "REQUEUE",
    "locate",
]


def locate(list_name: str, element: bytes) -> bytes:
    """The located-element form ``<len>:<list><element>`` (see the module docstring)."""
    name = list_name.encode()
    return b"%d:%s%s" % (len(name), name, element)


_COMMON = r"""
local function now_seconds()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end

local function split_located(v)
  local colon = string.find(v, ':', 1, true)
  local len = tonumber(string.sub(v, 1, colon - 1))
  return string.sub(v, colon + 1, colon + len), string.sub(v, colon + len + 1)
end

-- push to the head (served next) or the tail; wake idle consumers if it was empty
local function push(list, element, head, wake)
  local n
  if head then
    n = redis.call('RPUSH', list, element)
  else
    n = redis.call('LPUSH', list, element)
  end
  if n == 1 then redis.call('PUBLISH', wake .. list, '') end
end

-- move up to `max` due delayed messages to the head of their lists, earliest
-- due served first; returns how many moved
local function move_due(delayed, now, max, wake)
  local due = redis.call('ZRANGEBYSCORE', delayed, '-inf', now, 'LIMIT', 0, max)
  if #due == 0 then return 0 end
  for i = #due, 1, -1 do
    local list, element = split_located(due[i])
    push(list, element, true, wake)
  end
  redis.call('ZREM', delayed, unpack(due))
  return #due
end

-- remember that a message goes back after a delivery (read by FETCH)
local function mark_redelivered(redelivered, element)
  if redelivered ~= '' then
    redis.call('HSET', redelivered, redis.sha1hex(element), 1)
    redis.call('EXPIRE', redelivered, 604800)
  end
end

-- put every in-flight message of hash `h` back at the head of its list, in
-- fetch order (lowest tag served first), and delete the hash
local function restore_hash(h, wake, redelivered)
  local flat = redis.call('HGETALL', h)
  if #flat == 0 then return 0 end
  local items = {}
  for i = 1, #flat, 2 do items[#items + 1] = {tonumber(flat[i]) or 0, flat[i + 1]} end
  table.sort(items, function(a, b) return a[1] > b[1] end)
  for _, item in ipairs(items) do
    local list, element = split_located(item[2])
    mark_redelivered(redelivered, element)
    push(list, element, true, wake)
  end
  redis.call('DEL', h)
  return #items
end
"""

# Hand a message published onto an empty list straight to a consumer idle on it
# (see "push delivery" in the module docstring). ARGV[2..6] of PUBLISH.
_HAND_OVER = r"""
local hand_over_now = nil
local function hand_over(list, element)
  local idlers = ARGV[2] .. list
  if redis.call('EXISTS', idlers) == 0 or redis.call('LLEN', list) > 0 then return false end
  if not hand_over_now then
    local t = redis.call('TIME')
    hand_over_now = tonumber(t[1]) + tonumber(t[2]) / 1000000
  end
  for _ = 1, 4 do
    local cid = redis.call('ZRANGE', idlers, 0, 0)[1]
    if not cid then return false end
    local room = redis.call('HGET', ARGV[3], cid)
    local lease = redis.call('ZSCORE', ARGV[4], cid)
    local tag, last, expires
    if room then
      local a = string.find(room, ' ', 1, true)
      local b = string.find(room, ' ', a + 1, true)
      tag = tonumber(string.sub(room, 1, a - 1))
      last = tonumber(string.sub(room, a + 1, b - 1))
      expires = string.sub(room, b + 1)
    end
    local alive = lease and tonumber(lease) > hand_over_now
    if room and alive and tonumber(expires) > hand_over_now then
      local located = string.len(list) .. ':' .. list .. element
      redis.call('HSET', ARGV[5] .. cid, tostring(tag), located)
      if tag >= last then
        redis.call('HDEL', ARGV[3], cid)
        redis.call('ZREM', idlers, cid)
      else
        redis.call('HSET', ARGV[3], cid,
                   tostring(tag + 1) .. ' ' .. tostring(last) .. ' ' .. expires)
        redis.call('ZADD', idlers, hand_over_now, cid)
      end
      redis.call('PUBLISH', ARGV[6] .. cid, tostring(tag) .. ':' .. located)
      return true
    end
    -- not registered any more, or its registration lapsed (kept for the consumer's
    -- next fetch to read how far pushes went), or its lease ran out (a dead consumer)
    redis.call('ZREM', idlers, cid)
    if room and not alive then redis.call('HDEL', ARGV[3], cid) end
  end
  return false
end
"""

#: KEYS: one per operation. ARGV: wake prefix, idle-consumer zset prefix, idle
#: consumers hash, leases zset, in-flight key prefix, push channel prefix, then
#: one ``op, a, b`` triplet per key: ``p`` pushes element ``a`` (handed over to an
#: idle consumer if the list is empty and one is registered, else LPUSHed,
#: waking idle consumers if the list was empty), ``z`` ZADD score ``a`` member
#: ``b``, ``s`` SADD ``a``, ``l`` plain LPUSH ``a``.
#: A whole publish batch (bindings, pushes, delays) is one atomic round trip.
PUBLISH = (
    _HAND_OVER
    + r"""
local wake = ARGV[1]
for i = 1, #KEYS do
  local op, a, b = ARGV[3 * i + 4], ARGV[3 * i + 5], ARGV[3 * i + 6]
  if op == 'p' then
    if not hand_over(KEYS[i], a) and redis.call('LPUSH', KEYS[i], a) == 1 then
      redis.call('PUBLISH', wake .. KEYS[i], '')
    end
  elseif op == 'z' then
    redis.call('ZADD', KEYS[i], a, b)
  elseif op == 's' then
    redis.call('SADD', KEYS[i], a)
  else
    redis.call('LPUSH', KEYS[i], a)
  end
end
return #KEYS
"""
)

#: KEYS: one list. ARGV: wake prefix, then elements: LPUSHed in order (the
#: first is served first), in commands of at most 1,000 (Lua's stack limit);
#: wakes idle consumers when the list was empty. One bulk send's chunk.
PUSH_MANY = r"""
local list, last = KEYS[1], #ARGV
local before = -1
for i = 2, last, 1000 do
  local j = math.min(i + 999, last)
  local n = redis.call('LPUSH', list, unpack(ARGV, i, j))
  if before < 0 then before = n - (j - i + 1) end
end
if before == 0 then redis.call('PUBLISH', ARGV[1] .. list, '') end
return last - 1
"""

#: KEYS: in-flight hash, leases zset, delayed zset, redelivered hash, idle
#: consumers hash, then the lists in poll order. ARGV: limit, consumer id, first
#: tag, lease seconds, wake prefix, max due moves, idle-consumer zset prefix,
#: registration seconds (``0``: do not register), then the tags of finished
#: messages to forget first (acks riding along).
#: Returns ``[next_due_score_or_'', previous_room_or_'', tag, list_index,
#: redelivered 0/1, element, ...]``. The redelivered hash (sha1 of elements
#: that went back to a queue after a delivery) is only consulted when it exists.
#: A fetch that takes fewer than ``limit`` (and may) registers the consumer as idle on
#: every list with the tags it left unused as room for pushes; a full one
#: unregisters it. ``previous_room`` is the registration it replaced.
FETCH = (
    _COMMON
    + r"""
for i = 9, #ARGV, 1000 do
  redis.call('HDEL', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
local limit = tonumber(ARGV[1])
local seq = tonumber(ARGV[3])
local now = now_seconds()
move_due(KEYS[3], now, tonumber(ARGV[6]), ARGV[5])
local previous = redis.call('HGET', KEYS[5], ARGV[2])
local out = {'', previous or ''}
local fields = {}
local n = 0
local marks = redis.call('EXISTS', KEYS[4]) == 1
for i = 6, #KEYS do
  if n >= limit then break end
  local got = redis.call('RPOP', KEYS[i], limit - n)
  if got then
    local prefix = string.len(KEYS[i]) .. ':' .. KEYS[i]
    for _, element in ipairs(got) do
      local tag = tostring(seq + n)
      fields[#fields + 1] = tag
      fields[#fields + 1] = prefix .. element
      out[#out + 1] = tag
      out[#out + 1] = tostring(i - 5)
      if marks and redis.call('HDEL', KEYS[4], redis.sha1hex(element)) == 1 then
        out[#out + 1] = '1'
      else
        out[#out + 1] = '0'
      end
      out[#out + 1] = element
      n = n + 1
    end
  end
end
if n > 0 then redis.call('HSET', KEYS[1], unpack(fields)) end
if n < limit and ARGV[8] ~= '0' then
  redis.call('HSET', KEYS[5], ARGV[2], tostring(seq + n) .. ' ' .. tostring(seq + limit - 1)
             .. ' ' .. tostring(now + tonumber(ARGV[8])))
  for i = 6, #KEYS do redis.call('ZADD', ARGV[7] .. KEYS[i], now, ARGV[2]) end
elseif previous then
  redis.call('HDEL', KEYS[5], ARGV[2])
  for i = 6, #KEYS do redis.call('ZREM', ARGV[7] .. KEYS[i], ARGV[2]) end
end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), ARGV[2])
local nxt = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
if nxt[2] then out[1] = nxt[2] end
return out
"""
)

#: KEYS: leases zset, delayed zset, own in-flight hash, redelivered hash, idle
#: consumers hash.
#: ARGV: consumer id, lease seconds, in-flight key prefix, wake prefix, max dead
#: consumers per run, max due moves.
#: Renews this consumer's lease (while it holds messages or is registered idle),
#: restores the in-flight messages of consumers whose lease ran out and drops
#: their idle registrations, moves due delayed messages. Returns
#: ``[restored, moved]``.
MAINTAIN = (
    _COMMON
    + r"""
local now = now_seconds()
local restored = 0
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[5]))
for _, cid in ipairs(dead) do
  if cid ~= ARGV[1] then
    redis.call('HDEL', KEYS[5], cid)
    restored = restored + restore_hash(ARGV[3] .. cid, ARGV[4], KEYS[4])
    redis.call('ZREM', KEYS[1], cid)
  end
end
if redis.call('EXISTS', KEYS[3]) == 1 or redis.call('HEXISTS', KEYS[5], ARGV[1]) == 1 then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
else
  redis.call('ZREM', KEYS[1], ARGV[1])
end
local moved = move_due(KEYS[2], now, tonumber(ARGV[6]), ARGV[4])
return {restored, moved}
"""
)

#: KEYS: own in-flight hash, idle consumers hash. ARGV: consumer id, unregister
#: (``1`` drops the idle registration), then tags.
#: Finds pushed messages whose pub/sub delivery may have been lost. Returns
#: ``[room_or_'', tag, located element, ...]`` for the tags still in flight.
RECONCILE = r"""
local room = redis.call('HGET', KEYS[2], ARGV[1])
if ARGV[2] == '1' then redis.call('HDEL', KEYS[2], ARGV[1]) end
local out = {room or ''}
if #ARGV > 2 then
  local got = redis.call('HMGET', KEYS[1], unpack(ARGV, 3))
  for i = 1, #ARGV - 2 do
    if got[i] then
      out[#out + 1] = ARGV[i + 2]
      out[#out + 1] = got[i]
    end
  end
end
return out
"""

#: KEYS: in-flight hash, redelivered hash (``''`` ARGV-side to not mark).
#: ARGV: wake prefix, mark (``1`` flags them redelivered), then tags, or ``*``.
#: Puts those messages back at the head of their lists (if still in flight).
REQUEUE = (
    _COMMON
    + r"""
local marks = ''
if ARGV[2] == '1' then marks = KEYS[2] end
if ARGV[3] == '*' then return restore_hash(KEYS[1], ARGV[1], marks) end
local tags = {}
for i = 3, #ARGV do tags[#tags + 1] = tonumber(ARGV[i]) end
table.sort(tags, function(a, b) return a > b end)
local n = 0
for _, tag in ipairs(tags) do
  local key = tostring(tag)
  local v = redis.call('HGET', KEYS[1], key)
  if v then
    local list, element = split_located(v)
    mark_redelivered(marks, element)
    push(list, element, true, ARGV[1])
    redis.call('HDEL', KEYS[1], key)
    n = n + 1
  end
end
return n
"""
)

#: KEYS: in-flight hash, dead-letter list. ARGV: tag, record.
#: Sets a message aside if it is still in flight; returns 1 if it was.
DEAD_LETTER = r"""
if redis.call('HDEL', KEYS[1], ARGV[1]) == 1 then
  redis.call('LPUSH', KEYS[2], ARGV[2])
  return 1
end
return 0
"""

#: KEYS: in-flight hash, delayed zset. ARGV: tag, eta score, located element.
#: Moves a fetched message to the delayed store if it is still in flight.
DEFER = r"""
if redis.call('HDEL', KEYS[1], ARGV[1]) == 1 then
  redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
  return 1
end
return 0
"""
