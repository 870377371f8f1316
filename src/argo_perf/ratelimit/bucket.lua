-- The token arithmetic of argo_perf.ratelimit._gcra (GCRA) for a bucket kept in
-- Redis, in microseconds of Redis TIME, so every process and host shares one
-- clock and a client whose own clock is wrong cannot take more than its share.
-- Each rule here is the rule of the Python method named beside it; the parity
-- tests in tests/test_ratelimit_redis.py hold the two together.
--
-- KEYS[1]  the bucket: its theoretical arrival times, one per window, space-separated
-- KEYS[2]  the queue, while reservations wait: the last id handed out, ``base``
--          (the windows before the first pending reservation), then one
--          "id grant tokens moved" entry per pending reservation, in arrival
--          order (as _TokenMath.base and _TokenMath.pending); ``moved`` is how
--          far penalties pushed its grant time
-- KEYS[3]  (s only) the intervals the state was last rescaled to, so that every
--          process reconfiguring to the same windows rescales the state once
-- ARGV[1]  "r" reserve, "f" refund, "c" confirm a waiter's grant, "p" penalize,
--          "w" wait time, "a" available, "s" rescale to new windows (reconfigure)
-- ARGV[2]  tokens (r, f, w), the penalty in microseconds (p), or the microseconds
--          of ``moved`` the waiter already slept (c)
-- ARGV[3]  r: the most microseconds a reserving caller will wait, -1 for no limit;
--          f, c: the reservation's id (its reply's second element);
--          s: the old windows (interval and tolerance pairs), space-separated
-- ARGV[4..] interval and tolerance per window, in microseconds
-- Reply: 0 granted now (c: the grant time has come); {n, id} reserved, wait n > 0
-- microseconds; n < 0 denied, n would have been needed (nothing taken); c: n > 0,
-- a penalty moved the grant, sleep n more microseconds. (Confirming by how far the
-- grant moved, not by Redis TIME, keeps the waiter's own clock in charge of sleeping.)
-- w: microseconds until the tokens exist (>= 0); a: tokens available, as a string.
local t = redis.call('TIME')
local now = t[1] * 1000000 + t[2]
local raw = redis.call('GET', KEYS[1])
local op, amount = ARGV[1], tonumber(ARGV[2])
local n = (#ARGV - 3) / 2
if n == 1 and op == 'r' then
  -- The hot path (one window, granted now, nobody queued): the general code
  -- below, unrolled. A queue can only hold waiters while the window is not full.
  local old = tonumber(raw)
  local known = old ~= nil and old == math.floor(old) and old > 0 and old < 1e17
  if not known then old = now end
  local tat = math.max(old, now) + amount * tonumber(ARGV[4])
  local wait = tat - tonumber(ARGV[5]) - now
  if wait <= 0 and (old <= now or redis.call('EXISTS', KEYS[2]) == 0) then
    tat = math.ceil(tat)
    local second = math.floor(tat / 1000000)
    if not known or second > math.floor(old / 1000000) then
      redis.call('SET', KEYS[1], tat, 'PX', (second + 2) * 1000 - math.floor(now / 1000))
    else
      redis.call('INCRBY', KEYS[1], tat - old)
    end
    return 0
  end
  local max_wait = tonumber(ARGV[3])
  if max_wait >= 0 and wait > max_wait then
    return -math.max(1, math.ceil(wait))
  end
end
local tats, iv, tol = {}, {}, {}
if raw then
  local i = 0
  for v in string.gmatch(raw, '%S+') do
    i = i + 1
    tats[i] = tonumber(v)
  end
end
-- The windows the state is in: the new ones, but the old ones while rescaling.
local sv, m = {}, n
if op == 's' then
  local from = redis.call('GET', KEYS[3]) or ARGV[3]
  if from == table.concat(ARGV, ' ', 4, 3 + 2 * n) then return 0 end  -- done already
  local k = 0
  for v in string.gmatch(from, '%S+') do
    k = k + 1
    if k % 2 == 1 then sv[(k + 1) / 2] = tonumber(v) end
  end
  m = #sv
end
for j = 1, math.max(n, m) do
  if j <= n then iv[j], tol[j] = tonumber(ARGV[2 + 2 * j]), tonumber(ARGV[3 + 2 * j]) end
  if op ~= 's' then sv[j] = iv[j] end
  -- missing or unreadable state counts as a full bucket
  local v = tats[j]
  if type(v) ~= 'number' or v ~= math.floor(v) or v <= 0 or v >= 1e17 then
    tats[j] = now
  end
end
if op == 'w' then  -- _TokenMath.wait_time
  local wait = 0
  for j = 1, n do
    wait = math.max(wait, math.max(tats[j], now) + amount * iv[j] - tol[j] - now)
  end
  return math.ceil(wait)
end
if op == 'a' then  -- _TokenMath.available
  local tokens = math.huge
  for j = 1, n do
    tokens = math.min(tokens, (tol[j] - math.max(0, tats[j] - now)) / iv[j])
  end
  return string.format('%.17g', math.max(0, tokens))
end
-- The queue. Unreadable: no queue (waiters then keep what they reserved).
local last_id, base, queue = 0, {}, {}
local qraw = redis.call('GET', KEYS[2])
if qraw then
  local f = {}
  for v in string.gmatch(qraw, '%S+') do f[#f + 1] = tonumber(v) end
  if #f >= 1 + m and (#f - 1 - m) % 4 == 0 then
    last_id = f[1]
    for j = 1, m do base[j] = f[1 + j] end
    for k = 2 + m, #f, 4 do queue[#queue + 1] = {f[k], f[k + 1], f[k + 2], f[k + 3]} end
  end
end
local function find(id)
  for k = 1, #queue do
    if queue[k][1] == id then return k end
  end
  return nil
end
if op == 'c' then
  local k = find(tonumber(ARGV[3]))
  if k and queue[k][2] > now and queue[k][4] > amount then return queue[k][4] - amount end
  return 0
end
-- Reservations whose grant time has come are folded into base (_TokenMath._prune).
while #queue > 0 and queue[1][2] <= now do
  local done = table.remove(queue, 1)
  if #queue > 0 then
    for j = 1, m do base[j] = math.max(base[j], done[2]) + done[3] * sv[j] end
  end
end
local function replay(start)
  local r = {}
  for j = 1, n do r[j] = start[j] end
  for k = 1, #queue do
    for j = 1, n do r[j] = math.max(r[j], queue[k][2]) + queue[k][3] * iv[j] end
  end
  return r
end
local reply = 0
if op == 'r' then  -- _TokenMath.reserve
  local wait = -1e300
  for j = 1, n do
    local w = math.max(tats[j], now) + amount * iv[j] - tol[j] - now
    if w > wait then wait = w end
  end
  local max_wait = tonumber(ARGV[3])
  if wait <= 0 then
    wait = 0
  elseif max_wait >= 0 and wait > max_wait then
    return -math.max(1, math.ceil(wait))
  end
  local grant = math.ceil(now + wait)
  if wait > 0 or #queue > 0 then
    if #queue == 0 then
      for j = 1, n do base[j] = tats[j] end
    end
    last_id = math.max(now, last_id + 1)
    queue[#queue + 1] = {last_id, grant, amount, 0}
    if wait > 0 then reply = {math.ceil(wait), last_id} end
  end
  for j = 1, n do tats[j] = math.max(tats[j], grant) + amount * iv[j] end
elseif op == 'f' then  -- _TokenMath.refund
  local k = find(tonumber(ARGV[3]))
  if not k then return 0 end  -- granted already (or its queue is gone): nothing back
  table.remove(queue, k)
  local r = replay(base)
  for j = 1, n do tats[j] = math.min(tats[j], r[j]) end
elseif op == 's' then  -- _TokenMath.rescaled: tokens owed stay owed, at the new rates
  local function rescale(values)
    local out = {}
    for j = 1, n do
      local v = values[j]
      if j > m or v == nil or v <= now then out[j] = now else
        out[j] = now + (v - now) / sv[j] * iv[j]
      end
    end
    return out
  end
  tats = rescale(tats)
  if #queue > 0 then base = rescale(base) end
  redis.call('SET', KEYS[3], table.concat(ARGV, ' ', 4, 3 + 2 * n), 'PX', 86400000)
else  -- _TokenMath.penalize
  -- A penalty: every window has one token at its end; queued waiters move
  -- after it, in arrival order.
  for j = 1, n do
    local floor = now + amount + tol[j] - iv[j]
    if #queue > 0 then base[j] = math.max(base[j], floor) end
    tats[j] = math.max(tats[j], floor)
  end
  local r = {}
  for j = 1, n do r[j] = base[j] end
  for k = 1, #queue do
    local e = queue[k]
    local grant = e[2]
    for j = 1, n do grant = math.max(grant, r[j] + e[3] * iv[j] - tol[j]) end
    grant = math.ceil(grant)
    e[4] = e[4] + grant - e[2]
    e[2] = grant
    for j = 1, n do r[j] = math.max(r[j], e[2]) + e[3] * iv[j] end
  end
  if #queue > 0 then
    for j = 1, n do tats[j] = math.max(tats[j], r[j]) end
  end
end
-- Whole microseconds, rounded up: never early, and exact in a Lua double.
local new_last = now
for j = 1, n do
  tats[j] = math.ceil(tats[j])
  if tats[j] > new_last then new_last = tats[j] end
end
if new_last <= now then
  redis.call('DEL', KEYS[1])  -- every window is full: the state says nothing
else
  -- The key expires when idle, within two seconds of every window being full.
  local px = (math.floor(new_last / 1000000) + 2) * 1000 - math.floor(now / 1000)
  for j = 1, n do tats[j] = string.format('%d', tats[j]) end
  redis.call('SET', KEYS[1], table.concat(tats, ' '), 'PX', px)
end
if #queue == 0 then
  redis.call('DEL', KEYS[2])
else
  local out, latest = {string.format('%d', last_id)}, now
  for j = 1, n do out[#out + 1] = string.format('%.17g', base[j]) end
  for k = 1, #queue do
    local e = queue[k]
    out[#out + 1] = string.format('%d %d %.17g %d', e[1], e[2], e[3], e[4])
    if e[2] > latest then latest = e[2] end
  end
  redis.call('SET', KEYS[2], table.concat(out, ' '), 'PX',
    math.ceil((latest - now) / 1000) + 2000)
end
return reply
