-- bench/load.lua: the sandbox under concurrent load from other processes.
--
-- 1. wrk (2 threads, 32 connections, BENCH_WRK_SECONDS = 10 s each) against
--    GET /v2/resources/orders/:id and POST /v2/services/promocodes/check,
--    with the Authorization header: requests/second and wrk's latency
--    distribution. Any non-2xx answer or socket error fails the run.
-- 2. BENCH_WORKERS (default 4) Lua processes (bench/order_worker.lua), each
--    making BENCH_WORKER_ORDERS (default 1000) mixed orders at the same time:
--    orders/second over all of them and per-order latency percentiles.
-- 3. The inventory invariant afterwards, per set of the event:
--    vacant (gRPC Events, amount_vacant) + reserved + sold (the tickets of
--    the executed and done orders in the REST order list) = total (amount).
--    For the seated set the gRPC Seats statuses must give the same three
--    numbers, no ticket may be held by two orders, and the REST list must
--    hold exactly the orders the workers reported. A broken invariant fails
--    the run: it is a correctness check, not a timing one.

local util = require "bench.util"

local check, die, fmt, result = util.check, util.die, util.fmt, util.result

local SECONDS = util.knob("BENCH_WRK_SECONDS", 10)
local WORKERS = util.knob("BENCH_WORKERS", 4)
local PER_WORKER = util.knob("BENCH_WORKER_ORDERS", 1000)
local SECTION = "load"
local PROMOCODE = "BENCH10"

local function quote(s)
    return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- ---- the sandbox -----------------------------------------------------------

-- 20,000 seats in 10 sectors of 2,000 (one per worker), stock for every
-- worker's orders, and a promocode on the arena for the promocode check.
if WORKERS > 10 or PER_WORKER > 2000 then die("at most 10 workers of 2000 orders each") end
local catalog = util.catalog("load", { seats = 20000, stock = WORKERS * PER_WORKER + 1000 })
do
    local doc = util.read_json(catalog)
    doc.events[1].promocodes = { { id = "6a00000a0000000000000001", code = PROMOCODE,
                                   discount = { percentage = "10%" } } }
    util.write_json(catalog, doc)
end

-- The sandbox logs one line per request; at wrk's rates that is tens of
-- megabytes, so here it goes to /dev/null (writing it to a file costs ~10 %).
local sb = util.sandbox(catalog, { log = "/dev/null" })
local client = util.client(sb)

local arena, seated, floor = util.arena(client, catalog)

-- ---- wrk -------------------------------------------------------------------

local ms = util.wrk_ms

