"""The Lua scripts `RedisStore` runs: each one names a single key, so each is atomic on a
standalone server and on a cluster alike.

The liveness rule (`LIVENESS`) repeats `sessionward.record.remaining_ms`, and the refresh
script repeats `sessionward.refresh.decide`; tests/test_record.py and tests/test_refresh.py
pin each copy to its Python original.
"""

from __future__ import annotations

# `whole` reads a stored number the way `record.stored_int` does: plain digits only, so both
# stores agree on a corrupt record.
WHOLE = """
local function whole(text)
  if text and #text <= 15 and string.match(text, '^%d+$') then return tonumber(text) end
  return nil
end
"""

# The liveness rule of `sessionward.record.remaining_ms`, in Lua, shared by both scripts below
# (tests/test_record.py pins it to the Python original).
LIVENESS = (
    WHOLE
    + """
-- The session's own idle TTL, never longer than the configured one (`own_idle_ttl_ms`).
local function own_idle(text, configured)
  return math.min(whole(text) or configured, configured)
end
-- How long the session may live after a request at `now`, or nil once it has ended.
local function remaining(now, seen, expires, idle)
  if not seen or not expires or now >= expires or now >= seen + idle then return nil end
  return math.min(idle, expires - now)
end
-- `untouched_ms`: for a request that is not activity, the deadlines as they stand.
local function untouched(now, seen, expires, idle)
  if not remaining(now, seen, expires, idle) then return nil end
  return math.min(seen + idle, expires) - now
end
"""
)

# KEYS[1]: the session hash. ARGV[1]: now (ms). ARGV[2]: the configured idle TTL (ms): the cap
# on the record's own `m:idle`, and the idle TTL of a record without one (written by 0.1).
# Returns the fields as one JSON object, already touched: m:seen is now, and the key expires
# when the record's own lifetimes say. One string rather than a flat list: a client parses one
# reply instead of two per field, which is most of a load's client cost with redis-py's
# pure-Python parser. Returns nil, deleting the key, when the session has ended (see LIVENESS)
# or lacks a readable m:seen/m:expires. The touch is best effort (pcall): a Redis that refuses
# writes (out of memory, NOREPLICAS, MISCONF) still serves reads; only writes fail, with a 503.
# LOAD_UNTOUCHED is the same without the touch, for requests that do not count as activity.
_LOAD = """
local fields = redis.call('HGETALL', KEYS[1])
if #fields == 0 then return nil end
local record = {}
for i = 1, #fields, 2 do record[fields[i]] = fields[i + 1] end
local now = tonumber(ARGV[1])
local idle = own_idle(record['m:idle'], tonumber(ARGV[2]))
local ttl = remaining(now, whole(record['m:seen']), whole(record['m:expires']), idle)
if not ttl then
  redis.call('DEL', KEYS[1])
  return nil
end
"""
_TOUCH = """
record['m:seen'] = ARGV[1]
redis.pcall('HSET', KEYS[1], 'm:seen', ARGV[1])
redis.pcall('PEXPIRE', KEYS[1], ttl)
"""
_RETURN = """
return cjson.encode(record)
"""
LOAD_AND_TOUCH = LIVENESS + _LOAD + _TOUCH + _RETURN
LOAD_UNTOUCHED = LIVENESS + _LOAD + _RETURN

