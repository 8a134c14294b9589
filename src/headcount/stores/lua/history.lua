-- Record the counts of one counter key into its history (Headcount, Redis adapter): the Lua
-- twin of headcount.history.record.observe (tests/history/test_record_twins.py runs one table of
-- cases through both).
--
-- KEYS[1] hash: 's'..shard -> 'views viewers stamp' (the counter sub-keys' counts as a node
--         last read them, newest stamp wins), 'sv' and 'su' (their sums, kept as they change:
--         an environment's own key has a sub-key per slot, too many to add up on every call),
--         and the record: v, u (counts now), at (when they last changed), lm (last minute
--         written), pv, pva, pu, pua (peaks and when), n (the key's name,
--         'environment\0id_type\0id', once a node that knows it wrote it)
-- KEYS[2] string: a ring of ARGV[3] minutes, 20 bytes each ('<I4I4I4I4I4': minute, views,
--         viewers, max views, max viewers), slot = minute mod ring
-- ARGV[1] now  ARGV[2] retention (s)  ARGV[3] ring slots  ARGV[4] name ('' unknown)
-- ARGV[5..] shard, views, viewers, stamp (four strings per sub-key read)
-- Returns {views, viewers, name or ''}.

local h, ring = KEYS[1], KEYS[2]
local now = tonumber(ARGV[1])
local retention = tonumber(ARGV[2])
local slots = tonumber(ARGV[3])
local ENTRY = '<I4I4I4I4I4'

if ARGV[4] ~= '' then redis.call('HSET', h, 'n', ARGV[4]) end
local FIELDS = {'v', 'u', 'lm', 'pv', 'pva', 'pu', 'pua', 'n', 'sv', 'su'}
local got = redis.call('HMGET', h, unpack(FIELDS))
local rec = {}
for i, k in ipairs(FIELDS) do rec[k] = got[i] or nil end
local views, viewers = tonumber(rec.sv), tonumber(rec.su)
if views == nil then  -- a record from before the sums were kept: add its sub-keys up once
  views, viewers = 0, 0
  local all = redis.call('HGETALL', h)
  for i = 1, #all, 2 do
    if string.sub(all[i], 1, 1) == 's' and all[i] ~= 'sv' and all[i] ~= 'su' then
      local v, u = string.match(all[i + 1], '(%S+) (%S+)')
      views, viewers = views + tonumber(v), viewers + tonumber(u)
    end
  end
end
for i = 5, #ARGV, 4 do
  local field = 's' .. ARGV[i]
  local old = redis.call('HGET', h, field)
  local newer, old_v, old_u = true, 0, 0
  if old then
    local v, u, stamp = string.match(old, '(%S+) (%S+) (%S+)')
    newer, old_v, old_u = tonumber(stamp) <= tonumber(ARGV[i + 3]), tonumber(v), tonumber(u)
  end
  if newer then
    redis.call('HSET', h, field, ARGV[i + 1] .. ' ' .. ARGV[i + 2] .. ' ' .. ARGV[i + 3])
    views = views + tonumber(ARGV[i + 1]) - old_v
    viewers = viewers + tonumber(ARGV[i + 2]) - old_u
  end
end
redis.call('HSET', h, 'sv', views, 'su', viewers)

local ttl = math.floor(1000 * retention) + 60000
redis.call('PEXPIRE', h, ttl)
if redis.call('EXISTS', ring) == 1 then redis.call('PEXPIRE', ring, ttl) end

local old_v, old_u = tonumber(rec.v or 0), tonumber(rec.u or 0)
if rec.v ~= nil and views == old_v and viewers == old_u then
  return {views, viewers, rec.n or ''}
end

local function slot_of(minute) return (minute % slots) * 20 end
local function entry_at(minute)
  local raw = redis.call('GETRANGE', ring, slot_of(minute), slot_of(minute) + 19)
  if #raw < 20 then return nil end
  local m, v, u, mv, mu = struct.unpack(ENTRY, raw)
  if m ~= minute then return nil end
  return {v, u, mv, mu}
end

local minute = math.floor(now / 60)
local last = tonumber(rec.lm or -1)
local e = nil
if last >= minute then  -- this minute again (or the clock stepped back): the last one kept
  minute = last
  e = entry_at(minute)
end
if e then
  e[1], e[2] = views, viewers
  if views > e[3] then e[3] = views end
  if viewers > e[4] then e[4] = viewers end
else
  e = {views, viewers, math.max(views, old_v), math.max(viewers, old_u)}
end
redis.call('SETRANGE', ring, slot_of(minute), struct.pack(ENTRY, minute, e[1], e[2], e[3], e[4]))
redis.call('PEXPIRE', ring, ttl)

local pv, pva = tonumber(rec.pv or 0), tonumber(rec.pva or -1)
local pu, pua = tonumber(rec.pu or 0), tonumber(rec.pua or -1)
if views > pv then pv, pva = views, now end
if viewers > pu then pu, pua = viewers, now end

-- A peak older than the window gives way to the highest kept minute (or the value carried
-- into the window), at that minute's start: headcount.history.record._peak.
local first = math.floor((now - retention) / 60) + 1
local start = first * 60
if (pva >= 0 and pva < start) or (pua >= 0 and pua < start) then
  local raw = redis.call('GET', ring) or ''
  local base_m, base_v, base_u = -1, 0, 0
  local entries = {}
  for at = 1, #raw - 19, 20 do
    local m, v, u, mv, mu = struct.unpack(ENTRY, string.sub(raw, at, at + 19))
    if m >= first then
      entries[#entries + 1] = {m, mv, mu}
    elseif m > base_m and (v > 0 or u > 0 or m > 0) then
      base_m, base_v, base_u = m, v, u
    end
  end
  table.sort(entries, function(a, b) return a[1] < b[1] end)
  local function best(index, base, at)
    local top, when = base, (base > 0) and start or -1
    for _, entry in ipairs(entries) do
      if entry[index] > top then top, when = entry[index], math.max(entry[1] * 60, start) end
    end
    return top, when
  end
  if pva >= 0 and pva < start then pv, pva = best(2, base_v) end
  if pua >= 0 and pua < start then pu, pua = best(3, base_u) end
end

redis.call('HSET', h, 'v', views, 'u', viewers, 'at', ARGV[1], 'lm', minute,
           'pv', pv, 'pva', pva, 'pu', pu, 'pua', pua)
return {views, viewers, rec.n or ''}
