--[[
  Appends a NotifyRequested once per (sender, req_id), deciding its recipients from the shop's registry in the
  same atomic step (SPEC §5.2), puts one message per recipient in the shop's inbox, and makes the first push of each
  message to its recipient's connection (issue 18: the routing the dispatcher did after reading the event, done in
  the append, so a notify costs no dispatcher round trip and no wake-up; nothing can happen in between).

  A push is an SPUBLISH on the shard's channel of the edge holding the connection (a `deliver` command,
  edge-commands.ts; Keys.edgeChannel): in this script's slot, and counted exactly on a Redis Cluster too. The main
  devices it reached no edge for are written in the stream entry's `u` field (space-separated client ids, '' for
  none): the dispatcher reads them and schedules their retries in BullMQ (SPEC §3). A main's or the back office's
  notify is broadcast here to the shop's connected subs but the sender (best effort: nothing is retried), and its
  entry has an empty `u`. An entry with a `u` field was routed here; one without it (an earlier version's) is
  routed by the dispatcher.

  The req_id records (SPEC §3: the same req_id from the same device within 24 h is a duplicate; issue 19: without
  holding a day of them in Redis) have two parts:
  - Exact records, a shop's hash of 64 buckets. A bucket is a string of 38-byte entries, oldest first: the 8-byte
    tag of the (sender, req_id) digest, the record's time (4 bytes, big endian, seconds of this Redis's clock), the
    26-character event id. An entry is cut, whenever its bucket is written, once it is older than the window
    (ARGV[16], the streams' retention tail) and its event is archived in PostgreSQL (KEYS[9], which the persister's
    retention keeps) and the shard's filters hold it; else once it is 24 h old. So a record outlives any projection
    lag: an event is always either in the records or in the archive.
  - The shard's filters: a Bloom filter per day (KEYS[10] for even days, KEYS[11] for odd ones, by this Redis's
    clock) that every remembered notify is added to. A key holds a 128-byte header (the day, the time it was
    created, the entry count of each of its up to 16 filters) and then its filters, each twice the bits of the one
    before (a scalable Bloom filter: the first holds FIRST_BITS / BITS_PER_ENTRY entries at ~0.4 % false positives,
    the next one is started when it is full), so a shard's memory follows its traffic without a size to configure.
    A req_id that is in no exact record but may be in today's or yesterday's filter answers {2}: the caller looks
    the notify up in the archive (the rare resend after the window, or a false positive) and calls again with
    ARGV[18] = 'checked' when the archive has none, which appends it.
  Records made before the filters existed (older than the oldest filter's creation) are kept their 24 h. The
  versions before the window kept records in another hash (KEYS[12], 1,024 buckets, 24 h each): it is only read, and
  expires a day after its last write.

  Input:
    KEYS[1] shard stream
    KEYS[2] the per-req_id record key of versions before the bucketed records (read only, until they expire)
    KEYS[3] shop's device registry (hash client_id -> JSON)
    KEYS[4] shop's inbox (hash message id -> "<padded stream id>|<payload JSON>")
    KEYS[5] shop's inbox order (zset, members "<client>|<padded stream id>|<message id>")
    KEYS[6] shop's presence (hash client_id -> connection JSON)
    KEYS[7] shop's req_id records (hash bucket -> entries)
    KEYS[8] shop's push attempts (hash message id -> count)
    KEYS[9] shard's archived-through: the stream time (ms) of the newest event archived in PostgreSQL
    KEYS[10] shard's req_id filters of even days
    KEYS[11] shard's req_id filters of odd days
    KEYS[12] shop's req_id records as the versions before the window kept them (read only, until it expires)

    ARGV[1] sender client id ('' for the back office)
    ARGV[2] sender token id ('' to skip the check)
    ARGV[3] sender type expected: 'main', 'sub' or '' (back office)
    ARGV[4] event id
    ARGV[5] event JSON up to the recipients array
    ARGV[6] event JSON after the recipients array
    ARGV[7] message payload JSON shared by the recipients
    ARGV[8] req_id record TTL, seconds
    ARGV[9] sender connection id ('' to skip the check): refused if a newer login of the sender replaced it
    ARGV[10] bucket of the req_id record ('' when the notify has no req_id to remember)
    ARGV[11] tag of the req_id record (8 bytes)
    ARGV[12] the shard's edge channel prefix (an edge's channel is this followed by its id)
    ARGV[13] message frame up to the recipient's client id (its `id` is "<event id>.<client id>")
    ARGV[14] message frame after the recipient's client id (attempt 1)
    ARGV[15] the broadcast frame of a main's or the back office's notify (unused for a sub's)
    ARGV[16] exact record window, seconds (records older than this, archived and in the filters, are cut)
    ARGV[17] filter probe: 8 bytes of the (sender, req_id) digest (two 32-bit hashes)
    ARGV[18] 'checked' when the archive holds no such notify (the filters are not asked), else ''
    ARGV[19] bucket of the req_id record among the earlier version's 1,024

  Output:
     {0, event id, stream id, recipient count,  appended; pushes made (their edge received them),
      pushed, unreached}                         pushes that reached no edge (retried by the dispatcher)
     {1, event id}                              a duplicate of an earlier notify: its event id
     {2}                                        not in the exact records, maybe in the filters: look in the archive
    {-1}                                        a sub's notify, and the shop has no registered main device
    {-2}                                        the sender is not a registered device of the shop (revoked)
    {-3}                                        the sender's token belongs to an older registration
    {-5}                                        the sender's connection was replaced by a newer login (4409)
]]
local ENTRY = 38
local DAY = 86400
local HEADER = 72 -- bytes read of the filter key's header: day, created, 16 counts (the header takes 128 bytes)
local HEADER_BITS = 1024
local FIRST_BITS = 262144
local BITS_PER_ENTRY = 12
local PROBES = 6
local MAX_FILTERS = 16
-- A number handed to redis.call is printed by Redis 7.0 with snprintf("%.17g"), ~2,300 instructions each, 27 of them
-- a notify; printed here with %d they cost about half (callgrind: the script went from 475k to 444k instructions).
local function int(n)
  return string.format('%d', n)
