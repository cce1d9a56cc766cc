--[[
  Revokes a device: removes it from the registry (its tokens stop working at once) and appends DeviceRevoked.

  Input:
    KEYS[1] shard stream
    KEYS[2] shop's device registry
    KEYS[3] shop's presence

    ARGV[1] client id
    ARGV[2] DeviceRevoked event JSON

  Output:
     {0, stream id, connection JSON or ''}  revoked; the live connection, if any, must be closed (4403)
    {-1}                                     no such active device
]]
if redis.call('HDEL', KEYS[2], ARGV[1]) == 0 then
  return {-1}
end
local connection = redis.call('HGET', KEYS[3], ARGV[1]) or ''
local streamId = redis.call('XADD', KEYS[1], '*', 't', 'DeviceRevoked', 'e', ARGV[2])
return {0, streamId, connection}
