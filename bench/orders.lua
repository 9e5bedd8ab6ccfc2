-- bench/orders.lua: orders through the module, one client, one process.
--
-- The order example's mixed order (ticketscloud.flows.mixed_order: one seat
-- plus one unseated ticket, finish = true) made BENCH_ORDERS times (default
-- 2000) in each sequence, alternating: "random" first (POST random, PATCH
-- tickets, PATCH status) and "seats" first (POST tickets, PATCH random,
-- PATCH status). Reported: orders/second, latency percentiles of whole
-- orders and of each kind of request (client:send is wrapped, so a request
-- is timed with its JSON encoding and decoding), CPU per order in this
-- process and in the sandbox, and client.http:stats(): the requests against
-- the connections libcurl opened, which shows that the connection is reused.
--
-- It also saves the answer of one finishing PATCH to BENCH_DIR/order-answer.json
-- for bench/ops.lua.

local flows = require "ticketscloud.flows"
local util = require "bench.util"

local check, now, result = util.check, util.now, util.result

local N = util.knob("BENCH_ORDERS", 2000)
local WARMUP = 5
local SECTION = "orders"

util.section(("orders: flows.mixed_order x %d in each sequence, one client"):format(N))

-- 100,000 seats, and enough unseated stock for every order.
local catalog = util.catalog("orders", { seats = 100000, stock = 2 * (N + WARMUP) + 1000 })
local sb = util.sandbox(catalog)
local client = util.client(sb)

-- The arena, its dance floor (the unseated set) and enough vacant seats.
local arena, _, floor = util.arena(client, catalog)

local seats = {}
local stream = check(client:seats{ event = arena, status = "VACANT" })
for seat in stream do
    seats[#seats + 1] = seat.ticket
    if #seats == 2 * (N + WARMUP) then break end
end
stream:close()
if #seats < 2 * (N + WARMUP) then util.die("only %d vacant seats", #seats) end

-- Every REST request of the client, timed by kind.
local recording = false
local by_kind, finish_answer = {}, nil
local function kind_of(req)
    if req.method == "POST" then return "POST create" end
    if req.method ~= "PATCH" then return req.method end
    if req.body:find('"status"', 1, true) then return "PATCH finish" end
    if req.body:find('"tickets"', 1, true) then return "PATCH add tickets" end
    if req.body:find('"random"', 1, true) then return "PATCH add random" end
    return "PATCH other"
end
local send = client.send
client.send = function(self, req, opts)
    local t0 = now()
    local doc, err = send(self, req, opts)
    if recording then
        local kind = kind_of(req)
        by_kind[kind] = by_kind[kind] or {}
        table.insert(by_kind[kind], now() - t0)
        if doc and kind == "PATCH finish" then finish_answer = doc end
    end
    return doc, err
end

local next_seat = 0
local function mixed_order(first)
    next_seat = next_seat + 1
    local t0 = now()
    local order, err = flows.mixed_order(client, {
        event = arena, seats = { seats[next_seat] }, random = { [floor] = 1 },
        first = first, finish = true })
    check(order, err, "flows.mixed_order (first = " .. first .. ")")
    if order.status ~= "done" or #order.tickets ~= 2 then
        util.die("order %s is %s with %d tickets, not done with 2", order.id, order.status, #order.tickets)
    end
    return now() - t0
end

for _ = 1, WARMUP do
    mixed_order("random")
    mixed_order("seats")
end

recording = true
local random_first, seats_first, all = {}, {}, {}
local cpu0, sandbox_cpu0 = util.cpu_seconds("self"), util.cpu_seconds(sb.pid)
local t0 = now()
for i = 1, N do
    random_first[i] = mixed_order("random")
    seats_first[i] = mixed_order("seats")
    all[#all + 1] = random_first[i]
    all[#all + 1] = seats_first[i]
end
local wall = now() - t0
local cpu, sandbox_cpu = util.cpu_seconds("self") - cpu0, util.cpu_seconds(sb.pid) - sandbox_cpu0
recording = false

local requests = 0
for _, list in pairs(by_kind) do requests = requests + #list end

result(SECTION, "orders/s (2 orders per iteration)", 2 * N / wall, "orders/s")
result(SECTION, "REST requests/s", requests / wall, "req/s")
result(SECTION, "wall time", wall, "s")
util.latencies(SECTION, "order, random first", random_first)
util.latencies(SECTION, "order, seats first", seats_first)
local kinds = {}
for kind in pairs(by_kind) do kinds[#kinds + 1] = kind end
table.sort(kinds)
for _, kind in ipairs(kinds) do util.latencies(SECTION, "request " .. kind, by_kind[kind]) end

-- Does an order get slower as the sandbox fills up? The first and last tenth.
local tenth = math.max(1, math.floor(#all / 10))
local head, tail = {}, {}
for i = 1, tenth do
    head[i] = all[i]
    tail[i] = all[#all - tenth + i]
end
result(SECTION, "order p50, first 10% of the orders", util.median(head) * 1000, "ms")
result(SECTION, "order p50, last 10% of the orders", util.median(tail) * 1000, "ms")
result(SECTION, "client CPU per order", cpu / (2 * N) * 1000, "ms")
result(SECTION, "sandbox CPU per order", sandbox_cpu / (2 * N) * 1000, "ms")

local stats = check(client.http:stats())
result(SECTION, "libcurl: requests sent (warm-up included)", stats.requests, "")
result(SECTION, "libcurl: connections opened", stats.connects, "")
result(SECTION, "libcurl: connection reused", stats.connects == 1 and "yes" or "NO", "")

if not finish_answer then util.die("no finishing PATCH answer was kept") end
util.write_json(util.DIR .. "/order-answer.json", finish_answer)

client:close()
sb:stop()
