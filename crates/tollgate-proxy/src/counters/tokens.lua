-- Adds tokens a finished request used to an entity's last minute.
-- KEYS[1]: the entity's tpm key; ARGV[1]: tokens.
local second = redis.call('TIME')[1]
redis.call('HINCRBY', KEYS[1], second, ARGV[1])
redis.call('EXPIRE', KEYS[1], 120)
return 1
