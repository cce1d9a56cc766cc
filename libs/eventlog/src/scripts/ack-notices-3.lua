--[[
  Acknowledges `handled` notices of one device (SPEC §10): each still pending leaves the inbox. Nothing is appended
  (a notice's receipt is transport state, like a push count); a late or repeated ack changes nothing.
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
    redis.call('HDEL', KEYS[3], id)
    count = count + 1
  end
end
return count