# KEYS[1]: the session hash. ARGV[1]: now (ms). ARGV[2]: the configured idle TTL (ms), as above.
# ARGV[3]: '1' to create a new session, '0' to change a live one, '2' to change a live one's
# m:seen, m:expires or m:idle, '3' to change a live one in a request that is not activity (the
# key's expiry then follows the deadlines as they stand, `untouched_ms`). ARGV[4]: the most
# bytes of data the session may hold, or 0 for no limit. ARGV[5]: n, the number of fields to
# write; then n name/value pairs to write; then the names of fields to delete.
# Returns 1 when saved; 0 when refused: creating over an existing key, or changing a session
# that has ended (so a slow request cannot bring a logged-out or expired session back); and
# -size when the data would grow past ARGV[4]: refused whole, nothing written. The data's size
# (the bytes of each key and its JSON, as `session.encoded_size` counts) is kept in m:size and
# changed here with each write, so concurrent saves cannot pass the limit together; a record
# written by 0.1 has none, and its data is counted once. The lifetimes are read again after
# the write only when it may have changed them ('1' and '2'). Fields go in one HSET (and one
# HDEL) per 1000 arguments: Lua's unpack has a stack limit.
SAVE_IF_LIVE = (
    LIVENESS
    + """
local key, mode = KEYS[1], ARGV[3]
local now, configured_idle = tonumber(ARGV[1]), tonumber(ARGV[2])
local rule = mode == '3' and untouched or remaining
local function ttl_of()
  local seen, expires, idle = unpack(redis.call('HMGET', key, 'm:seen', 'm:expires', 'm:idle'))
  return rule(now, whole(seen), whole(expires), own_idle(idle, configured_idle))
end
local function in_chunks(command, first, last)
  for i = first, last, 1000 do
    redis.call(command, key, unpack(ARGV, i, math.min(i + 999, last)))
  end
end
local function is_data(name) return string.sub(name, 1, 2) == 'd:' end
local function stored_size()
  local size = whole(redis.call('HGET', key, 'm:size'))
  if size then return size end
  size = 0
  local fields = redis.call('HGETALL', key)
  for i = 1, #fields, 2 do
    if is_data(fields[i]) then size = size + #fields[i] - 2 + #fields[i + 1] end
  end
  return size
end
local ttl
if mode == '1' then
  if redis.call('EXISTS', key) == 1 then return 0 end
else
  ttl = ttl_of()
  if not ttl then return 0 end
end
local last_write = 5 + 2 * tonumber(ARGV[5])
local size = mode == '1' and 0 or stored_size()
local function drop(name)
  local old = redis.call('HSTRLEN', key, name)
  if old > 0 then size = size - (#name - 2 + old) end
end
for i = 6, last_write, 2 do
  if is_data(ARGV[i]) then
    if mode ~= '1' then drop(ARGV[i]) end
    size = size + #ARGV[i] - 2 + #ARGV[i + 1]
  end
end
for i = last_write + 1, #ARGV do
  if is_data(ARGV[i]) then drop(ARGV[i]) end
end
local limit = tonumber(ARGV[4])
if limit > 0 and size > limit then return -size end
in_chunks('HSET', 6, last_write)
in_chunks('HDEL', last_write + 1, #ARGV)
redis.call('HSET', key, 'm:size', size)
if mode == '1' or mode == '2' then ttl = ttl_of() end
if not ttl then
  redis.call('DEL', key)
  return 0
end
redis.call('PEXPIRE', key, ttl)
return 1
"""
)

# KEYS[1]: the session hash. ARGV[1]: now (ms). ARGV[2]: the configured idle TTL (ms).
# ARGV[3]: the presented refresh secret's hash. ARGV[4]: the reuse grace (ms). ARGV[5]: n, the
# length of each chain; ARGV[6]: m, the number of chains (one per secret key); then m chains
# of n hashes: the presented secret's successors under each key, nearest first. Applies
# `sessionward.refresh.decide` (tests/test_refresh.py pins this copy to it) to a live bearer
# session, atomically, so two refreshes at once cannot both rotate: ROTATED (1) moves the
# family on and touches the session, REPLAYED (2) touches it, STOLEN (3) deletes it, INVALID
# (0) changes nothing. Returns {outcome, key position, the fields as JSON}. Sent with EVAL:
# a refresh comes once per access token's lifetime.
REFRESH_ROTATE = (
    LIVENESS
    + _LOAD
    + """
if record['m:via'] ~= 'bearer' then return {0, 0, false} end
local presented, grace = ARGV[3], tonumber(ARGV[4])
local n, m = tonumber(ARGV[5]), tonumber(ARGV[6])
local function chain(j, k) return ARGV[6 + (j - 1) * n + k] end
local current, parent = record['m:rt'], record['m:rtp']
local function touched(outcome, position)
  record['m:seen'] = ARGV[1]
  redis.call('HSET', KEYS[1], 'm:seen', ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ttl)
  return {outcome, position, cjson.encode(record)}
end
local function stolen()
  redis.call('DEL', KEYS[1])
  return {3, 0, cjson.encode(record)}
end
if not current or current == '' then return {0, 0, false} end
if presented == current then
  record['m:rt'], record['m:rtp'], record['m:rtt'] = chain(1, 1), presented, ARGV[1]
  redis.call('HSET', KEYS[1], 'm:rt', chain(1, 1), 'm:rtp', presented, 'm:rtt', ARGV[1])
  return touched(1, 0)
end
if presented == parent then
  local rotated = whole(record['m:rtt'])
  for j = 1, m do
    if chain(j, 1) == current and rotated and now - rotated <= grace then
      return touched(2, j - 1)
    end
  end
  return stolen()
end
for j = 1, m do
  for k = 2, n do
    if chain(j, k) == current then return stolen() end
  end
end
return {0, 0, false}
"""
)

