-- Milliseconds the opening KEYS[1] has left (PTTL: -2 none, -1 no expiry).
return redis.call('PTTL', KEYS[1])
