-- The sweep of one partition group (Headcount, Redis adapter): the views silent longer than
-- the liveness window, dropped, and the removal of their counter memberships. (A view's step
-- runs on the node, headcount.stores.redis_views; view_write.lua stores it.)
--
-- Keys: KEYS[1] due zset (sub-partition number -> earliest time a view in it may expire),
-- KEYS[2] stats hash (v: views held, h: views happening), then pairs: a state hash (view ->
-- packed state, headcount.stores.redis_codec) and a last-seen zset (view -> server time) for
-- each sub-partition the due zset named as due (the caller read it first: ZRANGEBYSCORE due
-- -inf now, in ms).
--
-- ARGV[1] now and ARGV[2] the liveness window, both in whole milliseconds (the node rounds
-- them: an integer score is 10 bytes in a listpack, a fraction of a second 19); ARGV[3] the
-- sub-partition numbers of the pairs, space separated; ARGV[4] count paused (0/1); ARGV[5]
-- lease (seconds a counter membership set now lasts: a view that had memberships this
-- recently may still hold one, so its removal is worth sending again); ARGV[6] most views to
-- expire in this call (the caller calls again while more are left).
--
-- Cost follows what expired: each last-seen zset gives the silent views in order, and the due
-- score of each sub-partition is set anew from its oldest view. A view that expires not
-- counting, but that had memberships within the lease, sends their removal again (a node may
-- have died before removing them). Returns {more (0/1), expired, changes...}: a change is five
-- strings (view, old viewer, old ids, new viewer, new ids), as the node's step makes them
-- (headcount.stores.redis_memberships applies them).

local now = tonumber(ARGV[1])  -- ms: last-seen scores and due times
local window = tonumber(ARGV[2])  -- ms

-- $${...} are filled in from the Python core and codec when the script is loaded
-- (headcount.stores.redis_codec.render_script): each constant is written once, there.
local STARTED, PAUSED, ENDED = ${STARTED}, ${PAUSED}, ${ENDED}
local NONE = '\0\0\0\0\0\0\0\0'
local STATE = '${STATE_FORMAT}'  -- the fixed head; present ids follow, 8 bytes each
local STATE_IDS = {${STATE_IDS}}
local count_paused = ARGV[4] == '1'
local lease = tonumber(ARGV[5])
local now_s = now / 1000  -- seconds: leases

local band, lshift = bit.band, bit.lshift
local sub, unpack = string.sub, struct.unpack

local function happening(flags)
  return band(flags, STARTED) ~= 0 and band(flags, ENDED) == 0
    and (count_paused or band(flags, PAUSED) == 0)
end

-- A view's ids, 8 bytes each in the order of STATE_IDS (the node reads them so).
local function ids_of(st)
  return ${IDS_OF}
end

local function load(packed)
  -- The head's fields by name, in the codec's order (STATE_FIELDS is generated from it).
  local ${STATE_FIELDS}, at = unpack(STATE, packed)
  local st = {flags = flags, viewer = viewer, refreshed = refreshed, video = NONE, asset = NONE,
              playback = NONE, live = NONE, env = NONE}
  if ids ~= 0 then
    for i = 1, #STATE_IDS do
      if band(ids, lshift(1, i - 1)) ~= 0 then
        st[STATE_IDS[i]] = sub(packed, at, at + 7)
        at = at + 8
      end
    end
  end
  return st
end

-- A view not counting now that had memberships within the lease may still hold one.
local function may_hold(st)
  return st.refreshed ~= 0 and now_s - st.refreshed < lease
end

local function emit(out, view, old_viewer, old_ids, new_viewer, new_ids)
  local n = #out
  out[n + 1], out[n + 2], out[n + 3], out[n + 4], out[n + 5] =
    view, old_viewer, old_ids, new_viewer, new_ids
end

local budget = tonumber(ARGV[6])
local out = {0, 0}
local expired, live_gone = 0, 0
local pair = 0
for r in string.gmatch(ARGV[3], '%S+') do
  local skey, tkey = KEYS[3 + 2 * pair], KEYS[4 + 2 * pair]
  pair = pair + 1
  -- Candidates a second early, then the exact rule (now - last_seen > window), as the
  -- memory store computes it (to the millisecond).
  local candidates = redis.call('ZRANGEBYSCORE', tkey, '-inf', now - window + 1000, 'WITHSCORES',
                                'LIMIT', 0, budget - expired + 1)
  for j = 1, #candidates, 2 do
    local view, last_seen = candidates[j], tonumber(candidates[j + 1])
    if now - last_seen <= window then break end
    if expired >= budget then
      out[1] = 1
      break
    end
    local packed = redis.call('HGET', skey, view)
    if packed then
      local st = load(packed)
      local counted = happening(st.flags)
      if counted or may_hold(st) then
        emit(out, view, st.viewer, ids_of(st), '', '')
      end
      if counted then live_gone = live_gone + 1 end
      redis.call('HDEL', skey, view)
    end
    redis.call('ZREM', tkey, view)
    expired = expired + 1
  end
  if out[1] == 1 then
    redis.call('ZADD', KEYS[1], now, r)  -- due again at once: the caller continues
    break
  end
  local first = redis.call('ZRANGE', tkey, 0, 0, 'WITHSCORES')
  if #first == 0 then
    redis.call('ZREM', KEYS[1], r)
  else
    redis.call('ZADD', KEYS[1], tonumber(first[2]) + window, r)
  end
end
if expired ~= 0 then redis.call('HINCRBY', KEYS[2], 'v', -expired) end
if live_gone ~= 0 then redis.call('HINCRBY', KEYS[2], 'h', -live_gone) end
out[2] = expired
return out
