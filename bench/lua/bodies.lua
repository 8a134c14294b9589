-- POST realistic mux-embed batches (templates from bench/bodies.py) with distinct views.
-- Arguments (after `--`): <Lua data file> <run number> [<concurrent views, default 512>]
--
-- `slots` views are in flight at once; each request takes the next slot round-robin and sends
-- that view's next body. When a view's lifecycle is over, the slot starts a new view (a new
-- generation) with the next lifecycle template. A view id is (slot, run, generation), so no two
-- views of any run share an id and the only repeated (view, sequence) pairs are the ones the
-- templates repeat on purpose (the unload pair). A viewer id lasts three views of a slot (one
-- browser watching videos in turn); the video is drawn from a skewed popularity list.
--
-- Few slots on purpose: every slot goes through whole lifecycles many times per run, so the
-- mix of bodies (first batches, heartbeats, ends) is the same at 4k req/s as at 40k; with one
-- slot per view of a real audience, a slow server would only ever see first batches.

local data
local slots = 512
local run = 0
local life_of, step_of, generation_of, ids_of = {}, {}, {}, {}
local cursor = 0
local lifecycle_count, video_count = 0, 0
local headers = { ["Content-Type"] = "text/plain" }
local buffer = {}

started = 0
finished = 0

function init(args)
  data = dofile(args[1])
  run = tonumber(args[2]) or 0
  if args[3] then slots = tonumber(args[3]) end
  lifecycle_count = #data.lifecycles
  video_count = #data.videos
  for slot = 1, slots do
    life_of[slot] = (slot - 1) % lifecycle_count + 1
    step_of[slot] = 1
    generation_of[slot] = 0
  end
end

function request()
  cursor = cursor % slots + 1
  local slot = cursor
  local generation = generation_of[slot]
  local lifecycle = data.lifecycles[life_of[slot]]
  local step = step_of[slot]
  if step == 1 then
    started = started + 1
    -- The ids are made once per view, not per request, to keep wrk's own cost low.
    ids_of[slot] = {
      string.format("%08x-%04x-4000-8000-%012x", slot, run, generation),
      string.format("%08x-%04x-4000-9000-%012x", slot, run, math.floor(generation / 3)),
      data.videos[(slot * 7919 + generation * 104729 + run * 15485863) % video_count + 1],
      string.format("%08x-%04x-4000-a000-%012x", slot, run, generation),
    }
  end
  local values = ids_of[slot]

  local template = lifecycle[step]
  local n = #template
  for i = 1, n do
    local cell = template[i]
    if type(cell) == "number" then buffer[i] = values[cell] else buffer[i] = cell end
  end
  for i = n + 1, #buffer do buffer[i] = nil end
  local body = table.concat(buffer)

  if step >= #lifecycle then
    finished = finished + 1
    step_of[slot] = 1
    generation_of[slot] = generation + 1
    life_of[slot] = (life_of[slot] + slots - 1) % lifecycle_count + 1
  else
    step_of[slot] = step + 1
  end
  return wrk.format("POST", nil, headers, body)
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function done(summary, latency, requests)
  local s, f = 0, 0
  for _, thread in ipairs(threads) do
    s = s + thread:get("started")
    f = f + thread:get("finished")
  end
  io.write(string.format("bench views_started=%d views_finished=%d\n", s, f))
end