end
local HEADER_LAST = int(HEADER - 1)
local ttl = tonumber(ARGV[8])
local window = tonumber(ARGV[16])
local now = tonumber(redis.call('TIME')[1])
local today = math.floor(now / DAY)
local todayKey = KEYS[10 + today % 2]
local yesterdayKey = KEYS[10 + (today + 1) % 2]

-- A filter key's header if it is the given day's, else nil (absent, or a day two or more before: stale).
local function headerOf(key, day)
  local head = redis.call('GETRANGE', key, '0', HEADER_LAST)
  if #head < HEADER or struct.unpack('>I4', head, 1) ~= day then
    return nil
  end
  local counts = {}
  for i = 1, MAX_FILTERS do
    local count = struct.unpack('>I4', head, 5 + 4 * i)
    if count == 0 then
      break
    end
    counts[i] = count
  end
  return {created = struct.unpack('>I4', head, 5), counts = counts}
end

local probe1 = struct.unpack('>I4', ARGV[17], 1)
local probe2 = struct.unpack('>I4', ARGV[17], 5)
probe2 = probe2 - probe2 % 2 + 1 -- odd: the probes of a filter (a power of two of bits) are all different

-- The bit offsets of the probes into filter i (1-based) of a key, as redis.call's arguments.
local function probesOf(i)
  local size = FIRST_BITS * 2 ^ (i - 1)
  local base = HEADER_BITS + FIRST_BITS * (2 ^ (i - 1) - 1)
  local offsets = {}
  for j = 0, PROBES - 1 do
    offsets[#offsets + 1] = int(base + (probe1 + j * probe2) % size)
  end
  return offsets
end

-- Appends a GET of each probe of filters 1..n to a BITFIELD's arguments.
local function getProbes(args, n)
  for i = 1, n do
    for _, offset in ipairs(probesOf(i)) do
      args[#args + 1] = 'GET'
      args[#args + 1] = 'u1'
      args[#args + 1] = offset
    end
  end
  return args
end

-- Whether some filter's probes, `filters` groups of PROBES bits from bits[first] on, are all set.
local function anyAllSet(bits, first, filters)
  for i = 0, filters - 1 do
    local all = true
    for j = 0, PROBES - 1 do
      if bits[first + i * PROBES + j] == 0 then
        all = false
        break
      end
    end
    if all then
      return true
    end
  end
  return false
end

local function mayHold(key, header)
  if not header or #header.counts == 0 then
    return false
  end
  local bits = redis.call('BITFIELD_RO', key, unpack(getProbes({}, #header.counts))) -- GETs only: a read
  return anyAllSet(bits, 1, #header.counts)
end

-- The headers of today's and yesterday's filters, once read.
local todayHeader = nil
local yesterdayHeader = nil

-- Adds this req_id to today's filters, creating the day's key if it has none, and answers whether they may have held
-- it already: one BITFIELD, whose SETs on the filter written to answer each bit's old value and whose GETs probe the
-- day's earlier filters (a probe and a write were two calls, ~60k instructions of Redis each). A notify refused
-- after this (no main, a revoked sender) stays in the filters: a resend of its req_id costs one archive lookup.
local function addToToday()
  if not todayHeader then
    redis.call('DEL', todayKey)
    -- Header and first filter at once: a key made in one write is allocated at its size (grown bit by bit, twice).
    redis.call('SETRANGE', todayKey, '0',
      struct.pack('>I4I4', today, now) .. string.rep('\0', (HEADER_BITS + FIRST_BITS) / 8 - 8))
    redis.call('EXPIRE', todayKey, int(3 * DAY))
    todayHeader = {created = now, counts = {}}
  end
  local counts = todayHeader.counts
  local filter = math.max(1, #counts)
  if (counts[filter] or 0) >= math.floor(FIRST_BITS * 2 ^ (filter - 1) / BITS_PER_ENTRY) and filter < MAX_FILTERS then
    filter = filter + 1
  end
  local args = getProbes({'INCRBY', 'u32', int(32 + 32 * filter), '1'}, filter - 1)
  for _, offset in ipairs(probesOf(filter)) do
    args[#args + 1] = 'SET'
    args[#args + 1] = 'u1'
    args[#args + 1] = offset
    args[#args + 1] = '1'
  end
  -- The count's new value first, then the earlier filters' bits, then the old bits of the one written.
  return anyAllSet(redis.call('BITFIELD', todayKey, unpack(args)), 2, filter)
end

-- The event id of this req_id's record in a bucket, if it holds one younger than 24 h.
local function findIn(entries)
  local from = 1
  while true do
    local at = string.find(entries, ARGV[11], from, true)
    if not at then
      return nil
    end
    if (at - 1) % ENTRY == 0 and struct.unpack('>I4', entries, at + 8) > now - ttl then
      return string.sub(entries, at + 12, at + ENTRY - 1)
    end
    from = at + 1
  end
end

local bucket = ''
if ARGV[10] ~= '' then
  local existing = redis.call('GET', KEYS[2])
  if existing then
    return {1, existing}
  end
  bucket = redis.call('HGET', KEYS[7], ARGV[10]) or ''
  local found = findIn(bucket) or findIn(redis.call('HGET', KEYS[12], ARGV[19]) or '')
  if found then
    return {1, found}
  end
  todayHeader = headerOf(todayKey, today)
  yesterdayHeader = headerOf(yesterdayKey, today - 1)
  local heldToday = addToToday()
  if ARGV[18] ~= 'checked' and (heldToday or mayHold(yesterdayKey, yesterdayHeader)) then
    return {2}
  end
end

-- Calls a command on a key with a list of arguments, CHUNK at a time (Lua unpacks a bounded number of values).
local CHUNK = 512
local function callWithList(command, key, list)
  if #list == 0 then
    return {}
  elseif #list <= CHUNK then
    return redis.call(command, key, unpack(list))
  end
  local replies = {}
  for from = 1, #list, CHUNK do
    local reply = redis.call(command, key, unpack(list, from, math.min(#list, from + CHUNK - 1)))
    if type(reply) == 'table' then
      for i = 1, #reply do
        replies[#replies + 1] = reply[i]
      end
    end
  end
  return replies
end

local senderType = ARGV[3]
-- A sub's notify reads the whole registry (its recipients are the shop's mains), the sender's entry among it.
local registry = senderType == 'sub' and redis.call('HGETALL', KEYS[3]) or {}
local recipients = {}
local sender = nil
for i = 1, #registry, 2 do
  local device = cjson.decode(registry[i + 1])
  if registry[i] == ARGV[1] then
    sender = device
  end
  if device.type == 'main' then
    recipients[#recipients + 1] = registry[i]
  end
end
table.sort(recipients)
if ARGV[1] ~= '' then
  if senderType ~= 'sub' then
    local entry = redis.call('HGET', KEYS[3], ARGV[1])
    sender = entry and cjson.decode(entry)
  end
  if not sender or sender.type ~= senderType then
    return {-2}
  end
  if ARGV[2] ~= '' and sender.token_id ~= ARGV[2] then
    return {-3}
  end
end

-- The recipients' connections and, last, the sender's: one read of the shop's presence.
local asked = {}
for i = 1, #recipients do
  asked[i] = recipients[i]
end
local checksSender = ARGV[1] ~= '' and ARGV[9] ~= ''
if checksSender then
  asked[#asked + 1] = ARGV[1]
end
local routes = callWithList('HMGET', KEYS[6], asked)
-- The edge closes a replaced socket through pub/sub, which may lose the message: refuse it here as well.
if checksSender and routes[#asked] and cjson.decode(routes[#asked]).conn_id ~= ARGV[9] then
  return {-5}
end
if senderType == 'sub' and #recipients == 0 then
  return {-1}
end

-- The first pushes, to the recipients that have a connection.
local pushed = {}
local unreached = {}
for i = 1, #recipients do
  if routes[i] then
    local connection = cjson.decode(routes[i])
    local receivers = redis.call('SPUBLISH', ARGV[12] .. connection.edge_id,
      'deliver ' .. connection.conn_id .. '\n' .. ARGV[13] .. recipients[i] .. ARGV[14])
    pushed[#pushed + 1] = recipients[i]
    if receivers == 0 then
      unreached[#unreached + 1] = recipients[i]
    end
  end
end

-- A broadcast, to every connected sub but the sender.
if senderType ~= 'sub' then
  local online = redis.call('HGETALL', KEYS[6])
  for i = 1, #online, 2 do
    if online[i] ~= ARGV[1] then
      local connection = cjson.decode(online[i + 1])
      if connection.type == 'sub' then
        redis.call('SPUBLISH', ARGV[12] .. connection.edge_id, 'deliver ' .. connection.conn_id .. '\n' .. ARGV[15])
      end
    end
  end
end

local quoted = {}
for i = 1, #recipients do
  quoted[i] = '"' .. recipients[i] .. '"'
end
local body = ARGV[5] .. '[' .. table.concat(quoted, ',') .. ']' .. ARGV[6]
local streamId = redis.call('XADD', KEYS[1], '*', 't', 'NotifyRequested', 'e', body, 'u', table.concat(unreached, ' '))

local dash = string.find(streamId, '-', 1, true)
local padded = string.rep('0', 13 - (dash - 1)) .. string.sub(streamId, 1, dash - 1) .. '-' ..
  string.rep('0', 10 - (#streamId - dash)) .. string.sub(streamId, dash + 1)
-- One write per key for all the recipients (a call from a script costs more than the field it writes).
local messages = {}
local order = {}
for i = 1, #recipients do
  local messageId = ARGV[4] .. '.' .. recipients[i]
  messages[#messages + 1] = messageId
  messages[#messages + 1] = padded .. '|' .. ARGV[7]
  order[#order + 1] = '0'
  order[#order + 1] = recipients[i] .. '|' .. padded .. '|' .. messageId
end
callWithList('HSET', KEYS[4], messages)
callWithList('ZADD', KEYS[5], order)
-- The first push of a new message (its id is this event's): its attempt count starts at 1.
local attempts = {}
for i = 1, #pushed do
  attempts[#attempts + 1] = ARGV[4] .. '.' .. pushed[i]
  attempts[#attempts + 1] = '1'
end
callWithList('HSET', KEYS[8], attempts)

if ARGV[10] ~= '' then
  -- Records from this time on are in a filter that is still asked.
  local covered = (yesterdayHeader or todayHeader).created
  -- Asked only when the bucket's oldest record is past the window: a busy shop's buckets seldom hold one.
  local archivedMs = 0
  if #bucket >= ENTRY and struct.unpack('>I4', bucket, 9) < now - window then
    archivedMs = tonumber(redis.call('GET', KEYS[9]) or '0')
  end
  -- Entries are oldest first (each is appended at this Redis's time), so the ones to cut lead the bucket: look at
  -- them alone and keep the rest whole, so a write costs what it cuts, not what the bucket holds. An entry out of
  -- order (the clock stepped back) only stops the cut early: it and those after it are kept until a later write.
  local kept = {}
  local from = 1
  while from <= #bucket - ENTRY + 1 do
    local recorded = struct.unpack('>I4', bucket, from + 8)
    local dayOld = recorded <= now - ttl
    local pastWindow = recorded < now - window and (recorded + 1) * 1000 <= archivedMs
    if not dayOld and not pastWindow then
      break
    end
    if not dayOld and recorded < covered then
      kept[#kept + 1] = string.sub(bucket, from, from + ENTRY - 1) -- recorded before the filters: kept its 24 h
    end
    from = from + ENTRY
  end
  kept[#kept + 1] = string.sub(bucket, from)
  kept[#kept + 1] = ARGV[11] .. struct.pack('>I4', now) .. ARGV[4]
  redis.call('HSET', KEYS[7], ARGV[10], table.concat(kept))
  redis.call('EXPIRE', KEYS[7], int(ttl + 60))
end
return {0, ARGV[4], streamId, #recipients, #pushed - #unreached, #unreached}
