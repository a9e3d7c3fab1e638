-- wrk script for benchmarks/loadtest.py: POST /ask with the JSON bodies of a file (one per
-- line; the question mix is made there), each wrk thread starting at its own offset, at most
-- LOADTEST_MAX_PER_THREAD requests per thread, and a JSON summary on stdout at the end.
--   wrk -t2 -c16 -d60s -s benchmarks/loadtest.lua http://127.0.0.1:PORT -- bodies.txt

local threads = {}
local bodies = {}
local counter = 0
local offset = 0
local max_requests = tonumber(os.getenv("LOADTEST_MAX_PER_THREAD") or "0")

function setup(thread)
  thread:set("thread_index", #threads)
  table.insert(threads, thread)
end

function init(args)
  for line in io.lines(args[1]) do
    if #line > 0 then bodies[#bodies + 1] = line end
  end
  local n_threads = tonumber(args[2] or "1")
  offset = math.floor((thread_index or 0) * #bodies / n_threads)
end

function request()
  counter = counter + 1
  local body = bodies[((offset + counter - 1) % #bodies) + 1]
  return wrk.format("POST", "/ask", { ["Content-Type"] = "application/json" }, body)
end

function response(status, headers, body)
  if max_requests > 0 and counter >= max_requests then
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write("LOADTEST_JSON ")
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"latency_us": {"p50": %d, "p90": %d, "p99": %d, "mean": %.1f, "max": %d, "min": %d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean, latency.max, latency.min))
end
