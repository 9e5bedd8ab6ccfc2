-- tools/chaos.lua: the chaos run behind `make chaos`. Does the client lose,
-- duplicate or orphan orders when the network fails? (docs/benchmarks.md,
-- "Chaos run").
--
--   make chaos                                   10,000 orders, 4 workers, seed 1
--   make chaos CHAOS_ORDERS=500 CHAOS_SEED=7     a shorter run, other faults
--   CHAOS_FAULTS= make chaos                     no faults: must find nothing
--
-- 1. Writes a catalog with tools/gen-catalog.lua: one event with two seats
--    per order and three unseated tickets per order.
-- 2. Starts tc-sandbox with --seed, an order lifetime of a day (no order
--    expires during the run, so expiry cannot hide an orphan) and --faults:
--    10 % of the order changes (POST and PATCH) and 3 % of the order reads
--    fail: error statuses, dropped connections before and after the change
--    is applied, and answers slower than the client's timeout.
-- 3. Runs CHAOS_WORKERS processes (tools/chaos_worker.lua) at the same
--    time, CHAOS_ORDERS orders in all, each writing one line per attempt:
--    what it asked and what it believes came of it.
-- 4. Checks what they believe against every order, seat and counter the
--    service holds (tools/chaos_check.lua), reading through a client that
--    only reads and retries.
-- 5. Prints a one-screen report (also DIR/report.txt) and exits 1 when a
--    check found a violation, 2 when the run itself failed.
--
-- Environment: CHAOS_ORDERS, CHAOS_WORKERS, CHAOS_SEED, CHAOS_FAULTS (a
-- --faults SPEC instead of the mix below; empty for none), CHAOS_DIR
-- (build/chaos), CHAOS_LUA (the workers' interpreter, lua5.4), TC_SANDBOX;
-- LUA_PATH and LUA_CPATH must find the module and ./tools.

local cjson = require "cjson"
local system = require "system"
local core = require "ticketscloud.core"
local sandbox = require "ticketscloud.sandbox"
local checker = require "tools.chaos_check"

local function knob(name, default)
    local v = tonumber(os.getenv(name) or "")
    if v and v >= 1 and v % 1 == 0 then return v end
    return default
end

local ORDERS = knob("CHAOS_ORDERS", 10000)
local WORKERS = knob("CHAOS_WORKERS", 4)
local SEED = knob("CHAOS_SEED", 1)
local DIR = os.getenv("CHAOS_DIR") or "build/chaos"
local LUA = os.getenv("CHAOS_LUA") or "lua5.4"
local TIMEOUT = 0.5     -- the workers' client timeout, seconds
local SLOW_MS = 1500    -- a slow answer comes this late: three times the timeout
local LIFETIME = 86400  -- the sandbox's order lifetime (--expire), seconds

-- The fault mix, per route: { fault, probability }. At most one fault per
-- request; the rest of the requests are served normally.
local CHANGES = { { "500", 0.02 }, { "502", 0.01 }, { "503", 0.02 }, { "drop_before", 0.015 },
                  { "drop_after", 0.02 }, { "slow", 0.015 } }                         -- 10 %
local READS = { { "500", 0.01 }, { "drop_after", 0.01 }, { "slow", 0.01 } }         --  3 %
local MIX = { { "orders.create", CHANGES }, { "orders.patch", CHANGES },
              { "orders.get", READS }, { "orders.list", READS } }

local function default_faults()
    local entries = {}
    for _, route in ipairs(MIX) do
        for _, f in ipairs(route[2]) do
            entries[#entries + 1] = ("%s:%s=%s%s"):format(route[1], f[1], f[2],
                                                          f[1] == "slow" and "@" .. SLOW_MS or "")
        end
    end
    return table.concat(entries, ",")
end
local FAULTS = os.getenv("CHAOS_FAULTS") or default_faults()

local function quote(s)
    return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local sb -- the sandbox, stopped by die()
local function die(fmt, ...)
    io.stderr:write("chaos: ", fmt:format(...), "\n")
    if sb then sb:stop() end
    os.exit(2)
end

local function read_json(path)
    local f = io.open(path) or die("cannot open %s", path)
    local doc = cjson.decode(f:read("*a"))
    f:close()
    return doc
end

local function write_file(path, text)
    local f = io.open(path, "w") or die("cannot write %s", path)
    f:write(text)
    f:close()
end

local function pct(p)
    return (("%.2f"):format(p * 100):gsub("%.?0+$", "")) .. " %"
end

-- The SPEC, one line per route: "orders.create  500 2 %, ... = 10 %".
local function describe_faults(spec)
    if spec == "" then return { "  none" } end
    local routes, order = {}, {}
    for entry in spec:gmatch("[^,]+") do
        local route, fault, p, ms = entry:match("^([^:]+):([^=]+)=([%d.]+)@?(%d*)$")
        if not route then die("cannot read the fault entry %q", entry) end
        if not routes[route] then
            routes[route] = { parts = {}, total = 0 }
            order[#order + 1] = route
        end
        local r = routes[route]
        r.parts[#r.parts + 1] = fault .. (ms ~= "" and "@" .. ms .. "ms" or "") .. " " .. pct(tonumber(p))
        r.total = r.total + tonumber(p)
    end
    local lines = {}
    for _, route in ipairs(order) do
        local r = routes[route]
        lines[#lines + 1] = ("  %-14s %s = %s"):format(route, table.concat(r.parts, ", "), pct(r.total))
    end
    return lines
end

-- The --faults route of a request in the sandbox's log.
local function route_of(method, path)
    path = path:gsub("%?.*$", "")
    if path == "/v2/resources/orders" then
        return method == "POST" and "orders.create" or "orders.list"
    elseif path:match("^/v2/resources/orders/%w+$") then
        return method == "PATCH" and "orders.patch" or "orders.get"
    end
    return method .. " " .. path
end

-- The faults in the sandbox's log: { [route] = { [fault] = n } } of its
-- "fault" lines before byte `upto`, and of its count at exit.
local function faults_injected(log, upto)
    local f = io.open(log) or die("cannot open %s", log)
    local text = "\n" .. f:read("*a") -- every line starts after a newline
    f:close()
    upto = upto + 1
    local during, total = {}, {}
    local function add(t, route, fault, n)
        t[route] = t[route] or {}
        t[route][fault] = (t[route][fault] or 0) + n
    end
    for fault, method, path in text:sub(1, upto):gmatch("\ntc%-sandbox: fault (%S+) (%S+) (%S+)") do
        add(during, route_of(method, path), fault, 1)
    end
    local reported = false
    for route, fault, n in text:gmatch("\ntc%-sandbox: faults injected: (%S+) (%S+) (%d+)") do
        add(total, route, fault, tonumber(n))
    end
    if text:find("\ntc%-sandbox: faults injected: %d+ in all") then reported = true end
    return during, total, reported
end

-- ---- 1, 2: catalog and sandbox ---------------------------------------------

local t_start = system.monotime()
os.execute("rm -rf " .. quote(DIR) .. " && mkdir -p " .. quote(DIR))

local counts = {}
for w = 1, WORKERS do
    counts[w] = math.floor(ORDERS / WORKERS) + (w <= ORDERS % WORKERS and 1 or 0)
end
local part = 2 * counts[1] -- two seats per attempt, the most any worker makes

local catalog = DIR .. "/catalog.json"
local ok = os.execute(("lua5.4 tools/gen-catalog.lua --seats %d --stock %d --events 0 --out %s")
    :format(part * WORKERS, 3 * ORDERS, quote(catalog)))
if ok ~= true and ok ~= 0 then die("tools/gen-catalog.lua failed") end
local amounts = {} -- set id -> its tickets in the catalog
local event_id
do
    local doc = read_json(catalog)
    local event = doc.events[1]
    event_id = event.id
    for _, set in ipairs(event.sets) do
        amounts[set.id] = set.tickets and #set.tickets or set.stock.count
    end
end

local log = DIR .. "/sandbox.log"
local err
sb, err = sandbox.start{ catalog = catalog, seed = SEED, expire = LIFETIME, log = log,
                         faults = FAULTS ~= "" and FAULTS or nil }
if not sb then die("%s", tostring(err)) end
local reader = checker.reader(sb)

-- The unseated set, and the seats in the order Seats lists them.
local floor
do
    local stream = assert(reader:events{ ids = { event_id } })
    local event = stream() or die("no event %s: %s", event_id, tostring(stream:error()))
    for _, set in ipairs(event.sets) do
        if not set.with_seats then floor = set.id end
    end
    stream:close()
end
local seats = {}
do
    local stream = assert(reader:seats{ event = event_id })
    for s in stream do seats[#seats + 1] = s.ticket end
    if stream:error() then die("Seats: %s", tostring(stream:error())) end
end
write_file(DIR .. "/seats.txt", table.concat(seats, "\n") .. "\n")

local run_file = DIR .. "/run.json"
write_file(run_file, cjson.encode{
    api = sb.api, simple = sb.simple, key = sb.key, event = event_id, floor = floor,
    seats_file = DIR .. "/seats.txt", part = part, workers = WORKERS, counts = counts,
    seed = SEED, timeout = TIMEOUT, dir = DIR,
})
local since = os.time() - 60 -- for find_created: every order of the run is newer

-- ---- 3: the workers --------------------------------------------------------

print(("chaos: %d orders, %d workers, seed %d, faults: %s"):format(ORDERS, WORKERS, SEED,
                                                                    FAULTS == "" and "none" or FAULTS))
local t_workers = system.monotime()
local procs = {}
for w = 1, WORKERS do
    -- A worker that hangs is stopped after far longer than its orders take.
    local limit = 120 + 2 * counts[w]
    procs[w] = io.popen(("timeout --kill-after=10 %d %s tools/chaos_worker.lua %s %d 2>&1")
        :format(limit, quote(LUA), quote(run_file), w))
end
local problems = {} -- the run's own failures, not the client's
for w, p in ipairs(procs) do
    local out = p:read("*a")
    local exited = p:close()
    if not exited then
        problems[#problems + 1] = ("worker %d failed: %s"):format(w, (out:gsub("%s+$", "")))
    end
end
local t_check = system.monotime()
-- A request a worker gave up on (its timeout) may still be running at the
-- sandbox: let it finish before the service is read.
core.sleep(2 * TIMEOUT)
local log_size
do
    local f = io.open(log) or die("cannot open %s", log)
    log_size = f:seek("end")
    f:close()
end

-- ---- 4: the checks ---------------------------------------------------------

local files = {}
for w = 1, WORKERS do files[w] = ("%s/worker-%d.tsv"):format(DIR, w) end
local attempts = checker.read_attempts(files)
if #attempts ~= ORDERS then
    problems[#problems + 1] = ("the workers wrote %d attempts, not %d"):format(#attempts, ORDERS)
end
local resolved = checker.resolve(reader, attempts, event_id, since)
local service
service, err = checker.read_service(reader, event_id)
if not service then die("reading the service: %s", tostring(err)) end
checker.write_orders(DIR .. "/orders.tsv", service.orders)
local checks, figures = checker.check{
    attempts = attempts, resolved = resolved, orders = service.orders, seats = service.seats,
    event = service.event, amounts = amounts,
}
local retried = reader.http.retried
reader:close()
sb:stop()
sb = nil
local t_end = system.monotime()
local during, total, reported = faults_injected(log, log_size)

-- ---- 5: the report ---------------------------------------------------------

local lines = {}
local function say(fmt, ...) lines[#lines + 1] = fmt:format(...) end

-- "done 410, cancelled 44" in the order of names, then any others.
local function tally(t, names)
    local parts, seen = {}, {}
    for _, name in ipairs(names or {}) do
        parts[#parts + 1] = ("%s %d"):format(name, t[name] or 0)
        seen[name] = true
    end
    local rest = {}
    for k in pairs(t) do if not seen[k] then rest[#rest + 1] = k end end
    table.sort(rest)
    for _, k in ipairs(rest) do parts[#parts + 1] = ("%s %d"):format(k, t[k]) end
    return #parts > 0 and table.concat(parts, ", ") or "none"
end

say("== chaos run: %d orders, %d workers, seed %d", ORDERS, WORKERS, SEED)
say("client timeout %g s; order lifetime %d s (nothing expires during the run)", TIMEOUT, LIFETIME)
say("faults (at most one per request):")
for _, line in ipairs(describe_faults(FAULTS)) do say("%s", line) end
say("wall time %.1f s: catalog and sandbox %.1f s, workers %.1f s, checker %.1f s",
    t_end - t_start, t_workers - t_start, t_check - t_workers, t_end - t_check)
say("")
say("callers: %d attempts (%s; first = random and seats alternating)", figures.attempts,
    tally(figures.intents, { "finish", "cancel" }))
say("  believe   %s", tally(figures.beliefs, { "done", "cancelled", "failed", "unknown" }))
say("  failed    by error kind: %s", tally(figures.failed_kinds))
say("  unknown   by error kind: %s; resolved: %s", tally(figures.unknown_kinds),
    tally(figures.resolved, { "done", "not done", "unresolved" }))
say("  seats two attempts asked for (workers competing): %d", figures.contested)
say("service: %d orders of the event", figures.orders)
say("  status    %s", tally(figures.statuses, { "done", "cancelled", "executed", "expired" }))
for _, set in ipairs(service.event.sets) do
    say("  set %s (%s): %d tickets, sold %d, reserved %d, vacant %d", set.id,
        set.with_seats and "seated" or "unseated", set.amount, figures.sold[set.id],
        figures.reserved[set.id], set.amount_vacant)
end
say("faults injected while the workers ran [the sandbox's count at exit, the checker's reads")
say("  included, where it differs]:")
local routes = {}
for route in pairs(total) do routes[#routes + 1] = route end
for route in pairs(during) do if not total[route] then routes[#routes + 1] = route end end
table.sort(routes)
local n_during, n_total = 0, 0
for _, route in ipairs(routes) do
    local kinds, parts = {}, {}
    for kind in pairs(total[route] or {}) do kinds[#kinds + 1] = kind end
    for kind in pairs(during[route] or {}) do
        if not (total[route] or {})[kind] then kinds[#kinds + 1] = kind end
    end
    table.sort(kinds)
    for _, kind in ipairs(kinds) do
        local d, t = (during[route] or {})[kind] or 0, (total[route] or {})[kind] or 0
        n_during, n_total = n_during + d, n_total + t
        parts[#parts + 1] = kind .. " " .. d .. (t ~= d and (" [" .. t .. "]") or "")
    end
    say("  %-14s %s", route, table.concat(parts, ", "))
end
say("  in all %d [%d]; the checker retried %d reads", n_during, n_total, retried)
if FAULTS ~= "" and not reported then
    problems[#problems + 1] = "the sandbox did not report its fault counts at exit"
end
say("")
say("checks (each line: violations, then what was checked)")
local violations, kinds = 0, 0
for _, c in ipairs(checks) do
    say("  %-4s %6d  %s", c.n == 0 and "ok" or "FAIL", c.n, c.name)
    for _, example in ipairs(c.examples) do say("              %s", example) end
    if c.n > 0 then
        violations, kinds = violations + c.n, kinds + 1
        if c.n > #c.examples then say("              ... and %d more", c.n - #c.examples) end
    end
end
for _, problem in ipairs(problems) do say("RUN FAILED: %s", problem) end
if violations > 0 then
    say("result: FAIL, %d violation%s of %d kind%s", violations, violations == 1 and "" or "s",
        kinds, kinds == 1 and "" or "s")
else
    say("result: %s, no violation", #problems > 0 and "RUN FAILED" or "OK")
end

local text = table.concat(lines, "\n") .. "\n"
io.stdout:write(text)
write_file(DIR .. "/report.txt", text .. "\nfaults: " .. (FAULTS == "" and "none" or FAULTS) .. "\n")
print(("(report: %s/report.txt; the callers' lines: %s/worker-N.tsv; the service's orders:"
       .. " %s/orders.tsv)"):format(DIR, DIR, DIR))
if #problems > 0 then os.exit(2) end
os.exit(violations > 0 and 1 or 0)
