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
-- The session's own idle TTL (nil: none), never longer than the configured one
-- (`own_idle_ttl_ms`).
local function own_idle(own, configured)
  return math.min(own or configured, configured)
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

# The record header, `m:h`: the facts every load and save reads, in one fixed-layout field
# (see `sessionward.stores.redis_header`, its Python side): last activity, absolute deadline
# and the session's own idle TTL (ms; -1 for none: the configured one), and the bytes of data.
# One HMGET and one struct.unpack read them, where parsing decimal fields took a table of the
# whole hash and a pattern match per number.
#
# Compatibility with 0.2 (until 0.4, see CHANGELOG): 0.2's scripts end a record without a
# readable m:seen and m:expires, so the header's times are also written as those plain fields
# (and m:idle), and m:seen is touched with the header. 0.2 touches m:seen only and keeps the
# size in m:size: a later m:seen wins over the header's, and an m:size over its size (the next
# save here drops it). A record without a header (0.1, 0.2) is read from those fields, and
# gains a header at its next save.
HEADER = (
    LIVENESS
    + """
local HEADER = '<i8i8i8i4'
-- The lifetimes from `f`, the values of m:h, m:seen and (in a save) m:size as HMGET read
-- them: last activity, absolute deadline, own idle TTL (nil: none) and data size (nil: not
-- kept, a record of 0.1); nil when unreadable. A record without a header (0.1, 0.2) is read
-- from its plain fields.
local function lifetimes(key, f)
  local header, seen, size = f[1], whole(f[2]), whole(f[3])
  if not header then
    local old = redis.call('HMGET', key, 'm:expires', 'm:idle', 'm:size')
    local expires = whole(old[1])
    if not seen or not expires then return nil end
    return seen, expires, whole(old[2]), whole(old[3])
  end
  if #header ~= 28 then return nil end
  local header_seen, expires, own, header_size = struct.unpack(HEADER, header)
  if header_seen < 0 or expires < 0 or header_size < 0 then return nil end
  if not seen or header_seen > seen then seen = header_seen end
  return seen, expires, own >= 0 and own or nil, size or header_size
end
local function packed(seen, expires, own, size)
  return struct.pack(HEADER, seen, expires, own or -1, size or -1)
end
-- The header, and for 0.2 the plain fields it reads (m:size it would recount: dropped).
local function write_header(key, seen, expires, own, size)
  redis.call('HSET', key, 'm:h', packed(seen, expires, own, size),
    'm:seen', string.format('%d', seen), 'm:expires', string.format('%d', expires))
  if own then
    redis.call('HSET', key, 'm:idle', string.format('%d', own))
  else
    redis.call('HDEL', key, 'm:idle')
  end
  redis.call('HDEL', key, 'm:size')
end
"""
)

