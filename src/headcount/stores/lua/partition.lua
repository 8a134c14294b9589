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
-- ARGV[1] mode, 'step' or 'sweep'; ARGV[2] now; ARGV[3] liveness window; ARGV[4] count
-- paused (0/1).
--
-- step: the pairs are the sub-partitions this batch touches. ARGV[5] refresh after
--   (seconds: a happening view re-sends its counter memberships this often, so a lost one
--   comes back and a stale one lapses); ARGV[6] the sub-partition numbers of the pairs, space
--   separated; ARGV[7..] one packed event each (headcount.stores.redis_codec.pack_event).
--   Returns {duplicates, changes...}.
-- sweep: the pairs are the sub-partitions the due zset named as due (the caller read it
--   first: ZRANGEBYSCORE due -inf now). ARGV[5] most views to expire in this call (the caller
--   calls again while more are left); ARGV[6] the sub-partition numbers of the pairs. Cost
--   follows what expired: each last-seen zset gives the silent views in order, and the due
--   score of each sub-partition is set anew from its oldest view. Returns {more (0/1),
--   expired, changes...}.
--
-- A change is five strings, in order of application: view, old viewer, old ids, new viewer,
-- new ids ('' old ids: nothing to remove; '' new ids: nothing to add). The node turns them into
-- counter-membership changes (counter_apply.lua).

local mode = ARGV[1]
local now = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local count_paused = ARGV[4] == '1'

-- $${...} are filled in from the Python core and codec when the script is loaded
-- (headcount.stores.redis_codec.render_script): each constant is written once, there.
local STARTED, PAUSED, ENDED, EXPLICIT = ${STARTED}, ${PAUSED}, ${ENDED}, ${EXPLICIT_PLAYBACK}
local KIND_SHIFT, KIND_MASK = ${KIND_SHIFT}, ${KIND_MASK}
local VIEWER_COOKIE, VIEWER_USER = ${VIEWER_COOKIE}, ${VIEWER_USER}
local E_STARTS, E_RESUMES, E_LEAVES = ${EFFECT_STARTS}, ${EFFECT_RESUMES}, ${EFFECT_LEAVES}
local E_ENDS, E_FIRST = ${EFFECT_ENDS}, ${EFFECT_FIRST_SEEN_STARTS}
local F_SEQUENCE, F_SOURCE = ${FIELD_SEQUENCE}, ${FIELD_SOURCE}
local SEQUENCE_MEMORY = ${SEQUENCE_MEMORY}
local NONE = string.rep('\0', 8)
local TWO32 = 4294967296
local STATE = '${STATE_FORMAT}'  -- the fixed head; present ids follow, 8 bytes each
local STATE_IDS = {${STATE_IDS}}
local EVENT = '${EVENT_FORMAT}'

local band, bor, bnot, lshift, rshift = bit.band, bit.bor, bit.bnot, bit.lshift, bit.rshift

local function u32(x)
  return x % TWO32
end

local function has(flags, mask)
  return band(flags, mask) ~= 0
end

local function happening(flags)
  return has(flags, STARTED) and not has(flags, ENDED) and (count_paused or not has(flags, PAUSED))
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
      st.hi = u32(lshift(st.lo, shift - 32))
      st.lo = 1
    else
      st.hi = u32(bor(lshift(st.hi, shift), rshift(st.lo, 32 - shift)))
      st.lo = u32(bor(lshift(st.lo, shift), 1))
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
    st.lo = u32(bor(st.lo, b))
  else
    local b = lshift(1, distance - 32)
    if band(st.hi, b) ~= 0 then return false end
    st.hi = u32(bor(st.hi, b))
  end
  return true
end

-- step: the view after one event (ev), first_seen when no earlier event is known.
local function step(st, ev, first_seen)
  local flags = st.flags
  if has(flags, ENDED) then return end
  local effects = ev.effects
  if has(effects, E_ENDS) then
    st.flags = bor(flags, ENDED)
    return
  end
  if has(effects, E_STARTS + E_RESUMES) or (first_seen and has(effects, E_FIRST)) then
    flags = bor(flags, STARTED)
  end
  if has(effects, E_RESUMES) then
    flags = band(flags, bnot(PAUSED))
  elseif has(effects, E_LEAVES) then
    flags = bor(flags, PAUSED)
  end
  if ev.env ~= NONE then st.env = ev.env end  -- the environment's own counter (its history)
  if ev.video ~= NONE then st.video = ev.video end
  if ev.asset ~= NONE then st.asset = ev.asset end
  if ev.live ~= NONE then st.live = ev.live end
  if ev.playback ~= NONE then
    st.playback = ev.playback
    flags = bor(flags, EXPLICIT)
  elseif has(ev.fields, F_SOURCE) and not has(flags, EXPLICIT) then
    st.playback = ev.source_playback  -- NONE when the source is not a Mux URL
  end
  local kind = rshift(band(flags, KIND_MASK), KIND_SHIFT)
  if ev.user ~= NONE then
    kind, st.viewer = VIEWER_USER, ev.user
  elseif ev.cookie ~= NONE and kind ~= VIEWER_USER then
    kind, st.viewer = VIEWER_COOKIE, ev.cookie
  end
  st.flags = bor(band(flags, bnot(KIND_MASK)), lshift(kind, KIND_SHIFT))
