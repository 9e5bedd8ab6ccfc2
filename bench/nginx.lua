-- bench/nginx.lua: the client inside nginx (Debian's nginx with
-- libnginx-mod-http-lua, one worker, thread_pool default threads=16),
-- against tc-sandbox. `make bench-nginx` runs it (BENCH_ONLY=nginx
-- tools/bench), after building the LuaJIT module it loads.
--
-- 1. wrk (2 threads, 8 connections, BENCH_WRK_SECONDS = 5 s each, --latency)
--    against /order (flows.mixed_order: one unseated ticket, created and
--    finished: 2 REST requests) and /event (Events, the one arena event),
--    each through ticketscloud.nginx.new and through a tc.new client (its
--    calls run in the worker), without and with a slow upstream holding
--    calls: 4 more connections that keep a call held all along, half a
--    listing from a gRPC server that never answers (until the client's
--    timeout, 5 s), half a PATCH the sandbox holds BENCH_HOLD_MS (1000 ms).
--    Reported: requests/s, latency p50 / p99 / max, and the errors of the
--    blocking runs (wrk's timeouts: a request waiting more than 10 s).
-- 2. The 100,000-seat event through ticketscloud.nginx.new: how long the
--    seats call takes (the thread's listing and the copy to the worker),
--    how long a loop over every seat takes in the worker, the packed size,
--    the worker's Lua heap and resident memory, and how long the worker
--    was kept from other work meanwhile: the longest wait of a ping sent
--    every 2 ms from here, and the longest gap between two runs of a 2 ms
--    timer in the worker. The same two over an idle second show what the
--    machine alone (other processes) does to them.
--
-- Needs nginx, its Lua module, wrk and build/luajit/ticketscloud/core.so.

local socket = require "socket"
local cjson = require "cjson"
local util = require "bench.util"
local helper = require "spec.helpers.nginx"

local check, die, now, result = util.check, util.die, util.now, util.result

local SECONDS = util.knob("BENCH_WRK_SECONDS", 5)
local HOLD_MS = util.knob("BENCH_HOLD_MS", 1000)
local SEATS = util.knob("BENCH_SEATS", 100000)
local THREADS = 16
local SECTION = "nginx"
local WRK = "/usr/bin/wrk"
local LUAJIT_CPATH = os.getenv("TC_LUAJIT_CPATH") or "build/luajit/?.so"

local why = helper.missing() or (not helper.exists(WRK) and "wrk is not installed")
if not why and not helper.exists(LUAJIT_CPATH:gsub("%?", "ticketscloud/core")) then
    why = LUAJIT_CPATH:gsub("%?", "ticketscloud/core") .. " is missing: make LUA=luajit module"
end
if why then die("nginx: %s", why) end

local function quote(s)
    return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- ---- the sandbox and nginx -------------------------------------------------

-- The arena of SEATS seats, and a dance floor with stock for every order.
local catalog = util.catalog("nginx", { seats = SEATS, stock = 200000, events = 20 })
local sb = util.sandbox(catalog, { log = "/dev/null" })
local client = util.client(sb)

local arena, _, floor = util.arena(client, catalog)
-- The order the slow PATCHes change: reserved, left so.
local held_order = check(client:create_order{ event = arena, random = { [floor] = 1 } }).id

-- A gRPC server that never answers: it listens, and nothing accepts.
local hang = check(socket.bind("127.0.0.1", 0))
local _, hang_port = hang:getsockname()

local CONF = [[
load_module @MODULES@/ndk_http_module.so;
load_module @MODULES@/ngx_http_lua_module.so;
worker_processes 1;
pid logs/nginx.pid;
error_log logs/error.log warn;
thread_pool default threads=@THREADS@;
env TICKETSCLOUD_KEY;
env TICKETSCLOUD_API;
env TICKETSCLOUD_SIMPLE;
env BENCH_HANG;
env BENCH_ARENA;
env BENCH_FLOOR;
env BENCH_ORDER;
env BENCH_HOLD_MS;
env BENCH_THREADS;
events { worker_connections 1024; }
http {
    access_log off;
@TEMP_PATHS@
    lua_package_path "@LUA_PATH@;;";
    lua_package_cpath "@LUA_CPATH@;;";
    init_by_lua_block { require "bench.nginx_app" }
    init_worker_by_lua_block { require("bench.nginx_app").init_worker() }
    upstream tc_api {
        server @API_SERVER@;
        keepalive 32;
    }
    server {
        listen 127.0.0.1:@PORT@ backlog=4096;
        location = /ping { content_by_lua_block { require("bench.nginx_app").ping() } }
        location = /event { content_by_lua_block { require("bench.nginx_app").event() } }
        location = /big { content_by_lua_block { require("bench.nginx_app").big() } }
        location = /gc { content_by_lua_block { require("bench.nginx_app").gc() } }
        location = /lag { content_by_lua_block { require("bench.nginx_app").lag() } }
        location = /order {
            set $tc_auth "";
            set $tc_sandbox_delay "";
            content_by_lua_block { require("bench.nginx_app").order() }
        }
        location = /slow {
            set $tc_auth "";
            set $tc_sandbox_delay "";
            content_by_lua_block { require("bench.nginx_app").slow() }
        }
@API_LOCATION@
    }
}
]]

local values = {
    MODULES = helper.module_dir(), THREADS = tostring(THREADS),
    LUA_PATH = helper.absolute("lua/?.lua;lua/?/init.lua;./?.lua"),
    LUA_CPATH = helper.absolute(LUAJIT_CPATH), API_SERVER = sb.api:match("^%a+://([^/]+)"),
    TEMP_PATHS = helper.TEMP_PATHS, API_LOCATION = helper.API_LOCATION,
}
local conf = CONF:gsub("@([%u_]+)@", function(name) return values[name] end)
local nginx = helper.start_or_fail(conf, { env = {
    TICKETSCLOUD_KEY = sb.key, TICKETSCLOUD_API = sb.api, TICKETSCLOUD_SIMPLE = sb.simple,
    BENCH_HANG = "http://127.0.0.1:" .. hang_port, BENCH_ARENA = arena, BENCH_FLOOR = floor,
    BENCH_ORDER = held_order, BENCH_HOLD_MS = tostring(HOLD_MS), BENCH_THREADS = tostring(THREADS),
} })
local worker = nginx:workers()[1]

local function finish()
    nginx:stop("QUIT", 15)
    nginx:remove()
    hang:close()
end

-- ---- wrk -------------------------------------------------------------------

local ms = util.wrk_ms

-- Starts wrk in the background; returns a function that waits for it and
-- gives its output.
local function start_wrk(path, connections, seconds, extra)
    local cmd = ("%s -t2 -c%d -d%ds --timeout 10s --latency %s %s 2>&1"):format(
        WRK, connections, seconds, extra or "", quote(nginx.base .. path))
    local p = check(io.popen(cmd), "cannot run", "wrk")
    return function()
        local out = p:read("a")
        p:close()
        return out
    end
end

-- A wrk script that alternates between paths.
local function alternating(paths)
    local script = util.DIR .. "/wrk-alternate.lua"
    local f = check(io.open(script, "w"), "cannot write", script)
    f:write("local paths = { '", table.concat(paths, "', '"), "' }\n", [[
        local i = 0
        request = function()
            i = i + 1
            return wrk.format("GET", paths[i % #paths + 1])
        end
    ]])
    f:close()
    return "-s " .. quote(script)
end

-- Waits until the worker answers a ping at once again (a blocking client's
-- held call may outlast the wrk that made it).
local function settle()
    local deadline = now() + 30
    while now() < deadline do
        local t0 = now()
        nginx:get("/ping")
        if now() - t0 < 0.05 then return end
    end
    die("the worker stays blocked")
end

-- One measured run: wrk on path, with (slow) 4 more connections keeping
-- calls held by the slow upstream all along.
local function run(name, unit, path, which, slow)
    local background
    if slow then
        background = start_wrk("/slow?c=" .. which, 4, SECONDS + 1,
                               alternating{ "/slow?c=" .. which, "/slow?c=" .. which .. "&rest=1" })
        socket.sleep(0.5) -- the held calls are under way
    end
    local cpu0 = util.cpu_seconds(worker)
    local out = start_wrk(path .. "?c=" .. which, 8, SECONDS)()
    local cpu = util.cpu_seconds(worker) - cpu0
    local held
    if background then
        held = tonumber(background():match("(%d+) requests in")) or 0
    end
    settle()
    local rate = out:match("Requests/sec:%s+([%d.]+)")
    local total = tonumber(out:match("(%d+) requests in"))
    if not rate or not total then die("wrk %s failed:\n%s", path, out) end
    local bad = tonumber(out:match("Non%-2xx or 3xx responses: (%d+)")) or 0
    local timeouts = tonumber(out:match("Socket errors:.-timeout (%d+)")) or 0
    local errors = out:match("Socket errors: ([^\n]+)")
    if which == "nginx" and (bad > 0 or errors) then
        die("wrk %s (%s): %d answers were not 2xx, socket errors: %s\n%s", path, which, bad,
            tostring(errors), out)
    end
    local pct, max = {}, nil
    for line in out:gmatch("[^\n]+") do
        local q, v = line:match("^%s+(%d+)%%%s+(%S+)%s*$")
        if q then pct[q] = v end
        max = max or line:match("^%s+Latency%s+%S+%s+%S+%s+(%S+)")
    end
    local label = ("%s, %s%s"):format(name, which == "nginx" and "nginx.new" or "tc.new",
                                      slow and ", slow upstream" or "")
    -- wrk's own output, for a closer look: BENCH_DIR/wrk-<path>-<client>[-slow].txt
    local saved = io.open(("%s/wrk-%s-%s%s.txt"):format(util.DIR, path:sub(2), which,
                                                        slow and "-slow" or ""), "w")
    if saved then
        saved:write(out)
        saved:close()
    end
    result(SECTION, label .. ": " .. unit, tonumber(rate), unit)
    if total > 0 and pct["50"] and pct["99"] and max then
        result(SECTION, label .. ": latency", ("%.2f / %.2f / %.2f"):format(
            ms(pct["50"]), ms(pct["99"]), ms(max)), "ms p50/p99/max")
    else
        result(SECTION, label .. ": latency", ("none answered in %d s"):format(SECONDS), "")
    end
    if which ~= "nginx" and timeouts + bad > 0 then
        result(SECTION, label .. ": errors (no answer in 10 s, not 2xx)", timeouts + bad, "")
    end
    if held then result(SECTION, label .. ": held calls ended meanwhile", held, "") end
    if total >= 100 then
        result(SECTION, label .. ": worker CPU per request", cpu / total * 1e6, "us")
    end
end

util.section(("nginx: wrk, 2 threads, 8 connections, %d s per run, 1 worker, %d pool threads")
    :format(SECONDS, THREADS))

-- What else the machine was doing: these numbers move with it.
local loadavg = helper.read_file("/proc/loadavg"):match("^(%S+)")
result(SECTION, "load average as the runs start (1 min)", tonumber(loadavg), "")

-- Warm-up: every client and the pool's clients made, connections open.
start_wrk("/order?c=nginx", 8, 1)()
start_wrk("/event?c=nginx", 8, 1)()

for _, which in ipairs{ "nginx", "blocking" } do
    for _, slow in ipairs{ false, true } do
        run("orders", "orders/s", "/order", which, slow)
        run("reads", "reads/s", "/event", which, slow)
    end
end

-- ---- the 100,000-seat event -------------------------------------------------

util.section(("nginx: the %s-seat event through ticketscloud.nginx.new"):format(util.fmt(SEATS)))

-- Pings the worker every 2 ms from a coroutine of its own socket loop while
-- the /big request runs; the longest wait of a ping is the worker's longest
-- stall.
local function big_with_pings()
    nginx:get("/gc")
    nginx:get("/lag?start=1")
    local c = check(socket.connect("127.0.0.1", nginx.port))
    c:send("GET /big HTTP/1.0\r\nHost: x\r\n\r\n")
    c:settimeout(0)
    local worst, pings = 0, 0
    local chunks = {}
    local t_end = now() + 120
    while now() < t_end do
        local data, err, partial = c:receive(65536)
        local got = data or partial
        if got and #got > 0 then chunks[#chunks + 1] = got end
        if err == "closed" then break end
        local t0 = now()
        local status = nginx:get("/ping")
        if status ~= 200 then die("ping: %s", tostring(status)) end
        worst = math.max(worst, now() - t0)
        pings = pings + 1
        socket.sleep(0.002)
    end
    c:close()
    local _, lag = nginx:get("/lag")
    local body = table.concat(chunks):match("\r\n\r\n(.*)$")
    return check(body and cjson.decode(body), "no answer", "/big"), worst, pings, lag.worst
end

local function rss()
    local status = helper.read_file("/proc/" .. worker .. "/status")
    return tonumber(status:match("VmRSS:%s*(%d+)")), tonumber(status:match("VmHWM:%s*(%d+)"))
end

-- The same measures over an idle second: what the machine alone does to them.
local function idle(seconds)
    nginx:get("/lag?start=1")
    local worst, t_end = 0, now() + seconds
    while now() < t_end do
        local t0 = now()
        nginx:get("/ping")
        worst = math.max(worst, now() - t0)
        socket.sleep(0.002)
    end
    local _, lag = nginx:get("/lag")
    return worst, lag.worst
end

local idle_ping, idle_lag = idle(1)
local rss0 = rss()
local big, worst, pings, lag = big_with_pings()
if big.error then die("/big: %s", big.error) end
if big.count ~= SEATS then die("/big listed %d seats, not %d", big.count, SEATS) end
local rss1, hwm1 = rss()
local second, worst2, _, lag2 = big_with_pings()
result(SECTION, "100k seats: the call (thread's listing, copy to the worker)",
       math.min(big.call, second.call) * 1000, "ms")
result(SECTION, "100k seats: a loop over all in the worker (decoding)",
       math.min(big.loop, second.loop) * 1000, "ms")
result(SECTION, "100k seats: the packed listing", big.bytes / 1e6, "MB")
result(SECTION, "100k seats: worker Lua heap, the listing held",
       (big.heap_after_call - big.heap_before) / 1024, "MB")
result(SECTION, "100k seats: worker Lua heap, peak of a loop keeping none",
       (big.heap_peak - big.heap_before) / 1024, "MB")
result(SECTION, "100k seats: worker RSS growth, first (VmHWM - VmRSS)", (hwm1 - rss0) / 1024, "MB")
result(SECTION, "100k seats: worker RSS after two, above before", (rss() - rss0) / 1024, "MB")
result(SECTION, ("100k seats: longest wait of a ping (%d pings)"):format(pings),
       math.max(worst, worst2) * 1000, "ms")
result(SECTION, "100k seats: longest gap of the worker's 2 ms timer",
       math.max(lag, lag2) * 1000, "ms")
result(SECTION, "idle worker, 1 s: longest wait of a ping", idle_ping * 1000, "ms")
result(SECTION, "idle worker, 1 s: longest gap of its 2 ms timer", idle_lag * 1000, "ms")
local _ = rss1

finish()
sb:stop()
