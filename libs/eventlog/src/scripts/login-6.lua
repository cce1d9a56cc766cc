--[[
  Logs a device in: checks it is registered with this token, makes this connection its presence, appends
  DeviceLoggedIn, and reads its backlog with a push of each entry counted, in one atomic step (one round trip per
  login: the backlog used to be two more).

  Input:
    KEYS[1] shard stream
    KEYS[2] shop's device registry (hash client_id -> JSON)
    KEYS[3] shop's presence (hash client_id -> connection JSON)
    KEYS[4] shop's inbox (hash message id -> "<padded stream id>|<payload JSON>")
    KEYS[5] shop's inbox order (zset, members "<client>|<padded stream id>|<message id>")
    KEYS[6] shop's push attempts (hash message id -> count)

    ARGV[1] client id
    ARGV[2] token id ('' for a legacy login)
    ARGV[3] device type
    ARGV[4] connection JSON (presence entry)
    ARGV[5] DeviceLoggedIn event JSON
    ARGV[6] 'legacy' for a login over the original protocol (SPEC §9.1: no token; the device must be registered as
            legacy), else ''

  Output:
     {0, stream id, previous connection JSON or '',  logged in; the previous connection must be closed (4409).
      id, attempt, inbox value, ...}                 Then the device's backlog in log order (messages and notices
                                                     alike; the caller puts notices last), each entry's push counted
                                                     (`attempt`, as push-2.lua counts a first push)
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
local result = {0, streamId, previous}
local members = redis.call('ZRANGEBYLEX', KEYS[5], '[' .. ARGV[1] .. '|', '[' .. ARGV[1] .. '|\255')
for i = 1, #members do
  local member = members[i]
  local id = string.match(member, '[^|]+$')
  local value = redis.call('HGET', KEYS[4], id)
  if value then
    result[#result + 1] = id
    result[#result + 1] = redis.call('HINCRBY', KEYS[6], id, '1')
    result[#result + 1] = value
  end
end
return result
