-- The view records of one partition group (Headcount, Redis adapter): the view step and the
-- sweep, sharing one definition of a view's packed state.
--
-- The view step is the Lua twin of headcount.core.tracker (step, accept_sequence,
-- is_happening) plus the memory store's liveness rule; tests/stores/test_step_twins.py runs
-- one table of cases through both. Event names are classified by the Python core (EFFECT_*
-- bits in the packed event), so the name tables live only there.
--
-- Keys (both modes): KEYS[1] due zset (sub-partition number -> earliest time a view in it may
-- expire), KEYS[2] stats hash (v: views held, h: views happening), then pairs: a state hash
-- (view -> packed state) and a last-seen zset (view -> server time) per sub-partition.
--
-- ARGV[1] mode, 'step' or 'sweep'; ARGV[2] now and ARGV[3] the liveness window, both in whole
-- milliseconds (the node rounds them: an integer score is 10 bytes in a listpack, a fraction
-- of a second 19); ARGV[4] count paused (0/1); ARGV[5] lease (seconds a counter membership
-- set now lasts: a view that had memberships this recently may still hold one, so its
-- removal is worth sending again).
--
-- step: the pairs are the sub-partitions this batch touches. ARGV[6] refresh after
--   (seconds: a happening view re-sends its counter memberships this often, so a lost one
--   comes back and a stale one lapses); ARGV[7] the sub-partition numbers of the pairs, space
--   separated; ARGV[8..] one packed event each (headcount.stores.redis_codec.EventPacker).
--   A view with a duplicate event in the batch (a re-sent batch: its first attempt may have
--   died between this step and its counter step) re-sends its memberships at once, or their
--   removal when it does not count. Returns {duplicates, changes...}.
-- sweep: the pairs are the sub-partitions the due zset named as due (the caller read it
--   first: ZRANGEBYSCORE due -inf now, in ms). ARGV[6] most views to expire in this call
--   (the caller calls again while more are left); ARGV[7] the sub-partition numbers of the
--   pairs. Cost
--   follows what expired: each last-seen zset gives the silent views in order, and the due
--   score of each sub-partition is set anew from its oldest view. A view that expires not
--   counting, but that had memberships within the lease, sends their removal again (a node
--   may have died before removing them). Returns {more (0/1), expired, changes...}.
--
-- A change is five strings, in order of application: view, old viewer, old ids, new viewer,
-- new ids ('' old ids: nothing to remove; '' new ids: nothing to add). The node turns them into
-- counter-membership changes (counter_apply.lua).

