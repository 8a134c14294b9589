-- Set and remove counter memberships in one counter sub-key (Headcount, Redis adapter).
--
-- A counter key (environment, id type, id) is split into sub-keys by hash(viewer), so a
-- viewer's views all land in one sub-key and viewers stay exact as sums. A sub-key holds:
--   KEYS[1] hash: 'm'..view -> viewer field; viewer field ('w'..viewer, or 's'..view for a
--           view that is its own viewer) -> how many of its views count here;
--           '#v' views, '#u' distinct viewers, '#e' the lease time at which the keys' TTL
--           was last set (it is set again only once a quarter of it has passed: two
--           PEXPIREs on every call were a fifth of the script's cost)
--   KEYS[2] zset: view -> lease expiry
-- Setting or removing a membership is idempotent; a membership whose lease lapsed is dropped
-- on every call (a read is a call with no ops), so a step a dead node never took is repaired by time.
--
-- ARGV[1] leases that end before this time have lapsed (the caller's last sweep)
-- ARGV[2] lease expiry for memberships set now  ARGV[3] key TTL (ms; '0' for a
-- read, which leaves the TTL alone)  ARGV[4..] ops: '+'..view(8)..viewer field(9), or
-- '-'..view(8); no ops: a read.
-- Returns {views, viewers}.

local lease = ARGV[2]
local h, l = KEYS[1], KEYS[2]

local function viewer_less(field)
  if redis.call('HINCRBY', h, field, -1) <= 0 then
    redis.call('HDEL', h, field)
    redis.call('HINCRBY', h, '#u', -1)
  end
end

local function viewer_more(field)
  if redis.call('HINCRBY', h, field, 1) == 1 then
    redis.call('HINCRBY', h, '#u', 1)
  end
end

local function remove(view)
  local field = redis.call('HGET', h, 'm' .. view)
  if field then
    redis.call('HDEL', h, 'm' .. view)
    redis.call('HINCRBY', h, '#v', -1)
    viewer_less(field)
  end
  redis.call('ZREM', l, view)
end

-- Lapsed leases first (bounded; the rest go on the next call).
local lapsed = redis.call('ZRANGEBYSCORE', l, '-inf', '(' .. ARGV[1], 'LIMIT', 0, 256)
for _, view in ipairs(lapsed) do remove(view) end

for i = 4, #ARGV do
  local op = ARGV[i]
  local view = string.sub(op, 2, 9)
  if string.sub(op, 1, 1) == '-' then
    remove(view)
  else
    local field = string.sub(op, 10)
    local current = redis.call('HGET', h, 'm' .. view)
    if current ~= field then
      if current then
        viewer_less(current)
      else
        redis.call('HINCRBY', h, '#v', 1)
      end
      redis.call('HSET', h, 'm' .. view, field)
      viewer_more(field)
    end
    redis.call('ZADD', l, lease, view)
  end
end

local counts = redis.call('HMGET', h, '#v', '#u', '#e')
local views = tonumber(counts[1]) or 0
if views <= 0 then
  if #lapsed > 0 or #ARGV > 3 then redis.call('DEL', h, l) end
  return {0, 0}
end
if ARGV[3] ~= '0' and tonumber(lease) - (tonumber(counts[3]) or 0) > tonumber(ARGV[3]) / 4000 then
  redis.call('PEXPIRE', h, ARGV[3])
  redis.call('PEXPIRE', l, ARGV[3])
  redis.call('HSET', h, '#e', lease)
end
return {views, tonumber(counts[2]) or 0}
