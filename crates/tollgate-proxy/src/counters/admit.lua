-- Admits one request against the rate limits of its key, user and team, all or nothing.
-- KEYS: for each entity, in order, its rpm, tpm and parallel keys.
-- ARGV[1]: this replica's id; ARGV[2]: the prefix of replicas' heartbeat keys;
-- then for each entity its rpm, tpm and parallel limits (0: none).
-- Returns {0} when admitted (rpm taken, one parallel slot taken for every parallel limit),
-- else {entity index (1-based), kind, wait in ms, used}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local second = tonumber(t[1])
local me = ARGV[1]
local beats = ARGV[2]
local n = #KEYS / 3

-- Tokens over the last minute, one hash field per second.
for i = 0, n - 1 do
  local tpm = tonumber(ARGV[3 + i * 3 + 1])
  if tpm > 0 then
    local key = KEYS[i * 3 + 2]
    local flat = redis.call('HGETALL', key)
    local used, oldest = 0, nil
    for j = 1, #flat, 2 do
      local s = tonumber(flat[j])
      if s + 60 <= second then
        redis.call('HDEL', key, flat[j])
      else
        used = used + tonumber(flat[j + 1])
        if oldest == nil or s < oldest then oldest = s end
      end
    end
    if used >= tpm then
      return {i + 1, 'tpm', (oldest + 60 - second) * 1000, used}
    end
  end
end

-- Requests in flight: one hash field per replica, counted while the replica's heartbeat lives.
for i = 0, n - 1 do
  local limit = tonumber(ARGV[3 + i * 3 + 2])
  if limit > 0 then
    local key = KEYS[i * 3 + 3]
    local flat = redis.call('HGETALL', key)
    local total = 0
    for j = 1, #flat, 2 do
      local replica = flat[j]
      if replica == me or redis.call('EXISTS', beats .. replica) == 1 then
        total = total + tonumber(flat[j + 1])
      else
        redis.call('HDEL', key, replica)
      end
    end
    if total >= limit then
      return {i + 1, 'parallel', 1000, total}
    end
  end
end

-- Requests per minute as a GCRA: the key holds the theoretical arrival time in microseconds.
local tats = {}
for i = 0, n - 1 do
  local rpm = tonumber(ARGV[3 + i * 3])
  if rpm > 0 then
    local interval = math.floor(60000000 / rpm)
    local tolerance = interval * (rpm - 1)
    local tat = tonumber(redis.call('GET', KEYS[i * 3 + 1]) or '0')
    local start = math.max(tat, now)
    if start > now + tolerance then
      return {i + 1, 'rpm', math.ceil((start - tolerance - now) / 1000), rpm}
    end
    tats[i] = start + interval
  end
end

for i = 0, n - 1 do
  if tats[i] ~= nil then
    local ttl = math.ceil((tats[i] - now) / 1000) + 1000
    redis.call('SET', KEYS[i * 3 + 1], string.format('%.0f', tats[i]), 'PX', ttl)
  end
  if tonumber(ARGV[3 + i * 3 + 2]) > 0 then
    redis.call('HINCRBY', KEYS[i * 3 + 3], me, 1)
    redis.call('PEXPIRE', KEYS[i * 3 + 3], 86400000)
  end
end
return {0}