# KEYS[1]: a user's index. ARGV[1]: a session key. ARGV[2]: its score (ms). ARGV[3]: TTL (ms),
# the absolute lifetime. Drops members scored a whole lifetime before ARGV[2] (dead, whoever
# forgot to remove them, so an index never listed cannot grow without bound), adds the
# session, and makes the index live at least ARGV[3] more ms, never shortening it: the
# index must outlive its longest-lived session even if a later sign-in has a shorter lifetime.
# A script, not ZADD + PEXPIRE, so a crash in between cannot leave an index that never expires.
# Sent with EVAL, not EVALSHA: sign-in is rare, and EVAL never costs a NOSCRIPT round trip.
INDEX_ADD = """
local ttl = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[2]) - ttl)
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1
"""

# KEYS[1]: a user's known-device log. ARGV[1]: now (ms). ARGV[2]: TTL (ms). ARGV[3]: the most
# devices kept, and the most locations. ARGV[4]: the JSON [label, location] that ends the
# entry. ARGV[5]: '1' with a location in ARGV[6], '0' without. ARGV[7..]: the device's hashes,
# the current key's first. Returns {new device, new location} as 1/0.
# Entries under any of the hashes merge into the first (key rotation), keeping the earliest
# first sighting; one whose times cannot be read counts as absent and is overwritten. Past
# the cap, the least recently seen devices and locations go (unreadable ones first), never the
# ones just seen. A script, so two sign-ins at once cannot both count a device as new, and one
# round trip. Sent with EVAL, like INDEX_ADD: sign-in is rare.
DEVICE_SEEN = (
    WHOLE
    + """
local key, now, cap = KEYS[1], ARGV[1], tonumber(ARGV[3])
local current, place = 'd:' .. ARGV[7], nil
local function times(entry)
  local first, last = string.match(entry or '', '^(%d+)|(%d+)|')
  return whole(first), whole(last)
end
local first
for i = 7, #ARGV do
  local field = 'd:' .. ARGV[i]
  local found = times(redis.call('HGET', key, field))
  if found and (not first or found < first) then first = found end
  if field ~= current then redis.call('HDEL', key, field) end
end
redis.call('HSET', key, current, (first and string.format('%d', first) or now) .. '|' .. now
  .. '|' .. ARGV[4])
local new_place = 0
if ARGV[5] == '1' then
  place = 'l:' .. ARGV[6]
  new_place = redis.call('HSET', key, place, now)
end
local function trim(list, keep)
  if #list <= keep then return end
  table.sort(list, function(a, b)
    if a[2] ~= b[2] then return a[2] < b[2] end
    return a[1] < b[1]
  end)
  for i = 1, #list - keep do redis.call('HDEL', key, list[i][1]) end
end
if redis.call('HLEN', key) > cap then
  local devices, places = {}, {}
  local fields = redis.call('HGETALL', key)
  for i = 1, #fields, 2 do
    local name, kind = fields[i], string.sub(fields[i], 1, 2)
    if kind == 'd:' and name ~= current then
      local _, last = times(fields[i + 1])
      table.insert(devices, {name, last or -1})
    elseif kind == 'l:' and name ~= place then
      table.insert(places, {name, whole(fields[i + 1]) or -1})
    end
  end
  trim(devices, cap - 1)
  trim(places, place and cap - 1 or cap)
end
redis.call('PEXPIRE', key, ARGV[2])
return {first and 0 or 1, new_place}
"""
)

# KEYS[1]: a user's known-device log. Deletes it; returns how many devices it held.
DEVICES_FORGET_ALL = """
local count = 0
for _, name in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(name, 1, 2) == 'd:' then count = count + 1 end
end
redis.call('DEL', KEYS[1])
return count
"""
