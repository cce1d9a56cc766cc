--[[
  Registers a device: refuses an active client_id, else records it in the registry and appends
  DeviceRegistered, atomically (two registrations of one client_id cannot both win).

  Input:
    KEYS[1] shard stream
    KEYS[2] shop's device registry (hash client_id -> JSON)

    ARGV[1] client id
    ARGV[2] registry JSON {type, token_id, registered_at, legacy?}
    ARGV[3] DeviceRegistered event JSON

  Output:
     {0, stream id}  registered
    {-1}             the client id is already registered and active
]]
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then
  return {-1}
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
local streamId = redis.call('XADD', KEYS[1], '*', 't', 'DeviceRegistered', 'e', ARGV[3])
return {0, streamId}
