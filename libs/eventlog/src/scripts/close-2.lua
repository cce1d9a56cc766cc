--[[
  Records a closed connection: appends ConnectionClosed, and removes the device's presence only if it still
  points at this connection (a newer login of the device keeps its own).

  Input:
    KEYS[1] shard stream
    KEYS[2] shop's presence

    ARGV[1] client id
    ARGV[2] connection id
    ARGV[3] ConnectionClosed event JSON

  Output:
    {0, stream id, 1 if the presence was removed else 0}
]]
local removed = 0
local current = redis.call('HGET', KEYS[2], ARGV[1])
if current and cjson.decode(current).conn_id == ARGV[2] then
  redis.call('HDEL', KEYS[2], ARGV[1])
  removed = 1
end
local streamId = redis.call('XADD', KEYS[1], '*', 't', 'ConnectionClosed', 'e', ARGV[3])
return {0, streamId, removed}
