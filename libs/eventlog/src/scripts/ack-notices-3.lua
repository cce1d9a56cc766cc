--[[
  Acknowledges `handled` notices of one device (SPEC §10): each still pending leaves the inbox. Nothing is appended
  (a notice's receipt is transport state, like a push count); a late or repeated ack changes nothing.
  The copy's push count, kept for an ack of the copy still on its way (handle-7.lua), goes with the notice: the
  device has seen the notice, so an ack of the copy after it is a repeat.
  Input:
    KEYS[1] shop's inbox (hash id -> "<padded stream id>|<notice JSON>")
    KEYS[2] shop's inbox order (zset)
    KEYS[3] shop's push attempts (hash id -> count)
    ARGV[1] client id (every notice id below is "<event id>.<client id>#h"; the caller checked)
    ARGV[2..] notice ids
  Output: how many were pending
]]
local count = 0
for i = 2, #ARGV do
  local id = ARGV[i]
  local entry = redis.call('HGET', KEYS[1], id)
  if entry then
    redis.call('HDEL', KEYS[1], id)
    redis.call('ZREM', KEYS[2], ARGV[1] .. '|' .. string.sub(entry, 1, 24) .. '|' .. id)
    -- The notice's push count, and the count its copy kept for an ack of it still on its way (handle-7.lua).
    redis.call('HDEL', KEYS[3], id, string.sub(id, 1, -3))
    count = count + 1
  end
end
return count
