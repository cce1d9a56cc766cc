--[[
  Routes and counts, in one round trip, a push of each still-undelivered message to its recipient's connection:
  the dispatcher's hot path (it was a presence read, then push-2.lua).

  Input:
    KEYS[1] shop's inbox (hash message id -> "<padded stream id>|<payload JSON>")
    KEYS[2] shop's push attempts (hash message id -> count)
    KEYS[3] shop's presence (hash client id -> presence JSON)

    ARGV[3i-2] message id
    ARGV[3i-1] recipient client id
    ARGV[3i]   attempt limit: push only while the count is below it

  Output: two values per message id
    n > 0, presence JSON   push it now as attempt n to that connection
    0, ''                  acked meanwhile, or its device has no connection (its next login pushes it): nothing
    -n < 0, ''             n attempts already, the limit is reached (the caller records DeliveryFailed)
]]
local result = {}
for i = 1, #ARGV, 3 do
  local id = ARGV[i]
  local route = false
  if redis.call('HEXISTS', KEYS[1], id) == 1 then
    route = redis.call('HGET', KEYS[3], ARGV[i + 1])
  end
  if not route then
    result[#result + 1] = 0
    result[#result + 1] = ''
  else
    local count = tonumber(redis.call('HGET', KEYS[2], id) or '0')
    if count >= tonumber(ARGV[i + 2]) then
      result[#result + 1] = -count
      result[#result + 1] = ''
    else
      result[#result + 1] = redis.call('HINCRBY', KEYS[2], id, '1')
      result[#result + 1] = route
    end
  end
end
return result