end

local function ids_of(st)
  return st.video .. st.asset .. st.playback .. st.live .. st.env
end

local function new_state()
  return {flags = 0, highest = 0, lo = 0, hi = 0, viewer = NONE, video = NONE, asset = NONE,
          playback = NONE, live = NONE, env = NONE, refreshed = 0}
end

local function load(packed)
  local st = new_state()
  local ids, at
  st.flags, st.highest, st.lo, st.hi, st.viewer, st.refreshed, ids, at = struct.unpack(STATE, packed)
  for i, name in ipairs(STATE_IDS) do
    if band(ids, lshift(1, i - 1)) ~= 0 then
      st[name] = string.sub(packed, at, at + 7)
      at = at + 8
    end
  end
  return st
end

local function dump(st)
  local ids, present = 0, {}
  for i, name in ipairs(STATE_IDS) do
    if st[name] ~= NONE then
      ids = bor(ids, lshift(1, i - 1))
      present[#present + 1] = st[name]
    end
  end
  return struct.pack(STATE, st.flags, st.highest, st.lo, st.hi, st.viewer,
                     math.floor(st.refreshed), ids) .. table.concat(present)
end

local function run_step()
  local refresh_after = tonumber(ARGV[5])
  local subs = {}
  for r in string.gmatch(ARGV[6], '%S+') do subs[#subs + 1] = r end

  local out = {0}
  local held, live_now = 0, 0
  -- Views of this batch: view -> {st, pair, was (counted before the batch), old viewer, old ids}
  local touched, order = {}, {}

  local function emit(view, old_viewer, old_ids, new_viewer, new_ids)
    out[#out + 1] = view
    out[#out + 1] = old_viewer
    out[#out + 1] = old_ids
    out[#out + 1] = new_viewer
    out[#out + 1] = new_ids
  end

  for i = 7, #ARGV do
    local ev = {}
    local view, pair
    view, pair, ev.effects, ev.fields, ev.sequence, ev.video, ev.asset, ev.playback, ev.live,
      ev.source_playback, ev.user, ev.cookie, ev.env = struct.unpack(EVENT, ARGV[i])
    local skey, tkey = KEYS[3 + 2 * pair], KEYS[4 + 2 * pair]
    local t = touched[view]
    if t == nil then
      local packed = redis.call('HGET', skey, view)
      if packed then
        local last_seen = tonumber(redis.call('ZSCORE', tkey, view))
        local st = load(packed)
        if now - last_seen > window then
          -- Silent too long: gone, even if not swept yet; this event starts a fresh view.
          if happening(st.flags) then
            emit(view, st.viewer, ids_of(st), '', '')
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
        t = {st = new_state(), pair = pair, known = false, was = false}
      end
      touched[view] = t
      order[#order + 1] = view
    end
    local st = t.st
    local fresh = true
    if has(ev.fields, F_SEQUENCE) then
      fresh = accept(st, ev.sequence)
    end
    if not t.known then
      t.known, t.inserted = true, true
      step(st, ev, true)
    elseif fresh then
      step(st, ev, false)
    else
      out[1] = out[1] + 1
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
        emit(view, t.old_viewer or '', t.old_ids or '', new_viewer, new_ids)
        if is then st.refreshed = now end
      elseif now - st.refreshed >= refresh_after then
        emit(view, '', '', new_viewer, new_ids)  -- the same memberships, with a new lease
        st.refreshed = now
      end
    end
    if t.was ~= is then live_now = live_now + (is and 1 or -1) end
    if t.inserted then
      held = held + 1
      if redis.call('ZCARD', tkey) == 0 then
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

local function run_sweep()
  local budget = tonumber(ARGV[5])
  local out = {0, 0}
  local expired, live_gone = 0, 0
  local pair = 0
  for r in string.gmatch(ARGV[6], '%S+') do
    local skey, tkey = KEYS[3 + 2 * pair], KEYS[4 + 2 * pair]
    pair = pair + 1
    -- Candidates a second early, then the exact rule (now - last_seen > window), as the
    -- memory store computes it.
    local candidates = redis.call('ZRANGEBYSCORE', tkey, '-inf', now - window + 1, 'WITHSCORES',
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
        if happening(st.flags) then
          out[#out + 1] = view
          out[#out + 1] = st.viewer
          out[#out + 1] = ids_of(st)
          out[#out + 1] = ''
          out[#out + 1] = ''
          live_gone = live_gone + 1
        end
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
end

if mode == 'step' then
  return run_step()
end
return run_sweep()
