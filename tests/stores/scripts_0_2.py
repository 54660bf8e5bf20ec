"""0.2's load and save scripts, verbatim: the scripts a 0.2 process runs during a rolling
deploy (or after a rollback) against records the current version writes.

Copied from src/sessionward/stores/redis_scripts.py at 0.2 (commit 24fbf19); never edit them:
tests/stores/test_mixed_fleet.py runs them beside today's scripts on one record. Drop this file
with the compatibility fields (see CHANGELOG).
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
