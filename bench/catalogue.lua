-- bench/catalogue.lua: catalogue streaming through the module.
--
-- 1. client:seats{ event = ARENA } over an event of 100,000 seats, walked to
--    the end: seats/second, wall time, time to the first seat, the Lua heap
--    (collectgarbage("count")) at the start, its peak after the first 10 %
--    of the seats and after all of them, and the process RSS (VmRSS, VmHWM).
--    A stream decodes one message per call, so the heap peak after 10,000
--    seats and after 100,000 should be the same: memory is flat. For scale,
--    a last walk keeps every seat, which is what a flat stream avoids.
-- 2. client:events{} over a catalog of many small events.
--
-- Each walk runs BENCH_RUNS times (default 3); rates are the median run.

local util = require "bench.util"

local check, fmt, now, result = util.check, util.fmt, util.now, util.result

local RUNS = util.knob("BENCH_RUNS", 3)
local SEATS = util.knob("BENCH_SEATS", 100000)
local EVENTS = util.knob("BENCH_EVENTS", 5000)
local SECTION = "catalogue"

-- One walk of the arena's seats, with its measurements.
local function walk_seats(client, sb, event)
    collectgarbage("collect")
    local early = math.max(1, math.floor(SEATS / 10))
    local m = { heap0 = util.heap_kb() }
    m.peak, m.mem0 = m.heap0, util.rss()
    local cpu0, sandbox_cpu0 = util.cpu_seconds("self"), util.cpu_seconds(sb.pid)
    local t0 = now()
    local stream = check(client:seats{ event = event })
    m.n = util.walk(stream, function(seat, i)
        if i == 1 then m.first = now() - t0 end
        if seat.ticket == "" then util.die("seat %d has no ticket id", i) end
        local heap = collectgarbage("count")
        if heap > m.peak then m.peak = heap end
        if i == early then m.peak_early = m.peak end
    end)
    m.wall = now() - t0
    m.cpu = util.cpu_seconds("self") - cpu0
    m.sandbox_cpu = util.cpu_seconds(sb.pid) - sandbox_cpu0
    m.mem1 = util.rss()
    if m.n ~= SEATS then util.die("the seat stream gave %d seats, not %d", m.n, SEATS) end
    return m
end

local function median_of(runs, key)
    local list = {}
    for i, m in ipairs(runs) do list[i] = m[key] end
    return util.median(list)
end

-- ---- seats -----------------------------------------------------------------

util.section(("catalogue: client:seats{} over one event of %s seats, %d runs"):format(fmt(SEATS), RUNS))
local seats_catalog = util.catalog("seats", { seats = SEATS })
local sb = util.sandbox(seats_catalog)
local client = util.client(sb)

-- The arena is the event with a seated set (this also opens the channel).
local arena
util.walk(check(client:events{}), function(event)
    for _, set in ipairs(event.sets) do
        if set.with_seats and set.amount == SEATS then arena = event.id end
    end
end)
if not arena then util.die("no event with %d seats in %s", SEATS, seats_catalog) end

local runs = {}
for i = 1, RUNS do runs[i] = walk_seats(client, sb, arena) end
local first, last = runs[1], runs[#runs]
local peak, peak_early = 0, 0
for _, m in ipairs(runs) do
    peak = math.max(peak, m.peak - m.heap0)
    peak_early = math.max(peak_early, m.peak_early - m.heap0)
end
result(SECTION, "seats: seats/s (median run)", SEATS / median_of(runs, "wall"), "seats/s")
result(SECTION, "seats: wall time (median run)", median_of(runs, "wall"), "s")
result(SECTION, "seats: time to the first seat (median)", median_of(runs, "first") * 1000, "ms")
result(SECTION, "seats: client CPU per walk (median)", median_of(runs, "cpu"), "s")
result(SECTION, "seats: sandbox CPU per walk (median)", median_of(runs, "sandbox_cpu"), "s")
result(SECTION, "seats: Lua heap at the start", first.heap0, "kB")
result(SECTION, "seats: Lua heap peak above start, first 10%", peak_early, "kB")
result(SECTION, "seats: Lua heap peak above start, all seats", peak, "kB")
result(SECTION, "seats: RSS before the first walk", first.mem0.rss, "kB")
result(SECTION, "seats: RSS after the last walk", last.mem1.rss, "kB")
result(SECTION, "seats: VmHWM (peak RSS) after the walks", last.mem1.hwm, "kB")

-- For scale: the same seats kept in a list, as a non-streaming API would.
local function heap_holding_every_seat(event)
    collectgarbage("collect")
    local heap0 = util.heap_kb()
    local kept = {}
    util.walk(check(client:seats{ event = event }), function(seat, i) kept[i] = seat end)
    collectgarbage("collect")
    if #kept ~= SEATS then util.die("kept %d seats, not %d", #kept, SEATS) end
    return util.heap_kb() - heap0
end
result(SECTION, "seats: for scale, Lua heap holding every seat", heap_holding_every_seat(arena), "kB")
collectgarbage("collect")

client:close()
sb:stop()

-- ---- events ----------------------------------------------------------------

util.section(("catalogue: client:events{} over %s events, %d runs of 10 listings")
    :format(fmt(EVENTS + 1), RUNS))
local events_catalog = util.catalog("events", { seats = 50, stock = 10, events = EVENTS })
sb = util.sandbox(events_catalog)
client = util.client(sb)
util.walk(check(client:events{ ids = { arena } })) -- opens the channel

-- One sample is LISTINGS listings in a row: a single one is too short to time.
local LISTINGS = 10
local walls, peak_events = {}, 0
for i = 1, RUNS do
    collectgarbage("collect")
    local start = util.heap_kb()
    local top = start
    local t0 = now()
    for _ = 1, LISTINGS do
        local count = util.walk(check(client:events{}), function(event)
            if event.id == "" then util.die("an event without id") end
            local heap = collectgarbage("count")
            if heap > top then top = heap end
        end)
        if count ~= EVENTS + 1 then util.die("client:events{} gave %d events, not %d", count, EVENTS + 1) end
    end
    walls[i] = (now() - t0) / LISTINGS
    peak_events = math.max(peak_events, top - start)
end
result(SECTION, "events: events/s (median run)", (EVENTS + 1) / util.median(walls), "events/s")
result(SECTION, "events: wall time of one listing (median run)", util.median(walls) * 1000, "ms")
result(SECTION, "events: Lua heap peak above start (max)", peak_events, "kB")

client:close()
sb:stop()
