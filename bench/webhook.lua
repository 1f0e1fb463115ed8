-- wrk script for bench/webhook.py: signed Twilio webhooks, one distinct message per request.
--
-- bench/webhook.py writes one line per message: the X-Twilio-Signature, a tab, and the
-- form-encoded POST body (a new MessageSid each). Signing happens there, with the twilio
-- package's own RequestValidator, so wrk spends its CPU on sending, not on HMAC-SHA1.
-- Each wrk thread takes every n-th line, so no message is sent twice. When a thread runs
-- out it sends GET /__bench_exhausted__ (a 404, counted) and done() reports it, so a run
-- that needed more messages says so instead of silently re-sending duplicates.
--
--   wrk -t2 -c16 -d60s -s bench/webhook.lua URL -- MESSAGES_FILE THREADS [cycle]
--
-- "cycle" (the bare baseline endpoint, which keeps no state) starts the lines over instead.

local threads = {}
local counter = 1

function setup(thread)
   thread:set("id", counter)
   counter = counter + 1
   table.insert(threads, thread)
end

local messages = {}
local index = 0
local cycle = false
exhausted = 0

function init(args)
   local path, nthreads = args[1], tonumber(args[2])
   cycle = args[3] == "cycle"
   local n = 0
   for line in io.lines(path) do
      if n % nthreads == id - 1 then
         local tab = line:find("\t", 1, true)
         messages[#messages + 1] = { line:sub(1, tab - 1), line:sub(tab + 1) }
      end
      n = n + 1
   end
end

function request()
   index = index + 1
   if index > #messages then
      if not cycle then
         exhausted = exhausted + 1
         return wrk.format("GET", "/__bench_exhausted__")
      end
      index = 1
   end
   local message = messages[index]
   return wrk.format("POST", nil, {
      ["Content-Type"] = "application/x-www-form-urlencoded",
      ["X-Twilio-Signature"] = message[1],
   }, message[2])
end

function done(summary, latency, requests)
   local out = 0
   for _, thread in ipairs(threads) do
      out = out + (thread:get("exhausted") or 0)
   end
   local e = summary.errors
   io.write(string.format(
      'RESULT {"requests": %.0f, "duration_us": %.0f, "status_errors": %.0f, "connect": %.0f, '
         .. '"read": %.0f, "write": %.0f, "timeout": %.0f, "p50_us": %.0f, "p99_us": %.0f, '
         .. '"exhausted": %.0f}\n',
      summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
      latency:percentile(50), latency:percentile(99), out
   ))
end
