-- bench/nginx_app.lua: the handlers of bench/nginx.lua's nginx (one worker).
--
--   /order?c=nginx|blocking    flows.mixed_order: one unseated ticket, finished
--   /event?c=nginx|blocking    the arena event (Events, one message)
--   /slow?c=nginx|blocking     a call held by a slow upstream: a listing from a
--                              gRPC server that never answers (until the
--                              client's timeout), or (&rest=1) a PATCH the
--                              sandbox holds for BENCH_HOLD_MS
--   /big                       the 100,000-seat event's seats: how long the call
--                              and the loop over every seat take, and the Lua heap
--   /gc                        a full collection of the worker's Lua heap
--   /lag?start=1, /lag         the longest gap between runs of a 2 ms timer meanwhile
--   /ping                      nothing
--
-- c=nginx is the client of ticketscloud.nginx.new (REST as subrequests, the
-- catalogue in the thread pool); c=blocking a client of tc.new, whose calls
-- run in the worker.

-- luacheck: globals ngx

local cjson = require "cjson.safe"
local tc = require "ticketscloud"
local tc_nginx = require "ticketscloud.nginx"
local flows = require "ticketscloud.flows"
local core = require "ticketscloud.core"

local _M = {}

local settings
local clients = {}

local function client(name)
    local c = clients[name]
    if c then return c end
    local s = settings
    local err
    if name == "nginx" or name == "nginx_hang" then
        c, err = tc_nginx.new{ key = s.key, api = s.api, timeout = 5, location = "/_tc_api",
                               simple = name == "nginx" and s.simple or s.hang,
                               headers = { ["X-Sandbox-Delay"] = "tc_sandbox_delay" },
                               threads = s.threads }
    else
        c, err = tc.new{ key = s.key, api = s.api, timeout = 5,
                         simple = name == "blocking" and s.simple or s.hang }
    end
    if not c then error(tostring(err)) end
    clients[name] = c
    return c
end

function _M.init_worker()
    settings = {
        key = os.getenv("TICKETSCLOUD_KEY"), api = os.getenv("TICKETSCLOUD_API"),
        simple = os.getenv("TICKETSCLOUD_SIMPLE"), hang = os.getenv("BENCH_HANG"),
        arena = os.getenv("BENCH_ARENA"), floor = os.getenv("BENCH_FLOOR"),
        order = os.getenv("BENCH_ORDER"), hold = os.getenv("BENCH_HOLD_MS"),
        threads = tonumber(os.getenv("BENCH_THREADS")),
    }
end

local function answer(status, doc)
    ngx.status = status
    ngx.header["Content-Type"] = "application/json"
    ngx.say(cjson.encode(doc))
end

local function failed(err)
    return answer(502, { error = tostring(err) })
end

local function which()
    return ngx.var.arg_c == "blocking" and "blocking" or "nginx"
end

function _M.order()
    local order, err = flows.mixed_order(client(which()), {
        event = settings.arena, random = { [settings.floor] = 1 }, finish = true })
    if not order then return failed(err) end
    return answer(200, { id = order.id, status = order.status })
end

function _M.event()
    local events, err = client(which()):events{ ids = { settings.arena } }
    if not events then return failed(err) end
    local n = 0
    for _ in events do n = n + 1 end
    if events:error() or n ~= 1 then return failed(events:error() or "no event") end
    return answer(200, { n = n })
end

-- Held until the slow upstream lets go; its error (a timeout of the silent
-- gRPC server) is what is expected, so it answers 200 either way.
function _M.slow()
    local name = which()
    if ngx.var.arg_rest then
        local c = client(name)
        local _, err = c:patch_order(settings.order, { customer = { email = "slow@example.com" } },
                                     { headers = { ["X-Sandbox-Delay"] = settings.hold } })
        return answer(200, { error = err and tostring(err) })
    end
    local events, err = client(name .. "_hang"):events{}
    if events then
        for _ in events do end
        err = events:error()
    end
    return answer(200, { error = err and tostring(err) })
end

-- A full collection, asked for before /big so that it does not run in it.
function _M.gc()
    collectgarbage()
    collectgarbage()
    return answer(200, { heap = collectgarbage("count") })
end

function _M.big()
    local c = client("nginx")
    local heap0 = collectgarbage("count")
    ngx.update_time()
    local t0 = ngx.now()
    local times = {}
    local seats, err = c:seats{ event = settings.arena }
    if not seats then return failed(err) end
    ngx.update_time()
    local t1 = ngx.now()
    local heap1 = collectgarbage("count")
    local n, peak = 0, heap1
    for _ in seats do
        n = n + 1
        if n % 10000 == 0 then peak = math.max(peak, collectgarbage("count")) end
    end
    if seats:error() then return failed(seats:error()) end
    ngx.update_time()
    local t2 = ngx.now()
    times.call, times.loop = t1 - t0, t2 - t1
    return answer(200, { count = n, bytes = seats.bytes, call = times.call, loop = times.loop,
                         heap_before = heap0, heap_after_call = heap1, heap_peak = peak,
                         monotonic = core.now() })
end

-- The longest gap between two runs of a 2 ms timer: how long the worker's
-- event loop was kept from its timers (its own stalls, and the CPU other
-- processes took from it). /lag?start=1 starts measuring, /lag gives it.
local lag = { worst = 0 }
local function tick(premature)
    if premature or not lag.on then return end
    ngx.update_time()
    local t = ngx.now()
    if lag.last then lag.worst = math.max(lag.worst, t - lag.last) end
    lag.last = t
    ngx.timer.at(0.002, tick)
end

function _M.lag()
    if ngx.var.arg_start then
        lag.on, lag.worst, lag.last = true, 0, nil
        ngx.timer.at(0, tick)
        return answer(200, { started = true })
    end
    lag.on = false
    return answer(200, { worst = lag.worst })
end

function _M.ping()
    return answer(200, { pong = true })
end

return _M
