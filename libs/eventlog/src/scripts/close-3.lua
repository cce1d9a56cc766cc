--[[
  Records a closed connection once: appends ConnectionClosed, and removes the device's presence only if it still
  points at this connection (a newer login of the device keeps its own). A connection already recorded closed (a
  retry whose first reply was lost, or the dead-edge sweep after the edge itself) appends nothing again; closes are
  remembered for ARGV[5] ms, far longer than any retry.

  Input:
    KEYS[1] shard stream
    KEYS[2] shop's presence
    KEYS[3] shop's recently closed connections (zset conn id, score ms)

    ARGV[1] client id
    ARGV[2] connection id
    ARGV[3] ConnectionClosed event JSON
    ARGV[4] now, ms
    ARGV[5] how long a close is remembered, ms

  Output:
    {0, stream id, 1 if the presence was removed else 0}
    {1}  already recorded: nothing appended
]]
local now = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - tonumber(ARGV[5]))
if redis.call('ZADD', KEYS[3], 'NX', now, ARGV[2]) == 0 then
  return {1}
end
local removed = 0
local current = redis.call('HGET', KEYS[2], ARGV[1])
if current and cjson.decode(current).conn_id == ARGV[2] then
  redis.call('HDEL', KEYS[2], ARGV[1])
  removed = 1
end
local streamId = redis.call('XADD', KEYS[1], '*', 't', 'ConnectionClosed', 'e', ARGV[3])
return {0, streamId, removed}
