--[[
  Handles a request (SPEC §10): the first handle of a notify's copies is recorded, for all of them, as one
  MessageHandled; a later one by the same handler with the same status answers the first, any other answers who
  was first. In the same step every copy leaves the inbox (no more pushes of it): a copy its main was written gets
  a `handled` notice in the inbox instead (pushed, backlogged at login and acked like a message), a copy never
  written is dropped (handled without delivery), and the handler's own copy needs neither. Each notice is pushed in
  the same step to its main's connection, if it has one (an SPUBLISH on its edge's channel, as notify-12.lua
  pushes messages); the mains whose push reached no edge are written in the entry's `u` field for the dispatcher
  to retry. A copy taken out of the inbox after it was written keeps its push count until its notice is acked, so
  that an ack of it still on its way is recorded (ack-4.lua).

  Input:
    KEYS[1] shard stream
    KEYS[2] shop's handling records (hash notify event id -> JSON {by, at, status, id})
    KEYS[3] shop's handling records by time (zset notify event id, score ms)
    KEYS[4] shop's inbox (hash id -> "<padded stream id>|<payload JSON>")
    KEYS[5] shop's inbox order (zset, members "<client>|<padded stream id>|<id>")
    KEYS[6] shop's push attempts (hash id -> count)
    KEYS[7] shop's presence (hash client_id -> connection JSON)

    ARGV[1] notify event id (the request)
    ARGV[2] handler as JSON ({kind, client_id?})
    ARGV[3] status
    ARGV[4] handling record JSON to keep
    ARGV[5] now, ms
    ARGV[6] how long a handling record is kept, ms
    ARGV[7] MessageHandled event JSON up to its data's "notices" value
    ARGV[8] the notice JSON shared by the copies, without op and id ('{"event_id":…,"handled_at":…}')
    ARGV[9] the handler's own copy ('' for the back office)
    ARGV[10] the shard's edge channel prefix (an edge's channel is this followed by its id)
    ARGV[11..] the request's copies (message ids "<event id>.<client id>")

  Output:
    {0, stream id, notices}  recorded
    {1, record JSON}         the same handler handled it with the same status before: nothing recorded
    {2, record JSON}         someone else handled it first (or the same handler with another status)
]]
local now = tonumber(ARGV[5])
-- Records older than the keeping time go, a few per call.
local old = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now - tonumber(ARGV[6]), 'LIMIT', 0, 32)
for i = 1, #old do
  redis.call('HDEL', KEYS[2], old[i])
  redis.call('ZREM', KEYS[3], old[i])
end

local record = redis.call('HGET', KEYS[2], ARGV[1])
if record then
  local first = cjson.decode(record)
  local by = cjson.decode(ARGV[2])
  if first.by.kind == by.kind and first.by.client_id == by.client_id and
      tonumber(first.status) == tonumber(ARGV[3]) then
    return {1, record}
  end
  return {2, record}
end

local notices = {}
local dropped = {}
for i = 11, #ARGV do
  local id = ARGV[i]
  local client = string.sub(id, 28)
  local entry = redis.call('HGET', KEYS[4], id)
  local written = true
  if entry then
    redis.call('HDEL', KEYS[4], id)
    redis.call('ZREM', KEYS[5], client .. '|' .. string.sub(entry, 1, 24) .. '|' .. id)
    written = tonumber(redis.call('HGET', KEYS[6], id) or '0') > 0
    -- A written copy of another main keeps its push count, out of the inbox, until its notice is acked: its
    -- device's ack may be on its way, and ack-4.lua then records the delivery once (see there).
    if not written or id == ARGV[9] then
      redis.call('HDEL', KEYS[6], id)
    end
  end
  if id ~= ARGV[9] then
    if written then
      notices[#notices + 1] = id
    else
      dropped[#dropped + 1] = id
    end
  end
end

local function quoted(list)
  local out = {}
  for i = 1, #list do
    out[i] = '"' .. list[i] .. '"'
  end
  return '[' .. table.concat(out, ',') .. ']'
end
-- The notices' first pushes, to the mains that have a connection.
local pushed = {}
local unreached = {}
for i = 1, #notices do
  local client = string.sub(notices[i], 28)
  local route = redis.call('HGET', KEYS[7], client)
  if route then
    local connection = cjson.decode(route)
    local frame = '{"op":"handled","id":"' .. notices[i] .. '",' .. string.sub(ARGV[8], 2)
    local receivers = redis.call('SPUBLISH', ARGV[10] .. connection.edge_id,
      'deliver ' .. connection.conn_id .. '\n' .. frame)
    pushed[#pushed + 1] = notices[i] .. '#h'
    if receivers == 0 then
      unreached[#unreached + 1] = client
    end
  end
end

local body = ARGV[7] .. quoted(notices) .. ',"dropped":' .. quoted(dropped) .. '}}'
local streamId = redis.call('XADD', KEYS[1], '*', 't', 'MessageHandled', 'e', body, 'u', table.concat(unreached, ' '))

local dash = string.find(streamId, '-', 1, true)
local padded = string.rep('0', 13 - (dash - 1)) .. string.sub(streamId, 1, dash - 1) .. '-' ..
  string.rep('0', 10 - (#streamId - dash)) .. string.sub(streamId, dash + 1)
for i = 1, #notices do
  local notice = notices[i] .. '#h'
  redis.call('HSET', KEYS[4], notice, padded .. '|' .. ARGV[8])
  redis.call('ZADD', KEYS[5], '0', string.sub(notices[i], 28) .. '|' .. padded .. '|' .. notice)
end

for i = 1, #pushed do
  redis.call('HINCRBY', KEYS[6], pushed[i], '1')
end

redis.call('HSET', KEYS[2], ARGV[1], ARGV[4])
redis.call('ZADD', KEYS[3], now, ARGV[1])
return {0, streamId, #notices}
