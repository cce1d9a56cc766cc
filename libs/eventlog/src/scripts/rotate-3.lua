--[[
  Rotates a registered device's token: the registry entry takes the new token id (type and registered_at stay, so
  do the device's inbox and pending messages) and DeviceTokenRotated is appended, atomically. Logins and notifies
  compare token ids against the registry in their own atomic steps, so the old token is refused from the next one.

  Input:
    KEYS[1] shard stream
    KEYS[2] shop's device registry (hash client_id -> JSON {type, token_id, registered_at})
    KEYS[3] shop's presence (hash client_id -> connection JSON)

    ARGV[1] client id
    ARGV[2] new token id
    ARGV[3] DeviceTokenRotated event JSON

  Output:
     {0, stream id, registry JSON, connection JSON or ''}  rotated; the registry entry as it is now, and the live
                                                          connection (logged in with an old token), which must be
                                                          closed (4403)
    {-1}                                                  no such active device
]]
local registered = redis.call('HGET', KEYS[2], ARGV[1])
if not registered then
  return {-1}
end
local device = cjson.decode(registered)
device.token_id = ARGV[2]
local entry = cjson.encode(device)
redis.call('HSET', KEYS[2], ARGV[1], entry)
local connection = redis.call('HGET', KEYS[3], ARGV[1]) or ''
local streamId = redis.call('XADD', KEYS[1], '*', 't', 'DeviceTokenRotated', 'e', ARGV[3])
return {0, streamId, entry, connection}