# KEYS[1]: the session hash. ARGV[1]: now (ms). ARGV[2]: the configured idle TTL (ms): the cap
# on the record's own idle TTL, and the idle TTL of a record without one.
# Returns the record's lifetimes, already touched (the last activity is now, and the key
# expires when the lifetimes say), packed as a header is: one string, the cheapest reply to
# make and to read. `RedisStore` sends HGETALL of the key right behind it, in the same round
# trip, for the fields: returning them from here would have Redis convert each field into Lua
# and back, the most costly part of a script. Returns nil, deleting the key, when the session
# has ended (see LIVENESS) or its lifetimes are unreadable. The touch is best effort (pcall): a
# Redis that refuses writes (out of memory, NOREPLICAS, MISCONF) still serves reads; only
# writes fail, with a 503. A record without a header keeps none until its next save.
# LOAD_UNTOUCHED is the same without the touch, for requests that do not count as activity.
# The _JSON variants return {header, the fields as JSON} instead, for clients without hiredis.
_LOAD = """
local key, now = KEYS[1], tonumber(ARGV[1])
local found = redis.call('HMGET', key, 'm:h', 'm:seen')
local seen, expires, own, size = lifetimes(key, found)
local ttl = seen and remaining(now, seen, expires, own_idle(own, tonumber(ARGV[2])))
if not ttl then
  redis.call('DEL', key)
  return nil
end
"""
_TOUCH = """
local header = packed(now, expires, own, size)
if found[1] then
  redis.pcall('HSET', key, 'm:h', header, 'm:seen', ARGV[1])
else
  redis.pcall('HSET', key, 'm:seen', ARGV[1])
end
redis.pcall('PEXPIRE', key, ttl)
"""
_UNTOUCHED = """
local header = packed(seen, expires, own, size)
"""
_RETURN_HEADER = """
return header
"""
# For a client without hiredis: redis-py's pure-Python parser takes about 6 µs per element of
# an HGETALL reply, more than the server's JSON encoding costs, so the fields come back as one
# JSON array (name, value, ...; the binary header apart).
_RETURN_HEADER_AND_FIELDS = """
local all, flat = redis.call('HGETALL', key), {}
for i = 1, #all, 2 do
  if all[i] ~= 'm:h' then
    flat[#flat + 1] = all[i]
    flat[#flat + 1] = all[i + 1]
  end
end
return {header, cjson.encode(flat)}
"""
LOAD_AND_TOUCH = HEADER + _LOAD + _TOUCH + _RETURN_HEADER
LOAD_UNTOUCHED = HEADER + _LOAD + _UNTOUCHED + _RETURN_HEADER
LOAD_AND_TOUCH_JSON = HEADER + _LOAD + _TOUCH + _RETURN_HEADER_AND_FIELDS
LOAD_UNTOUCHED_JSON = HEADER + _LOAD + _UNTOUCHED + _RETURN_HEADER_AND_FIELDS

