-- Gives back a parallel-request slot of this replica.
-- KEYS[1]: the entity's parallel key; ARGV[1]: this replica's id.
local left = redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
if left <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
return left
