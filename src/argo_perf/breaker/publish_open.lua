-- The circuit is open for ARGV[1] ms: never shorten a longer opening, and
-- drop the probe lease if this process (token ARGV[2]) held it.
-- KEYS[1] = <prefix>{name}:open, KEYS[2] = <prefix>{name}:probe
-- Returns the open-until instant in Redis time (ms) when this opening is the one
-- in force now, 0 when a longer one was (then this process has nothing to withdraw).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ms = tonumber(ARGV[1])
local published = 0
if redis.call('PTTL', KEYS[1]) < ms then
  redis.call('SET', KEYS[1], now + ms, 'PX', ms)
  published = now + ms
end
if redis.call('GET', KEYS[2]) == ARGV[2] then
  redis.call('DEL', KEYS[2])
end
return published
