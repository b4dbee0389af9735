-- wrk script: POST a body of $BODY_SIZE bytes to every request.
local size = tonumber(os.getenv("BODY_SIZE") or "1024")
wrk.method = "POST"
wrk.body = string.rep("x", size)
wrk.headers["Content-Type"] = "application/octet-stream"

-- Count answers that are not 2xx (per wrk thread; the scripts read wrk's own total).
local bad = 0
function response(status, headers, body)
  if status < 200 or status > 299 then bad = bad + 1 end
end

function done(summary, latency, requests)
  -- errors: socket errors only; summary.errors.status (non-2xx) is wrk's "Non-2xx" line.
  io.write(string.format("BENCH non2xx=%d errors=%d p50=%.3f p90=%.3f p99=%.3f\n",
    bad, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000))
end
