--[[
  Acknowledges messages of one device: removes each still-undelivered one from the inbox and appends one
  MessageDelivered naming exactly those. Acking an already delivered message changes nothing, so a late or
  repeated ack marks a message delivered once.

  A copy that a handle took out of the inbox after it was written (SPEC §10) is undelivered too until its device
  acks it: handle-7.lua leaves its push count behind, with no inbox entry, until the copy's `handled` notice is
  acked. An ack that finds that count records the delivery (a device that acks a message, and a moment later
  another main handles the request, got the message) and takes the count, so it is recorded once.

  Input:
    KEYS[1] shard stream
    KEYS[2] shop's inbox (hash message id -> "<padded stream id>|<payload JSON>")
    KEYS[3] shop's inbox order (zset)
    KEYS[4] shop's push attempts (hash message id -> count)

    ARGV[1] client id (every message id below ends in ".<client id>"; the caller checked)
    ARGV[2] MessageDelivered event JSON up to its data's "ids" value
    ARGV[3..] message ids

  Output:
    {0, stream id, count}  appended, for count messages
    {1}                    nothing was undelivered; nothing appended
]]
local ids = {}
local attempts = {}
for i = 3, #ARGV do
  local id = ARGV[i]
  local entry = redis.call('HGET', KEYS[2], id)
  if entry then
    redis.call('HDEL', KEYS[2], id)
    redis.call('ZREM', KEYS[3], ARGV[1] .. '|' .. string.sub(entry, 1, 24) .. '|' .. id)
  end
  -- As Redis holds it (an integer's digits): a Lua number would be printed back with snprintf("%.14g"). Without
  -- an inbox entry, present only for a written copy a handle took (see above).
  local count = redis.call('HGET', KEYS[4], id)
  if entry or count then
    redis.call('HDEL', KEYS[4], id)
    ids[#ids + 1] = '"' .. id .. '"'
    attempts[#attempts + 1] = '"' .. id .. '":' .. (count or '0')
  end
end
if #ids == 0 then
  return {1}
end
local body = ARGV[2] .. '[' .. table.concat(ids, ',') .. '],"attempts":{' .. table.concat(attempts, ',') .. '}}}'
local streamId = redis.call('XADD', KEYS[1], '*', 't', 'MessageDelivered', 'e', body)
return {0, streamId, #ids}
