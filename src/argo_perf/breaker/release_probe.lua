-- Give the probe lease KEYS[1] back if token ARGV[1] holds it.
-- Returns 1 when it was released, 0 otherwise.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
