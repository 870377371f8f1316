-- A reset: withdraw the opening this process published (open-until ARGV[1], in
-- Redis time, ms; 0 for none) if it is still the one in force, and give the
-- probe lease back if this process (token ARGV[2]) holds it.
-- KEYS[1] = <prefix>{name}:open, KEYS[2] = <prefix>{name}:probe
-- Returns 1 when the opening was withdrawn, 0 otherwise.
local withdrawn = 0
if ARGV[1] ~= '0' and tonumber(redis.call('GET', KEYS[1])) == tonumber(ARGV[1]) then
  withdrawn = redis.call('DEL', KEYS[1])
end
if redis.call('GET', KEYS[2]) == ARGV[2] then
  redis.call('DEL', KEYS[2])
end
return withdrawn
