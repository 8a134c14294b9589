-- Stores the view steps a node made, for the views of one partition group (Headcount, Redis
-- adapter), each only if the view is still as the node knew it: a compare-and-set, so that
-- two nodes stepping one view at once cannot lose an event. The step itself is the core's
-- tracker, run on the node (headcount.stores.redis_views); a packed state
-- (headcount.stores.redis_codec) changes with every write (its write counter), so comparing
-- it is comparing the view's last-seen time too.
--
-- Keys: pairs, a state hash (view -> packed state) and a last-seen zset (view -> server time)
-- per sub-partition; then, only when a view of the call is new or starts or stops happening,
-- the group's due zset (sub-partition number -> earliest time a view in it may expire) and
-- stats hash (v: views held, h: views happening). (A heartbeat's call names two keys and has
-- six arguments: each costs Redis about a tenth of a trivial call.)
--
-- ARGV[1] now, in whole milliseconds; ARGV[2] '' when the group's keys are not named, else the
-- liveness window (ms) and the sub-partition numbers of the pairs, space separated (read only
-- when a sub-partition gets its first view); ARGV[3..] four strings per view: a code (pair * 4
-- + the change to the views happening + 1), the view, the state the node stepped from ('':
-- none, a new view, one more held) and the new state.
--
-- A view still as the node knew it gets the new state, last-seen now, and a due time if its
-- sub-partition was empty; the others are left alone. Returns {index (0-based), state or nil,
-- last-seen or nil, ...} for the views that had moved, for the node to step again from what
-- they are now.
--
-- Cost: this is a node's commonest Redis call, so it is its redis.calls and little else: a
-- known view costs HGET, HSET and ZADD.

local now = ARGV[1]
local due, stats = KEYS[#KEYS - 1], KEYS[#KEYS]  -- (when ARGV[2] ~= '')
local out = {}
local held, live = 0, 0
local subs = nil
local floor = math.floor
for i = 3, #ARGV, 4 do
  local code = tonumber(ARGV[i])
  local pair = floor(code / 4)
  local skey, tkey = KEYS[1 + 2 * pair], KEYS[2 + 2 * pair]
  local view, old = ARGV[i + 1], ARGV[i + 2]
  local current = redis.call('HGET', skey, view)
  if (current or '') == old then
    if old == '' then
      held = held + 1
      if redis.call('ZCARD', tkey) == 0 then
        if subs == nil then
          subs = {}
          for r in string.gmatch(ARGV[2], '%S+') do subs[#subs + 1] = r end
        end
        redis.call('ZADD', due, tonumber(now) + tonumber(subs[1]), subs[pair + 2])
      end
    end
    redis.call('HSET', skey, view, ARGV[i + 3])
    redis.call('ZADD', tkey, now, view)
    live = live + code % 4 - 1
  else
    local n = #out
    out[n + 1] = (i - 3) / 4
    out[n + 2] = current
    out[n + 3] = current and redis.call('ZSCORE', tkey, view)
  end
end
if held ~= 0 then redis.call('HINCRBY', stats, 'v', held) end
if live ~= 0 then redis.call('HINCRBY', stats, 'h', live) end
return out