# KEYS[1]: the session hash. ARGV[1]: now (ms). ARGV[2]: the configured idle TTL (ms), as above.
# ARGV[3]: '1' to create a new session, '0' to change a live one, '2' to change a live one's
# lifetimes, '3' to change a live one in a request that is not activity. ARGV[4]: the most
# bytes of data the session may hold, or 0 for no limit. ARGV[5..7]: the new last activity,
# absolute deadline and own idle TTL: digits to set, '' to leave, '-' to remove. ARGV[8]: n,
# the number of fields to write; then n name/value pairs to write; then the names of fields
# to delete.
# Returns 1 when saved; 0 when refused: creating over an existing key, or changing a session
# that has ended (so a slow request cannot bring a logged-out or expired session back); and
# -size when the data would grow past ARGV[4]: refused whole, nothing written. The data's size
# (the bytes of each key and its JSON, as `session.encoded_size` counts) is kept in the header
# and changed here with each write, so concurrent saves cannot pass the limit together; a
# record written by 0.1 has none, and its data is counted once. One HMGET reads the header
# and the old values of the data fields the save replaces, for the size. A change in a request
# that touched the session on load ('0') leaves the key's expiry alone: the touch set it a
# moment ago to the record's deadline, which this save does not move, and another PEXPIRE
# would only repeat it. The others set it: '1' and '2' to the new lifetimes, '3' to the
# deadlines as they stand (`untouched_ms`) by the app's clock. Lua's unpack has a stack limit:
# fields go in one HSET (HDEL, HMGET) per 1000 arguments.
SAVE_IF_LIVE = (
    HEADER
    + """
local key, mode = KEYS[1], ARGV[3]
local now, configured_idle = tonumber(ARGV[1]), tonumber(ARGV[2])
local last_write = 8 + 2 * tonumber(ARGV[8])
local function in_chunks(command, first, last)
  for i = first, last, 1000 do
    redis.call(command, key, unpack(ARGV, i, math.min(i + 999, last)))
  end
end
local function is_data(name) return string.sub(name, 1, 2) == 'd:' end
local function counted_size()
  local size = 0
  local fields = redis.call('HGETALL', key)
  for i = 1, #fields, 2 do
    if is_data(fields[i]) then size = size + #fields[i] - 2 + #fields[i + 1] end
  end
  return size
end
-- The values of m:h, m:seen and m:size, then of `names`.
local function read_fields(names)
  if #names <= 997 then
    return redis.call('HMGET', key, 'm:h', 'm:seen', 'm:size', unpack(names))
  end
  local f = redis.call('HMGET', key, 'm:h', 'm:seen', 'm:size')
  for i = 1, #names, 1000 do
    local part = redis.call('HMGET', key, unpack(names, i, math.min(i + 999, #names)))
    for j = 1, #part do f[#f + 1] = part[j] end
  end
  return f
end
local function changed(old, new)
  if new == '' then return old end
  if new == '-' then return nil end
  return whole(new) or false
end
local seen, expires, own, size, old_size, f
if mode == '1' then
  if redis.call('EXISTS', key) == 1 then return 0 end
  size = 0
else
  local names = {}
  for i = 9, last_write, 2 do
    if is_data(ARGV[i]) then names[#names + 1] = ARGV[i] end
  end
  for i = last_write + 1, #ARGV do
    if is_data(ARGV[i]) then names[#names + 1] = ARGV[i] end
  end
  f = read_fields(names)
  seen, expires, own, size = lifetimes(key, f)
  if not seen or not remaining(now, seen, expires, own_idle(own, configured_idle)) then
    return 0
  end
  size = size or counted_size()
  old_size = size
  for i = 1, #names do
    if f[3 + i] then size = size - (#names[i] - 2 + #f[3 + i]) end
  end
end
for i = 9, last_write, 2 do
  if is_data(ARGV[i]) then size = size + #ARGV[i] - 2 + #ARGV[i + 1] end
end
local limit = tonumber(ARGV[4])
if limit > 0 and size > limit then return -size end
local ttl
if mode == '1' or mode == '2' then
  seen, expires, own = changed(seen, ARGV[5]), changed(expires, ARGV[6]), changed(own, ARGV[7])
  if own == false then own = nil end
  if seen and expires then ttl = remaining(now, seen, expires, own_idle(own, configured_idle)) end
  if not ttl then
    if mode == '2' then redis.call('DEL', key) end
    return 0
  end
end
in_chunks('HSET', 9, last_write)
in_chunks('HDEL', last_write + 1, #ARGV)
if ttl or size ~= old_size or not f[1] or f[3] then write_header(key, seen, expires, own, size) end
if mode == '3' then ttl = untouched(now, seen, expires, own_idle(own, configured_idle)) end
if ttl then redis.call('PEXPIRE', key, ttl) end
return 1
"""
)

