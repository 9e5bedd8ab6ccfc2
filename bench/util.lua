-- bench/util.lua: what every benchmark script shares: a monotonic clock,
-- memory and CPU readings, percentiles, catalogs, sandboxes, CPU pinning,
-- and the result lines that tools/bench gathers into its final table.
--
-- Benchmarks measure and print; they never compare a number with a
-- threshold. The only way a benchmark fails is an operation that errors
-- (util.check, util.die), so a broken build cannot pass for a slow one.
--
-- Environment (tools/bench sets it): BENCH_DIR, where catalogs and results
-- go; TC_SANDBOX, the sandbox binary; LUA_PATH/LUA_CPATH find the module.

local cjson = require "cjson"

local _M = {}

local getenv = os.getenv

_M.DIR = getenv("BENCH_DIR") or "build/bench-run"
_M.LUA = getenv("BENCH_LUA") or "lua5.4"

-- now() -> seconds from a monotonic clock (CLOCK_MONOTONIC via lua-system).
-- os.clock() is CPU time, not wall time, and socket.gettime() follows the
-- wall clock, which can step.
local system = require "system"
_M.now = system.monotime

-- Integer environment knobs (BENCH_ORDERS=100 and so on), for quick runs.
function _M.knob(name, default)
    local v = tonumber(getenv(name) or "")
    if v and v >= 1 then return math.floor(v) end
    return default
end

-- The sandboxes this process started, for die() to stop, and what else it
-- must stop (at_die).
local started = {}
local at_die = {}

-- Stops the run: a benchmark whose operation failed has no numbers to give.
-- Sandboxes are stopped first (LuaJIT runs no __gc of tables, so they would
-- outlive the process), and whatever at_die() was given.
function _M.die(fmt, ...)
    io.stderr:write("bench: ", fmt:format(...), "\n")
    for _, sb in ipairs(started) do pcall(sb.stop, sb) end
    for i = #at_die, 1, -1 do pcall(at_die[i]) end
    os.exit(1)
end

