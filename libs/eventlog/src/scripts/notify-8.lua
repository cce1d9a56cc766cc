--[[
  Appends a NotifyRequested once per (sender, req_id), deciding its recipients from the shop's registry in the
  same atomic step (SPEC §5.2), puts one message per recipient in the shop's inbox, and makes the first push of each
  message to its recipient's connection (issue 18: the routing the dispatcher did after reading the event, done in
  the append, so a notify costs no dispatcher round trip and no wake-up; nothing can happen in between).

  A push is a PUBLISH to the edge holding the connection (a `deliver` command, edge-commands.ts). The main devices
  it reached no edge for are written in the stream entry's `u` field (space-separated client ids, '' for none): the
  dispatcher reads them and schedules their retries in BullMQ (SPEC §3). A main's or the back office's notify is
  broadcast here to the shop's connected subs but the sender (best effort: nothing is retried), and its entry has
  an empty `u`. An entry with a `u` field was routed here; one without it (an earlier version's) is routed by the
  dispatcher. On a Redis Cluster PUBLISH counts only the node's own subscribers: ARGV[15] is then 'node-local'
  and every push to a main is written in `u` (its retry finds it acked).

  The req_id records of a shop are one hash of 1,024 buckets (issue 19: no key per notify). A bucket is a string of
  38-byte entries, oldest first: the 8-byte tag of the (sender, req_id) digest, the record's time (4 bytes, big
  endian, seconds of this Redis's clock), the 26-character event id. A record counts for ARGV[8] seconds; expired
  entries are cut from a bucket's head whenever it is written, and the hash expires when the shop has been quiet
  for longer than that.

  Input:
    KEYS[1] shard stream
    KEYS[2] the per-req_id record key of versions before the bucketed records (read only, until they expire)
    KEYS[3] shop's device registry (hash client_id -> JSON)
    KEYS[4] shop's inbox (hash message id -> "<padded stream id>|<payload JSON>")
    KEYS[5] shop's inbox order (zset, members "<client>|<padded stream id>|<message id>")
    KEYS[6] shop's presence (hash client_id -> connection JSON)
    KEYS[7] shop's req_id records (hash bucket -> entries)
    KEYS[8] shop's push attempts (hash message id -> count)

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
    ARGV[12] edge channel prefix (an edge's channel is this followed by its id)
    ARGV[13] message frame up to the recipient's client id (its `id` is "<event id>.<client id>")
    ARGV[14] message frame after the recipient's client id (attempt 1)
    ARGV[15] 'exact', or 'node-local' when PUBLISH counts only this node's subscribers (Cluster)
    ARGV[16] the broadcast frame of a main's or the back office's notify (unused for a sub's)

  Output:
     {0, event id, stream id, recipient count,  appended; pushes made (their edge received them),
      pushed, unreached}                         pushes that reached no edge (retried by the dispatcher)
     {1, event id}                              a duplicate of an earlier notify: its event id
    {-1}                                        a sub's notify, and the shop has no registered main device
    {-2}                                        the sender is not a registered device of the shop (revoked)
    {-3}                                        the sender's token belongs to an older registration
    {-5}                                        the sender's connection was replaced by a newer login (4409)
]]
local ENTRY = 38
local ttl = tonumber(ARGV[8])
local now = tonumber(redis.call('TIME')[1])
local bucket = ''
if ARGV[10] ~= '' then
  local existing = redis.call('GET', KEYS[2])
  if existing then
    return {1, existing}
  end
  bucket = redis.call('HGET', KEYS[7], ARGV[10]) or ''
  local from = 1
  while true do
    local at = string.find(bucket, ARGV[11], from, true)
    if not at then
      break
    end
    if (at - 1) % ENTRY == 0 and struct.unpack('>I4', bucket, at + 8) > now - ttl then
      return {1, string.sub(bucket, at + 12, at + ENTRY - 1)}
    end
    from = at + 1
  end
end

local recipients = {}
local senderType = ARGV[3]
if ARGV[1] ~= '' then
  local sender = redis.call('HGET', KEYS[3], ARGV[1])
  if not sender then
    return {-2}
  end
  local device = cjson.decode(sender)
  if device.type ~= senderType then
    return {-2}
  end
  if ARGV[2] ~= '' and device.token_id ~= ARGV[2] then
    return {-3}
  end
  -- The edge closes a replaced socket through pub/sub, which may lose the message: refuse it here as well.
  if ARGV[9] ~= '' then
    local current = redis.call('HGET', KEYS[6], ARGV[1])
    if current and cjson.decode(current).conn_id ~= ARGV[9] then
      return {-5}
    end
  end
end

if senderType == 'sub' then
  local registry = redis.call('HGETALL', KEYS[3])
  for i = 1, #registry, 2 do
    if cjson.decode(registry[i + 1]).type == 'main' then
      recipients[#recipients + 1] = registry[i]
    end
  end
  if #recipients == 0 then
    return {-1}
  end
  table.sort(recipients)
end

-- The first pushes, to the recipients that have a connection.
local pushed = {}
local unreached = {}
for i = 1, #recipients do
  local route = redis.call('HGET', KEYS[6], recipients[i])
  if route then
    local connection = cjson.decode(route)
    local receivers = redis.call('PUBLISH', ARGV[12] .. connection.edge_id,
      'deliver ' .. connection.conn_id .. '\n' .. ARGV[13] .. recipients[i] .. ARGV[14])
    pushed[#pushed + 1] = recipients[i]
    if receivers == 0 or ARGV[15] == 'node-local' then
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
        redis.call('PUBLISH', ARGV[12] .. connection.edge_id, 'deliver ' .. connection.conn_id .. '\n' .. ARGV[16])
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
for i = 1, #recipients do
  local messageId = ARGV[4] .. '.' .. recipients[i]
  redis.call('HSET', KEYS[4], messageId, padded .. '|' .. ARGV[7])
  redis.call('ZADD', KEYS[5], 0, recipients[i] .. '|' .. padded .. '|' .. messageId)
end
for i = 1, #pushed do
  redis.call('HINCRBY', KEYS[8], ARGV[4] .. '.' .. pushed[i], 1)
end

if ARGV[10] ~= '' then
  local keep = 1
  while keep < #bucket and struct.unpack('>I4', bucket, keep + 8) <= now - ttl do
    keep = keep + ENTRY
  end
  redis.call('HSET', KEYS[7], ARGV[10], string.sub(bucket, keep) .. ARGV[11] .. struct.pack('>I4', now) .. ARGV[4])
  redis.call('EXPIRE', KEYS[7], ttl + 60)
end
return {0, ARGV[4], streamId, #recipients, #pushed - #unreached, #unreached}
