-- Set and remove counter memberships in one counter sub-key (Headcount, Redis adapter).
--
-- A counter key (environment, id type, id) is split into sub-keys by hash(viewer), so a
-- viewer's views all land in one sub-key and viewers stay exact as sums. A sub-key holds:
--   KEYS[1] hash: viewer field ('w'..viewer, or 's'..view for a view that is its own viewer)
--           -> how many of its views count here; '#v' views, '#u' distinct viewers, '#e' the
--           lease time at which the keys' TTL was last set (it is set again only once a
--           quarter of it has passed: two PEXPIREs on every call were a fifth of the
--           script's cost)
--   KEYS[2] zset: membership (view(8)..viewer field(9)) -> lease expiry. The membership
--           carries its viewer, so the zset alone says which viewer a lapsed or removed
--           membership leaves (no view -> viewer entry: ~70 bytes per view in a large
--           sub-key, and a lease renewal is one ZADD).
-- Setting or removing a membership is idempotent; a membership whose lease lapsed is dropped
-- on every call (a read is a call with no ops), so a step a dead node never took is repaired by time.
--
-- ARGV[1] leases that end before this time have lapsed (the caller's last sweep)
-- ARGV[2] lease expiry for memberships set now  ARGV[3] key TTL (ms; '0' for a
-- read, which leaves the TTL alone)  ARGV[4..] ops: '+' or '-', then the membership
-- (view(8)..viewer field(9)); no ops: a read.
-- Returns {views, viewers}.

local lease = ARGV[2]
local h, l = KEYS[1], KEYS[2]
local sub = string.sub
local views, viewers = 0, 0  -- changes to '#v' and '#u'

local function leaves(membership)  -- a membership left the zset: its viewer has one view less
  views = views - 1
  local field = sub(membership, 9)
  if redis.call('HINCRBY', h, field, -1) <= 0 then
    redis.call('HDEL', h, field)
    viewers = viewers - 1
  end
end

-- Lapsed leases first (bounded; the rest go on the next call).
local lapsed = redis.call('ZRANGEBYSCORE', l, '-inf', '(' .. ARGV[1], 'LIMIT', 0, 256)
if #lapsed > 0 then
  redis.call('ZREM', l, unpack(lapsed))
  for _, membership in ipairs(lapsed) do leaves(membership) end
end

for i = 4, #ARGV do
  local op = ARGV[i]
  local membership = sub(op, 2)
  if sub(op, 1, 1) == '-' then
    if redis.call('ZREM', l, membership) == 1 then leaves(membership) end
  elseif redis.call('ZADD', l, lease, membership) == 1 then  -- new here (else: a renewal)
    views = views + 1
    if redis.call('HINCRBY', h, sub(membership, 9), 1) == 1 then viewers = viewers + 1 end
  end
end

local counts
if views ~= 0 or viewers ~= 0 then
  views = redis.call('HINCRBY', h, '#v', views)
  viewers = redis.call('HINCRBY', h, '#u', viewers)
  counts = {views, viewers, redis.call('HGET', h, '#e')}
else
  counts = redis.call('HMGET', h, '#v', '#u', '#e')
  views, viewers = tonumber(counts[1]) or 0, tonumber(counts[2]) or 0
end
if views <= 0 then
  if #lapsed > 0 or #ARGV > 3 then redis.call('DEL', h, l) end
  return {0, 0}
end
if ARGV[3] ~= '0' and tonumber(lease) - (tonumber(counts[3]) or 0) > tonumber(ARGV[3]) / 4000 then
  redis.call('PEXPIRE', h, ARGV[3])
  redis.call('PEXPIRE', l, ARGV[3])
  redis.call('HSET', h, '#e', lease)
end
return {views, viewers}
