-- GET /counts with a different token on every request (the cold RS256 path).
-- Arguments (after `--`): <file with one token per line> [<path prefix, default /counts?token=>]
-- Tokens are walked in order and never repeated; if the file runs out the walk starts over and
-- `wrapped` says so, which makes the benchmark refuse the run (a repeat would hit the cache).

tokens = {}
total = 0
used = 0
wrapped = 0
local prefix = "/counts?token="

function init(args)
  for line in io.lines(args[1]) do
    if #line > 0 then
      total = total + 1
      tokens[total] = line
    end
  end
  if args[2] then prefix = args[2] end
end

function request()
  used = used + 1
  if used > total then
    used = 1
    wrapped = wrapped + 1
  end
  return wrk.format("GET", prefix .. tokens[used])
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function done(summary, latency, requests)
  local u, t, w = 0, 0, 0
  for _, thread in ipairs(threads) do
    u = u + thread:get("used")
    t = t + thread:get("total")
    w = w + thread:get("wrapped")
  end
  io.write(string.format("bench used=%d total=%d wrapped=%d\n", u, t, w))
end
