-- The soak's /counts mix: browsers polling with the token of their page, and page loads that
-- bring a token never seen before (one request in <fresh every>), paced per connection.
-- Arguments (after `--`): <polling tokens file> <fresh tokens file> <first fresh index>
--                         <fresh every> <delay ms per request and connection>
-- `fresh` says how many fresh tokens were used (the next run starts after them) and `wrapped`
-- whether the fresh file ran out (a repeat would be a cached token, not a fresh one).

polling = {}
fresh = {}
local every = 20
local pause = 0
local count = 0
used = 0
wrapped = 0
local start = 0

local function load(path, into)
  local n = 0
  for line in io.lines(path) do
    if #line > 0 then
      n = n + 1
      into[n] = line
    end
  end
  return n
end

function init(args)
  load(args[1], polling)
  load(args[2], fresh)
  start = tonumber(args[3])
  every = tonumber(args[4])
  pause = tonumber(args[5])
end

function delay()
  return pause
end

function request()
  count = count + 1
  local token
  if count % every == 0 then
    local index = start + used + 1
    used = used + 1
    if index > #fresh then
      wrapped = wrapped + 1
      index = (index - 1) % #fresh + 1
    end
    token = fresh[index]
  else
    token = polling[math.random(#polling)]
  end
  return wrk.format("GET", "/counts?token=" .. token)
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function done(summary, latency, requests)
  local u, w = 0, 0
  for _, thread in ipairs(threads) do
    u = u + thread:get("used")
    w = w + thread:get("wrapped")
  end
  io.write(string.format("bench fresh=%d wrapped=%d\n", u, w))
end