-- Cost (it is most of a node's Redis CPU): the script's top level runs on every call, and
-- each function it defines is a closure made anew, so there are few; an event is unpacked
-- into locals (no table), and only the ids it carries are read.

local mode = ARGV[1]
local now = tonumber(ARGV[2])  -- ms: last-seen scores and due times
local window = tonumber(ARGV[3])  -- ms
local now_s = now / 1000  -- seconds: the refresh clock and leases
local count_paused = ARGV[4] == '1'
local lease = tonumber(ARGV[5])

-- $${...} are filled in from the Python core and codec when the script is loaded
-- (headcount.stores.redis_codec.render_script): each constant is written once, there.
local STARTED, PAUSED, ENDED, EXPLICIT = ${STARTED}, ${PAUSED}, ${ENDED}, ${EXPLICIT_PLAYBACK}
local KIND_SHIFT, KIND_MASK = ${KIND_SHIFT}, ${KIND_MASK}
local VIEWER_COOKIE, VIEWER_USER = ${VIEWER_COOKIE}, ${VIEWER_USER}
local E_STARTS, E_RESUMES, E_LEAVES = ${EFFECT_STARTS}, ${EFFECT_RESUMES}, ${EFFECT_LEAVES}
local E_ENDS, E_FIRST = ${EFFECT_ENDS}, ${EFFECT_FIRST_SEEN_STARTS}
local F_SEQUENCE, F_SOURCE = ${FIELD_SEQUENCE}, ${FIELD_SOURCE}
local SEQUENCE_MEMORY = ${SEQUENCE_MEMORY}
local NONE = '\0\0\0\0\0\0\0\0'
local TWO32 = 4294967296
local STATE = '${STATE_FORMAT}'  -- the fixed head; present ids follow, 8 bytes each
local STATE_IDS = {${STATE_IDS}}
local EVENT = '${EVENT_FORMAT}'  -- the fixed head; present ids follow, 8 bytes each
local EVENT_IDS = {${EVENT_IDS}}  -- their order (the bits of the head's ids byte)

local band, bor, bnot, lshift, rshift = bit.band, bit.bor, bit.bnot, bit.lshift, bit.rshift
local sub, unpack = string.sub, struct.unpack

local function happening(flags)
  return band(flags, STARTED) ~= 0 and band(flags, ENDED) == 0
    and (count_paused or band(flags, PAUSED) == 0)
end

-- accept_sequence: seen is a 64-bit bitmap as two 32-bit halves (Lua numbers are doubles).
local function accept(st, seq)
  if st.lo == 0 and st.hi == 0 then
    st.highest, st.lo, st.hi = seq, 1, 0
    return true
  end
  if seq > st.highest then
    local shift = seq - st.highest
    if shift >= SEQUENCE_MEMORY then
      st.lo, st.hi = 1, 0
    elseif shift >= 32 then
      st.hi = lshift(st.lo, shift - 32) % TWO32
      st.lo = 1
    else
      st.hi = bor(lshift(st.hi, shift), rshift(st.lo, 32 - shift)) % TWO32
      st.lo = bor(lshift(st.lo, shift), 1) % TWO32
    end
    st.highest = seq
    return true
  end
  local distance = st.highest - seq
  if distance >= SEQUENCE_MEMORY then
    return false
  end
  if distance < 32 then
    local b = lshift(1, distance)
    if band(st.lo, b) ~= 0 then return false end
    st.lo = bor(st.lo, b) % TWO32
  else
    local b = lshift(1, distance - 32)
    if band(st.hi, b) ~= 0 then return false end
    st.hi = bor(st.hi, b) % TWO32
  end
  return true
end

-- step: the view after one event (its effects, fields and ids, NONE where absent),
-- first_seen when no earlier event is known.
local function step(st, first_seen, effects, fields, ev)
  local flags = st.flags
  if band(flags, ENDED) ~= 0 then return end
  if band(effects, E_ENDS) ~= 0 then
    st.flags = bor(flags, ENDED)
    return
  end
  if band(effects, E_STARTS + E_RESUMES) ~= 0 or (first_seen and band(effects, E_FIRST) ~= 0) then
    flags = bor(flags, STARTED)
  end
  if band(effects, E_RESUMES) ~= 0 then
    flags = band(flags, bnot(PAUSED))
  elseif band(effects, E_LEAVES) ~= 0 then
    flags = bor(flags, PAUSED)
  end
  if ev.env then st.env = ev.env end  -- the environment's own counter (its history)
  if ev.video then st.video = ev.video end
  if ev.asset then st.asset = ev.asset end
  if ev.live then st.live = ev.live end
  if ev.playback then
    st.playback = ev.playback
    flags = bor(flags, EXPLICIT)
  elseif band(fields, F_SOURCE) ~= 0 and band(flags, EXPLICIT) == 0 then
    st.playback = ev.source_playback or NONE  -- NONE when the source is not a Mux URL
  end
  local kind = rshift(band(flags, KIND_MASK), KIND_SHIFT)
  if ev.user then
    kind, st.viewer = VIEWER_USER, ev.user
  elseif ev.cookie and kind ~= VIEWER_USER then
    kind, st.viewer = VIEWER_COOKIE, ev.cookie
  end
  st.flags = bor(band(flags, bnot(KIND_MASK)), lshift(kind, KIND_SHIFT))
end

-- A view's ids, 8 bytes each in the order of STATE_IDS (the node reads them so).
local function ids_of(st)
  return ${IDS_OF}
end

local function load(packed)
  local flags, highest, lo, hi, viewer, refreshed, ids, at = unpack(STATE, packed)
  local st = {flags = flags, highest = highest, lo = lo, hi = hi, viewer = viewer,
              refreshed = refreshed, video = NONE, asset = NONE, playback = NONE, live = NONE,
              env = NONE}
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

local function dump(st)
  local ids, present = 0, {}
  for i = 1, #STATE_IDS do
    local id = st[STATE_IDS[i]]
    if id ~= NONE then
      ids = bor(ids, lshift(1, i - 1))
      present[#present + 1] = id
    end
  end
  return struct.pack(STATE, st.flags, st.highest, st.lo, st.hi, st.viewer,
                     math.floor(st.refreshed), ids) .. table.concat(present)
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

if mode == 'step' then
  local refresh_after = tonumber(ARGV[6])
  local subs = nil  -- the pairs' sub-partition numbers, read when a view is inserted

  local out = {0}
  local held, live_now = 0, 0
  -- Views of this batch: view -> {st, pair, was (counted before the batch), old viewer, old ids}
  local touched, order = {}, {}
  local ev = {}  -- the ids of the event at hand (nil: absent); reused

  for i = 8, #ARGV do
    local packed = ARGV[i]
    local view, pair, effects, fields, sequence, ids, at = unpack(EVENT, packed)
    for b = 1, #EVENT_IDS do
      if band(ids, lshift(1, b - 1)) ~= 0 then
        ev[EVENT_IDS[b]] = sub(packed, at, at + 7)
        at = at + 8
      else
        ev[EVENT_IDS[b]] = nil
      end
    end
    local t = touched[view]
    if t == nil then
      local skey, tkey = KEYS[3 + 2 * pair], KEYS[4 + 2 * pair]
      local state = redis.call('HGET', skey, view)
      if state then
        local last_seen = tonumber(redis.call('ZSCORE', tkey, view))
        local st = load(state)
        if now - last_seen > window then
          -- Silent too long: gone, even if not swept yet; this event starts a fresh view.
          if happening(st.flags) then
            emit(out, view, st.viewer, ids_of(st), '', '')
            live_now = live_now - 1
          end
          redis.call('HDEL', skey, view)
          redis.call('ZREM', tkey, view)
          held = held - 1
        else
          t = {st = st, pair = pair, known = true, was = happening(st.flags)}
          if t.was then t.old_viewer, t.old_ids = st.viewer, ids_of(st) end
        end
      end
      if t == nil then
        t = {st = {flags = 0, highest = 0, lo = 0, hi = 0, viewer = NONE, video = NONE,
                   asset = NONE, playback = NONE, live = NONE, env = NONE, refreshed = 0},
             pair = pair, known = false, was = false}
      end
      touched[view] = t
      order[#order + 1] = view
    end
    local st = t.st
    local fresh = true
    if band(fields, F_SEQUENCE) ~= 0 then
      fresh = accept(st, sequence)
    end
    if not t.known then
      t.known, t.inserted = true, true
      step(st, true, effects, fields, ev)
    elseif fresh then
      step(st, false, effects, fields, ev)
    else
      out[1] = out[1] + 1
      t.resent = true
    end
  end

  for _, view in ipairs(order) do
    local t = touched[view]
    local st = t.st
    local skey, tkey = KEYS[3 + 2 * t.pair], KEYS[4 + 2 * t.pair]
    local is = happening(st.flags)
    if t.was or is then
      local new_ids = is and ids_of(st) or ''
      local new_viewer = is and st.viewer or ''
      if t.was ~= is or (is and (new_ids ~= t.old_ids or new_viewer ~= t.old_viewer)) then
        emit(out, view, t.old_viewer or '', t.old_ids or '', new_viewer, new_ids)
        if is then st.refreshed = now_s end
      elseif t.resent or now_s - st.refreshed >= refresh_after then
        emit(out, view, '', '', new_viewer, new_ids)  -- the same memberships, with a new lease
        st.refreshed = now_s
      end
    elseif t.resent and may_hold(st) then
      emit(out, view, st.viewer, ids_of(st), '', '')  -- removed again: idempotent
    end
    if t.was ~= is then live_now = live_now + (is and 1 or -1) end
    if t.inserted then
      held = held + 1
      if redis.call('ZCARD', tkey) == 0 then
        if subs == nil then
          subs = {}
          for r in string.gmatch(ARGV[7], '%S+') do subs[#subs + 1] = r end
        end
        redis.call('ZADD', KEYS[1], now + window, subs[t.pair + 1])
      end
    end
    redis.call('HSET', skey, view, dump(st))
    redis.call('ZADD', tkey, now, view)
  end

  if held ~= 0 then redis.call('HINCRBY', KEYS[2], 'v', held) end
  if live_now ~= 0 then redis.call('HINCRBY', KEYS[2], 'h', live_now) end
  return out
end

-- sweep
local budget = tonumber(ARGV[6])
local out = {0, 0}
local expired, live_gone = 0, 0
local pair = 0
for r in string.gmatch(ARGV[7], '%S+') do
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