-- Runs wrk against a path; env is a shell prefix (such as WRK_BODY=...).
local function wrk(name, path, script, env)
    local argv = { env or "", "wrk", "-t2", "-c32", "-d" .. SECONDS .. "s", "--latency",
                   "-H", quote("Authorization: key " .. sb.key) }
    if script then
        argv[#argv + 1] = "-s"
        argv[#argv + 1] = quote(script)
    end
    argv[#argv + 1] = quote(sb.api .. path)
    local sandbox_cpu0 = util.cpu_seconds(sb.pid)
    local p = check(io.popen(table.concat(argv, " ") .. " 2>&1"), "cannot run", "wrk")
    local out = p:read("*a")
    local ok = p:close()
    local sandbox_cpu = util.cpu_seconds(sb.pid) - sandbox_cpu0
    local rate = out:match("Requests/sec:%s+([%d.]+)")
    if not ok or not rate then die("wrk %s failed:\n%s", path, out) end
    local bad = out:match("Non%-2xx or 3xx responses: (%d+)")
    if bad then die("wrk %s: %s answers were not 2xx:\n%s", path, bad, out) end
    local errors = out:match("Socket errors: ([^\n]+)")
    if errors then die("wrk %s: socket errors: %s", path, errors) end
    local total = out:match("(%d+) requests in")
    -- The latency distribution ("    50%  1.07ms") and the thread stats'
    -- maximum ("    Latency  1.20ms  0.80ms  17.07ms  90.00%").
    local pct, max = {}, nil
    for line in out:gmatch("[^\n]+") do
        local q, v = line:match("^%s+(%d+)%%%s+(%S+)$")
        if q then pct[q] = v end
        max = max or line:match("^%s+Latency%s+%S+%s+%S+%s+(%S+)")
    end
    local p50, p90, p99 = pct["50"], pct["90"], pct["99"]
    if not (p50 and p90 and p99 and max) then die("wrk %s: no latency distribution in:\n%s", path, out) end
    result(SECTION, name .. ": requests/s", tonumber(rate), "req/s")
    result(SECTION, name .. ": latency", ("%.2f / %.2f / %.2f / %.2f"):format(
        ms(p50), ms(p90), ms(p99), ms(max)), "ms p50/p90/p99/max")
    result(SECTION, name .. ": sandbox CPU per request", sandbox_cpu / tonumber(total) * 1e6, "us")
end

util.section(("load: wrk, 2 threads, 32 connections, %d s per endpoint"):format(SECONDS))

-- One order to read: created, with a seat and an unseated ticket, finished.
local target = util.finished_order(client, arena, floor, "the order for GET")

wrk("GET /v2/resources/orders/:id", "/v2/resources/orders/" .. target.id)
wrk("POST /v2/services/promocodes/check", "/v2/services/promocodes/check", "bench/wrk-post.lua",
    "WRK_BODY=" .. quote(('{"event":"%s","code":"%s"}'):format(arena, PROMOCODE)))

-- ---- concurrent Lua clients ------------------------------------------------

util.section(("load: %d Lua processes, %s mixed orders each, at the same time")
    :format(WORKERS, fmt(PER_WORKER)))

-- The seated sectors, in map order: worker i takes sector i.
local sectors = {}
local seen = {}
util.walk(check(client:seats{ event = arena }), function(s)
    if not seen[s.sector] then
        seen[s.sector] = true
        sectors[#sectors + 1] = s.sector
    end
end)

local sandbox_cpu0 = util.cpu_seconds(sb.pid)
local procs = {}
for i = 1, WORKERS do
    local argv = { util.LUA, "bench/order_worker.lua", sb.api, sb.simple, sb.key, arena, floor,
                   sectors[i], PER_WORKER }
    for j, a in ipairs(argv) do argv[j] = quote(a) end
    procs[i] = check(io.popen(table.concat(argv, " ")), "cannot start", "bench/order_worker.lua")
end

-- What the workers report: every order with its status and ticket count.
local reported = {} -- order id -> status
local latencies = {}
local start, stop, requests, connects = math.huge, 0, 0, 0
for i, p in ipairs(procs) do
    local done = false
    for line in p:lines() do
        local id, status, seconds = line:match("^order (%S+) (%S+) (%S+) %d+$")
        if id then
            reported[id] = status
            latencies[#latencies + 1] = tonumber(seconds)
        else
            local s, e, r, c = line:match("^done (%S+) (%S+) (%d+) (%d+)$")
            if not s then die("worker %d: unexpected output %q", i, line) end
            start, stop = math.min(start, tonumber(s)), math.max(stop, tonumber(e))
            requests, connects = requests + tonumber(r), connects + tonumber(c)
            done = true
        end
    end
    if not p:close() or not done then die("worker %d failed (see above)", i) end
end
local sandbox_cpu = util.cpu_seconds(sb.pid) - sandbox_cpu0
local orders = WORKERS * PER_WORKER
result(SECTION, "workers: orders/s, all processes together", orders / (stop - start), "orders/s")
result(SECTION, "workers: REST requests/s, all together", requests / (stop - start), "req/s")
result(SECTION, "workers: wall time", stop - start, "s")
util.latencies(SECTION, "workers: order (cancel included)", latencies)
result(SECTION, "workers: sandbox CPU per order", sandbox_cpu / orders * 1000, "ms")
result(SECTION, "workers: libcurl connections per process", connects / WORKERS, "")

-- ---- the inventory invariant -----------------------------------------------

util.section("load: inventory invariant, vacant + reserved + sold = total per set")

-- gRPC Events: the live counters of every set.
local event = check(client:events{ ids = { arena } })()
if not event then die("the arena event is gone") end

-- REST: every order of the event; tickets of live orders per set and status.
local HOLDS = { executed = "reserved", done = "sold" }
local held = {}       -- set id -> { reserved = n, sold = n }
local holder = {}     -- ticket id -> order id
local listed = {}     -- order id -> status
local list = check(client:orders{ events = { arena }, page_size = 200 })
for order in list do
    listed[order.id] = order.status
    local as = HOLDS[order.status]
    for _, t in ipairs(order.tickets) do
        if as then
            if holder[t.id] then die("ticket %s is in orders %s and %s", t.id, holder[t.id], order.id) end
            holder[t.id] = order.id
            held[t.set] = held[t.set] or { reserved = 0, sold = 0 }
            held[t.set][as] = held[t.set][as] + 1
        end
    end
end
check(not list:error(), list:error(), "the REST order list")

-- The workers' orders are all there, in the state they reported.
local n_reported = 0
for id, status in pairs(reported) do
    n_reported = n_reported + 1
    if listed[id] ~= status then
        die("order %s: a worker reported it %s, the list says %s", id, status, tostring(listed[id]))
    end
end
if n_reported ~= orders then die("the workers reported %d orders, not %d", n_reported, orders) end
local n_listed = 0
for _ in pairs(listed) do n_listed = n_listed + 1 end
if n_listed ~= orders + 1 then -- the workers' orders and the one wrk read
    die("the REST list has %d orders of the event, not %d", n_listed, orders + 1)
end

-- gRPC Seats: the seated set's statuses.
local statuses = { VACANT = 0, RESERVED = 0, SOLD = 0 }
util.walk(check(client:seats{ event = arena }), function(s)
    statuses[s.status] = statuses[s.status] + 1
end)

local rows = {}
for _, set in ipairs(event.sets) do
    local h = held[set.id] or { reserved = 0, sold = 0 }
    local sum = set.amount_vacant + h.reserved + h.sold
    rows[#rows + 1] = ("  %-32s %8d %8d %9d %8d %22d"):format(
        set.id .. (set.with_seats and " seated" or " unseated"),
        set.amount, set.amount_vacant, h.reserved, h.sold, sum)
    if sum ~= set.amount then
        die("set %s: vacant %d + reserved %d + sold %d = %d, not its total %d", set.id,
            set.amount_vacant, h.reserved, h.sold, sum, set.amount)
    end
    if set.id == seated and (statuses.VACANT ~= set.amount_vacant or statuses.RESERVED ~= h.reserved
                             or statuses.SOLD ~= h.sold) then
        die("seated set %s: Seats says vacant %d, reserved %d, sold %d", set.id, statuses.VACANT,
            statuses.RESERVED, statuses.SOLD)
    end
end
print(("  %-32s %8s %8s %9s %8s %22s"):format("set", "total", "vacant", "reserved", "sold",
                                             "vacant+reserved+sold"))
print(table.concat(rows, "\n"))
result(SECTION, "invariant: sets checked, all hold", #event.sets, "sets")
result(SECTION, "invariant: orders listed over REST", n_listed, "orders")

client:close()
sb:stop()