# KEYS[1]: the session hash. ARGV[1]: now (ms). ARGV[2]: the configured idle TTL (ms).
# ARGV[3]: the presented refresh secret's hash. ARGV[4]: the reuse grace (ms). ARGV[5]: n, the
# length of each chain; ARGV[6]: m, the number of chains (one per secret key); ARGV[7]: who
# presents it (`TokenPairs.fingerprint`); ARGV[8]: the most grace replays of one rotation;
# then m chains of n hashes: the presented secret's successors under each key, nearest first.
# Applies `sessionward.refresh.decide` (tests/test_refresh.py pins this copy to it) to a live
# bearer session, atomically, so two refreshes at once cannot both rotate: ROTATED (1) moves
# the family on and touches the session, REPLAYED (2) counts the replay and touches it,
# STOLEN (3) deletes it, INVALID
# (0) changes nothing. Returns {outcome, key position, the fields as JSON}. Sent with EVAL:
# a refresh comes once per access token's lifetime.
REFRESH_ROTATE = (
    HEADER
    + _LOAD
    + """
local record = {}
local fields = redis.call('HGETALL', key)
for i = 1, #fields, 2 do record[fields[i]] = fields[i + 1] end
size = whole(record['m:size']) or size  -- 0.2 keeps it there
if not size then  -- a record of 0.1: count its data once
  size = 0
  for name, value in pairs(record) do
    if string.sub(name, 1, 2) == 'd:' then size = size + #name - 2 + #value end
  end
end
record['m:h'], record['m:size'] = nil, nil
record['m:expires'] = string.format('%d', expires)
record['m:idle'] = own and string.format('%d', own) or nil
if record['m:via'] ~= 'bearer' then return {0, 0, false} end
local presented, grace = ARGV[3], tonumber(ARGV[4])
local n, m = tonumber(ARGV[5]), tonumber(ARGV[6])
local client, max_replays = ARGV[7], tonumber(ARGV[8])
local function chain(j, k) return ARGV[8 + (j - 1) * n + k] end
local current, parent = record['m:rt'], record['m:rtp']
local function touched(outcome, position)
  record['m:seen'] = ARGV[1]
  write_header(key, now, expires, own, size)
  redis.call('PEXPIRE', key, ttl)
  return {outcome, position, cjson.encode(record)}
end
local function stolen()
  record['m:seen'] = string.format('%d', seen)
  redis.call('DEL', key)
  return {3, 0, cjson.encode(record)}
end
if not current or current == '' then return {0, 0, false} end
if presented == current then
  record['m:rt'], record['m:rtp'], record['m:rtt'] = chain(1, 1), presented, ARGV[1]
  record['m:rtc'], record['m:rtn'] = client, '0'
  redis.call('HSET', KEYS[1], 'm:rt', chain(1, 1), 'm:rtp', presented, 'm:rtt', ARGV[1],
    'm:rtc', client, 'm:rtn', '0')
  return touched(1, 0)
end
if presented == parent then
  local rotated = whole(record['m:rtt'])
  if not rotated or now - rotated > grace then return stolen() end
  local replays = whole(record['m:rtn']) or 0
  for j = 1, m do
    if chain(j, 1) == current then
      if record['m:rtc'] ~= client or replays >= max_replays then return {0, 0, false} end
      record['m:rtn'] = string.format('%d', replays + 1)
      redis.call('HSET', KEYS[1], 'm:rtn', record['m:rtn'])
      return touched(2, j - 1)
    end
  end
  return {0, 0, false}  -- a link this process's keys cannot work out: no grant, no theft
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
INDEX_ADD = """
local ttl = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[2]) - ttl)
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1
"""

# KEYS[1]: a user's known-device log, which also holds the account's sign-in marker. ARGV[1]:
# now (ms). ARGV[2]: TTL (ms). ARGV[3]: the most
# devices kept, and the most locations. ARGV[4]: the JSON [label, location] that ends the
# entry. ARGV[5]: '1' with a location in ARGV[6], '0' without. ARGV[7..]: the device's hashes,
# the current key's first. Returns {new device, new location, first sign-in} as 1/0.
# Entries under any of the hashes merge into the first (key rotation), keeping the earliest
# first sighting; one whose times cannot be read counts as absent and is overwritten. Past
# the cap, the least recently seen devices and locations go (unreadable ones first), never the
# ones just seen. A script, so two sign-ins at once cannot both count a device as new, and one
# round trip.
DEVICE_SEEN = (
    WHOLE
    + """
local key, now, cap = KEYS[1], ARGV[1], tonumber(ARGV[3])
local current, place = 'd:' .. ARGV[7], nil
-- The account's marker (a:first, the time of its first sign-in) stays when its devices are
-- forgotten, so only an account with no log at all is signing in for the first time.
local first_sign_in = redis.call('EXISTS', key) == 0
redis.call('HSETNX', key, 'a:first', now)
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
return {first and 0 or 1, new_place, first_sign_in and 1 or 0}
"""
)

# KEYS[1]: a user's known-device log. Deletes its devices and places, keeping the account's
# sign-in marker; returns how many devices it held.
DEVICES_FORGET_ALL = """
local count = 0
for _, name in ipairs(redis.call('HKEYS', KEYS[1])) do
  local kind = string.sub(name, 1, 2)
  if kind == 'd:' then count = count + 1 end
  if kind == 'd:' or kind == 'l:' then redis.call('HDEL', KEYS[1], name) end
end
return count
"""
