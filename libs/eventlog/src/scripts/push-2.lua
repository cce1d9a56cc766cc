--[[
  Counts a push of each still-undelivered message, within its attempt limit.

  Input:
    KEYS[1] shop's inbox (hash message id -> "<padded stream id>|<payload JSON>")
    KEYS[2] shop's push attempts (hash message id -> count)

    ARGV[2i-1] message id
    ARGV[2i]   attempt limit: push only while the count is below it

  Output: one number per message id
    n > 0   push it now as attempt n
    0       acked meanwhile: do not push
    -n < 0  n attempts already, the limit is reached: do not push (the caller records DeliveryFailed)
]]
local result = {}
for i = 1, #ARGV, 2 do
  local id = ARGV[i]
  if redis.call('HEXISTS', KEYS[1], id) == 0 then
    result[#result + 1] = 0
  else
    local count = tonumber(redis.call('HGET', KEYS[2], id) or '0')
    if count >= tonumber(ARGV[i + 1]) then
      result[#result + 1] = -count
    else
      result[#result + 1] = redis.call('HINCRBY', KEYS[2], id, '1')
    end
  end
end
return result
