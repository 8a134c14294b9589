-- Set and remove counter memberships in one counter sub-key (Headcount, Redis adapter).
--
-- A counter key (environment, id type, id) is split into sub-keys by hash(viewer), so a
-- viewer's views all land in one sub-key and viewers stay exact as sums. A sub-key holds:
--   KEYS[1] hash: viewer field ('w'..viewer, or 's'..view for a view that is its own viewer)
--           -> how many of its views count here; '#v' views, '#u' distinct viewers, '#e' the
--           lease time at which the keys' TTL was last set (it is set again only once a
--           quarter of it has passed: two PEXPIREs on every call were a fifth of the
--           script's cost); '#n' no lease in the zset ends before this time (a bound kept
--           low: lowered by an earlier lease, raised only by a look at the zset), so that
--           a call looks for lapsed leases only when one may have lapsed
--   KEYS[2] zset: membership (view(8)..viewer field(9)) -> lease expiry. The membership
--           carries its viewer, so the zset alone says which viewer a lapsed or removed
--           membership leaves (no view -> viewer entry: ~70 bytes per view in a large
--           sub-key, and a lease renewal is one ZADD).
-- Setting or removing a membership is idempotent; a membership whose lease lapsed is dropped
-- by the next call (a read is a call with no ops), so a step a dead node never took is
-- repaired by time. Cost: a call that adds or removes one membership is four commands
-- (HMGET, ZADD or ZREM, HINCRBY, HSET), a read one.
--
-- ARGV[1] leases that end before this time have lapsed (the caller's last sweep)
-- ARGV[2] lease expiry for memberships set now  ARGV[3] key TTL (ms; '0' for a
-- read, which leaves the TTL alone)  ARGV[4..] ops: '+' or '-', then the membership
-- (view(8)..viewer field(9)); no ops: a read.
-- Returns {views, viewers}.

local lapsed_before, lease = tonumber(ARGV[1]), tonumber(ARGV[2])
local h, l = KEYS[1], KEYS[2]
local sub = string.sub
local head = redis.call('HMGET', h, '#v', '#u', '#e', '#n')
local views, viewers = tonumber(head[1]) or 0, tonumber(head[2]) or 0
-- No '#n': 0 (look) for a sub-key from before it existed, none for a new one (nothing lapses).
local bound = tonumber(head[4]) or (head[1] and 0 or math.huge)
local v0, u0, b0 = views, viewers, bound  -- as read: '#v', '#u' and '#n' are written if moved
local dropped = false  -- a membership left: the keys may be empty now

local function leaves(membership)  -- a membership left the zset: its viewer has one view less
  views = views - 1
  dropped = true
  local field = sub(membership, 9)
  if redis.call('HINCRBY', h, field, -1) <= 0 then
    redis.call('HDEL', h, field)
    viewers = viewers - 1
  end
end

-- Lapsed leases first, when one may have lapsed (bounded; the rest go on the next call).
if lapsed_before > bound then
  local lapsed = redis.call('ZRANGEBYSCORE', l, '-inf', '(' .. ARGV[1], 'LIMIT', 0, 256)
  if #lapsed > 0 then
    redis.call('ZREM', l, unpack(lapsed))
    for _, membership in ipairs(lapsed) do leaves(membership) end
  end
  local first = redis.call('ZRANGE', l, 0, 0, 'WITHSCORES')
  bound = #first > 0 and tonumber(first[2]) or lease
end

for i = 4, #ARGV do
  local op = ARGV[i]
  local membership = sub(op, 2)
  if sub(op, 1, 1) == '-' then
    if redis.call('ZREM', l, membership) == 1 then leaves(membership) end
  else
    if redis.call('ZADD', l, lease, membership) == 1 then  -- new here (else: a renewal)
      views = views + 1
      if redis.call('HINCRBY', h, sub(membership, 9), 1) == 1 then viewers = viewers + 1 end
    end
    if lease < bound then bound = lease end
  end
end

if views <= 0 then
  if dropped or #ARGV > 3 then redis.call('DEL', h, l) end
  return {0, 0}
end
if ARGV[3] ~= '0' and lease - (tonumber(head[3]) or 0) > tonumber(ARGV[3]) / 4000 then
  redis.call('PEXPIRE', h, ARGV[3])
  redis.call('PEXPIRE', l, ARGV[3])
  redis.call('HSET', h, '#v', views, '#u', viewers, '#n', bound, '#e', lease)
elseif views ~= v0 or viewers ~= u0 or bound ~= b0 then
  redis.call('HSET', h, '#v', views, '#u', viewers, '#n', bound)
end
return {views, viewers}
