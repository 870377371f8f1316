-- Take the half-open probe lease for token ARGV[1], for ARGV[2] ms.
-- KEYS[1] = <prefix>{name}:open, KEYS[2] = <prefix>{name}:probe
-- Returns {1, 0} granted (or already held by this token, then extended),
-- {0, ms} still open or held by another process, for ms more.
local left = redis.call('PTTL', KEYS[1])
if left > 0 then
  return {0, left}
end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {1, 0}
end
if redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
  return {1, 0}
end
return {0, redis.call('PTTL', KEYS[2])}
