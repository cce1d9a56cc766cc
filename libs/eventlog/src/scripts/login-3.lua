--[[
  Logs a device in: checks it is registered with this token, makes this connection its presence, and appends
  DeviceLoggedIn, in one atomic step.

  Input:
    KEYS[1] shard stream
    KEYS[2] shop's device registry (hash client_id -> JSON)
    KEYS[3] shop's presence (hash client_id -> connection JSON)

    ARGV[1] client id
    ARGV[2] token id ('' for a legacy login)
    ARGV[3] device type
    ARGV[4] connection JSON (presence entry)
    ARGV[5] DeviceLoggedIn event JSON
    ARGV[6] 'legacy' for a login over the original protocol (SPEC §9.1: no token; the device must be registered as
            legacy), else ''

  Output:
     {0, stream id, previous connection JSON or ''}  logged in; the previous connection must be closed (4409)
    {-2}                                             not registered (never, or revoked)
    {-3}                                             the token belongs to an older registration
    {-4}                                             the token's type is not the registered type
    {-7}                                             a legacy login of a device not registered as legacy
    {-6}                                             a newer connection of the device holds the presence: this
                                                     login landed late (its edge stalled); the caller closes
                                                     its own socket with 4409 and records nothing else
]]
local registered = redis.call('HGET', KEYS[2], ARGV[1])
if not registered then
  return {-2}
end
local device = cjson.decode(registered)
if ARGV[6] == 'legacy' then
  if device.legacy ~= true then
    return {-7}
  end
elseif device.token_id ~= ARGV[2] then
  return {-3}
end
if device.type ~= ARGV[3] then
  return {-4}
end
local previous = redis.call('HGET', KEYS[3], ARGV[1]) or ''
-- Connection ids are time-ordered (c_<ULID>): a login never replaces a connection opened after its own.
if previous ~= '' and cjson.decode(previous).conn_id > cjson.decode(ARGV[4]).conn_id then
  return {-6}
end
redis.call('HSET', KEYS[3], ARGV[1], ARGV[4])
local streamId = redis.call('XADD', KEYS[1], '*', 't', 'DeviceLoggedIn', 'e', ARGV[5])
return {0, streamId, previous}