-- at_die(fn): die() calls fn before it exits (bench/peers.lua stops nginx).
function _M.at_die(fn)
    at_die[#at_die + 1] = fn
end

-- check(value, err, what): value, or the run stops with err (and what
-- failed, when given). check(client:seats{...}) reads like assert.
function _M.check(value, err, what)
    if value == nil or value == false then
        if what then _M.die("%s: %s", what, tostring(err)) end
        _M.die("%s", tostring(err))
    end
    return value
end

-- ---- memory and CPU ------------------------------------------------------

-- The Lua heap in kB (live objects plus the collector's not yet swept garbage).
function _M.heap_kb()
    return collectgarbage("count")
end

-- { rss = kB, hwm = kB } of this process (VmRSS, and VmHWM, its peak so far).
function _M.rss()
    local out = {}
    for line in io.lines("/proc/self/status") do
        local key, kb = line:match("^Vm(%u+):%s+(%d+) kB")
        if key == "RSS" then out.rss = tonumber(kb) end
        if key == "HWM" then out.hwm = tonumber(kb) end
    end
    return out
end

local clock_ticks
-- CPU seconds (user + system, all threads) a process has used so far;
-- pid is a number or "self".
function _M.cpu_seconds(pid)
    if not clock_ticks then
        local p = io.popen("getconf CLK_TCK")
        clock_ticks = tonumber(p:read("*l")) or 100
        p:close()
    end
    local f = io.open("/proc/" .. tostring(pid) .. "/stat")
    if not f then return 0 end
    local stat = f:read("*a")
    f:close()
    -- Fields after the command name "(...)": state is field 3, utime 14, stime 15.
    local after = stat:match("%) (.*)$")
    local fields = {}
    for v in after:gmatch("%S+") do fields[#fields + 1] = v end
    return (tonumber(fields[12]) + tonumber(fields[13])) / clock_ticks
end

-- ---- statistics ----------------------------------------------------------

-- Nearest-rank percentile q (0..1) of a list of numbers; sorts a copy.
function _M.percentiles(list, qs)
    local sorted = {}
    for i, v in ipairs(list) do sorted[i] = v end
    table.sort(sorted)
    local out = {}
    for _, q in ipairs(qs) do
        local rank = math.max(1, math.ceil(q * #sorted))
        out[#out + 1] = sorted[rank]
    end
    return out
end

function _M.median(list)
    return _M.percentiles(list, { 0.5 })[1]
end

-- ---- results -------------------------------------------------------------

-- A readable number: thousands grouped, decimals only where they matter.
function _M.fmt(v)
    if type(v) ~= "number" then return tostring(v) end
    local s
    if v == math.floor(v) or math.abs(v) >= 100 then
        s = ("%.0f"):format(v)
    elseif math.abs(v) >= 10 then
        s = ("%.1f"):format(v)
    else
        s = ("%.2f"):format(v)
    end
    local int, frac = s:match("^(-?%d+)(.*)$")
    int = int:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^(-?),", "%1")
    return int .. frac
end

local results
-- result(section, name, value, unit): prints one measurement and appends it
-- to BENCH_DIR/results.tsv for the final table.
function _M.result(section, name, value, unit)
    unit = unit or ""
    print(("  %-52s %14s %s"):format(name, _M.fmt(value), unit))
    if not results then
        results = assert(io.open(_M.DIR .. "/results.tsv", "a"))
    end
    results:write(section, "\t", name, "\t", tostring(value), "\t", unit, "\n")
    results:flush()
end

-- latencies(section, name, list): one result row of a list of durations in
-- seconds: "p50 / p90 / p99 / max" in milliseconds, and the count.
function _M.latencies(section, name, list)
    if #list == 0 then _M.die("%s: no samples", name) end
    local p = _M.percentiles(list, { 0.5, 0.9, 0.99, 1 })
    local value = ("%.2f / %.2f / %.2f / %.2f"):format(p[1] * 1000, p[2] * 1000, p[3] * 1000,
                                                       p[4] * 1000)
    _M.result(section, ("%s (n=%d)"):format(name, #list), value, "ms p50/p90/p99/max")
end

-- Prints a section heading.
function _M.section(title)
    print()
    print("== " .. title)
end

-- ---- catalogs and sandboxes ----------------------------------------------

-- Writes BENCH_DIR/<name>.json with tools/gen-catalog.lua and the given
-- options ({ seats = 100000, events = 20, ... }); returns its path.
function _M.catalog(name, opts)
    local path = _M.DIR .. "/" .. name .. ".json"
    local argv = { "lua5.4", "tools/gen-catalog.lua", "--out", path }
    for _, key in ipairs{ "seats", "per-row", "rows", "stock", "events" } do
        if opts[key] then
            argv[#argv + 1] = "--" .. key
            argv[#argv + 1] = tostring(opts[key])
        end
    end
    local ok = os.execute(table.concat(argv, " "))
    if ok ~= true and ok ~= 0 then _M.die("tools/gen-catalog.lua failed for %s", path) end
    return path
end

-- Reads and writes a JSON file (to add sandbox-only keys to a catalog).
function _M.read_json(path)
    local f = _M.check(io.open(path), "cannot open", path)
    local doc = cjson.decode(f:read("*a"))
    f:close()
    return doc
end

function _M.write_json(path, doc)
    local f = _M.check(io.open(path, "w"), "cannot write", path)
    f:write(cjson.encode(doc), "\n")
    f:close()
end

-- Starts a sandbox serving a catalog. Its log (one line per request) goes
-- to opts.log, by default BENCH_DIR/sandbox.log, emptied first; opts.bin is
-- the binary (by default TC_SANDBOX's).
function _M.sandbox(catalog, opts)
    opts = opts or {}
    local log = opts.log or (_M.DIR .. "/sandbox.log")
    if not opts.log then io.open(log, "w"):close() end
    local sb, err = require("ticketscloud.sandbox").start{
        catalog = catalog, log = log, expire = opts.expire or 900, seed = 1, bin = opts.bin }
    _M.check(sb, err, "starting tc-sandbox with " .. catalog)
    started[#started + 1] = sb
    return sb
end

-- A client of a sandbox. timeout is generous: a 100,000-seat stream is one call.
function _M.client(sb, opts)
    local tc = require "ticketscloud"
    local client, err = tc.new{ key = sb.key, api = sb.api, simple = sb.simple,
                                timeout = (opts and opts.timeout) or 120 }
    return _M.check(client, err, "tc.new")
end

-- Walks a catalogue stream to its end; returns the number of messages.
-- on_message(msg, n) is called for each one.
function _M.walk(stream, on_message)
    local n = 0
    for msg in stream do
        n = n + 1
        if on_message then on_message(msg, n) end
    end
    local err = stream:error()
    if err then _M.die("the stream ended with an error after %d messages: %s", n, tostring(err)) end
    return n
end

-- The arena of a generated catalog: the event with a seated set (with
-- vacant seats; of seats seats, when given) and an unseated one. Returns
-- the event id, its seated set and its unseated set, or stops the run.
function _M.arena(client, catalog, seats)
    local arena, seated, floor
    _M.walk(_M.check(client:events{}), function(event)
        for _, set in ipairs(event.sets) do
            if set.with_seats and set.amount_vacant > 0 and (not seats or set.amount == seats) then
                arena, seated = event.id, set.id
            end
        end
        if arena == event.id then
            for _, set in ipairs(event.sets) do
                if not set.with_seats then floor = set.id end
            end
        end
    end)
    if not (arena and floor) then _M.die("no event with seated and unseated sets in %s", catalog) end
    return arena, seated, floor
end

-- A finished order of the arena made by flows.mixed_order: its first vacant
-- seat and one ticket of the unseated set floor. Returns the order, or stops
-- the run; what names it in the error.
function _M.finished_order(client, arena, floor, what)
    local stream = _M.check(client:seats{ event = arena, status = "VACANT" })
    local seat = _M.check(stream(), stream:error(), "a vacant seat for " .. what)
    stream:close()
    local order, err = require("ticketscloud.flows").mixed_order(client, {
        event = arena, seats = { seat.ticket }, random = { [floor] = 1 }, finish = true })
    return _M.check(order, err, what)
end

-- ---- CPUs (taskset) ------------------------------------------------------

-- The CPUs process pid may run on, as taskset lists them ("0-1"), with the
-- first and the last of them as numbers; nil when taskset cannot tell.
function _M.cpus(pid)
    local p = io.popen(("taskset -c -p %d 2>&1"):format(pid))
    if not p then return nil end
    local list = p:read("*a"):match("list:%s*(%S+)")
    p:close()
    if not list then return nil end
    return list, tonumber(list:match("^(%d+)")), tonumber(list:match("(%d+)$"))
end

-- Puts every thread of process pid on cpus (a taskset list such as "1" or
-- "0-1"). Returns true, or nil and what taskset said.
function _M.place(pid, cpus)
    local p = io.popen(("taskset -a -p -c %s %d 2>&1"):format(cpus, pid))
    if not p then return nil, "cannot run taskset" end
    local out = p:read("*a")
    if not p:close() then return nil, out end
    return true
end

-- ---- wrk -----------------------------------------------------------------

-- Milliseconds of a wrk duration such as "812.00us", "1.20ms" or "2.01s".
local WRK_UNITS = { us = 0.001, ms = 1, s = 1000, m = 60000 }
function _M.wrk_ms(text)
    local v, unit = text:match("^([%d.]+)(%a+)$")
    if not v or not WRK_UNITS[unit] then _M.die("wrk: cannot read the duration %q", text) end
    return tonumber(v) * WRK_UNITS[unit]
end

return _M
