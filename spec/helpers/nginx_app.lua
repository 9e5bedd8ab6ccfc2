-- The handlers of spec/nginx_threads_spec.lua's nginx: the clients of
-- ticketscloud.nginx.new in one worker, called from every context.
--
--   /ping                          answers at once: how fast the worker is
--   /seats?event=&pool=&hang=1&limit=&close=1
--                                  a Seats listing; pool=tiny uses the one-thread pool;
--                                  hang=1 the gRPC server that never answers
--   /patch?order=&delay=&via=pool  an order change held delay ms by the sandbox
--   /promo?event=&code=&via=pool   a promocode check
--   /timer, /timer-result          a timer reads the catalogue into the shared
--                                  dictionary, places an order and cancels it
--   /phases, /phases-result        calls where nginx cannot wait: header filter, log
--
-- Every answer is JSON with "pid"; an error is { error = { kind, message, sent, ... } }
-- with status 502, except the error that ended a listing, which comes with what it listed.

-- luacheck: globals ngx

local cjson = require "cjson.safe"
local tc_nginx = require "ticketscloud.nginx"

local _M = {}

local EVENT = "5d7134962110d30a34e95b96" -- Slipknot
local FAN = "5d7135112110d30a34e97e2d"   -- unseated, 5600.00 + 10 %

local settings
local clients = {} -- by name, made on first use

local function fields(err)
    if type(err) ~= "table" then return { kind = "raised", message = tostring(err) } end
    return { kind = err.kind, status = err.status, code = err.code, sent = err.sent,
             message = tostring(err) }
end

local function send(doc, status)
    doc.pid = ngx.worker.pid()
    ngx.status = status or 200
    ngx.header["Content-Type"] = "application/json"
    ngx.say(cjson.encode(doc))
end

local function fail(err)
    return send({ error = fields(err) }, 502)
end

-- The clients: "main" (REST by subrequests), "pooled" (REST in the pool),
-- "hang" (gRPC to a server that never answers), "tiny" and "tiny_hang" (the
-- pool "tiny" of one thread).
local KINDS = {
    main = {},
    pooled = { no_location = true },
    hang = { hang = true },
    tiny = { pool = "tiny" },
    tiny_hang = { pool = "tiny", hang = true },
}

local function client(name)
    local c = clients[name]
    if c then return c end
    local kind = KINDS[name]
    local err
    c, err = tc_nginx.new{
        key = settings.key, api = settings.api,
        simple = kind.hang and settings.hang or settings.simple,
        timeout = kind.hang and 2 or 5,
        location = not kind.no_location and "/_tc_api" or nil,
        headers = { ["X-Sandbox-Delay"] = "tc_sandbox_delay" },
        thread_pool = kind.pool, threads = kind.pool and 1 or nil,
        retry = { attempts = 3, base = 0.05, max = 0.1 },
    }
    if not c then return nil, err end
    clients[name] = c
    return c
end

-- What the calls made where nginx cannot wait gave, by phase.
local function record(phase, results)
    ngx.shared.tc:set("phase:" .. phase, cjson.encode(results))
end

local function try_everything()
    local c = assert(client("main"))
    local out = {}
    local ok, res, err = pcall(c.seats, c, { event = EVENT })
    out.seats = ok and (res and "a listing" or fields(err)) or { kind = "raised", message = res }
    ok, res, err = pcall(c.check_promocode, c, { event = EVENT, code = "PROMO10" })
    out.promo = ok and (res and "a promocode" or fields(err)) or { kind = "raised", message = res }
    ok, res, err = pcall(c.create_order, c, { event = EVENT, random = { [FAN] = 1 } })
    out.order = ok and (res and "an order" or fields(err)) or { kind = "raised", message = res }
    return out
end

function _M.init_worker()
    settings = {
        key = os.getenv("TICKETSCLOUD_KEY"), api = os.getenv("TICKETSCLOUD_API"),
        simple = os.getenv("TICKETSCLOUD_SIMPLE"), hang = os.getenv("TC_HANG"),
    }
    record("init_worker", try_everything())
end

function _M.ping()
    return send({ pong = true })
end

local function list(v)
    if v == nil then return nil end
    return type(v) == "table" and v or { v }
end

function _M.seats()
    local args = ngx.req.get_uri_args()
    local name = (args.pool == "tiny" and "tiny" or "") .. (args.hang and "_hang" or "")
    name = ({ [""] = "main", _hang = "hang", tiny = "tiny", tiny_hang = "tiny_hang" })[name]
    local c, err = client(name)
    if not c then return fail(err) end
    local started = ngx.now()
    local seats
    seats, err = c:seats{ event = args.event or EVENT, sets = list(args.set), status = args.status }
    if not seats then return fail(err) end
    local limit = tonumber(args.limit)
    local out, n = {}, 0
    for seat in seats do
        n = n + 1
        if #out < 3 then out[#out + 1] = { ticket = seat.ticket, status = seat.status } end
        if limit and n >= limit then
            seats:close() -- a handler that stops early
            break
        end
    end
    ngx.update_time()
    local e = seats:error()
    return send({ count = seats.count, bytes = seats.bytes, read = n, first = out,
                  error = e and fields(e), seconds = ngx.now() - started })
end

function _M.patch()
    local args = ngx.req.get_uri_args()
    local c, err = client(args.via == "pool" and "pooled" or "main")
    if not c then return fail(err) end
    local started = ngx.now()
    local order
    order, err = c:patch_order(args.order, { customer = { email = "slow@example.com" } },
                               { headers = args.delay and { ["X-Sandbox-Delay"] = args.delay } })
    ngx.update_time()
    if not order then return fail(err) end
    return send({ status = order.status, seconds = ngx.now() - started, stats = c:stats() })
end

function _M.promo()
    local args = ngx.req.get_uri_args()
    local c, err = client(args.via == "pool" and "pooled" or "main")
    if not c then return fail(err) end
    local promo
    promo, err = c:check_promocode{ event = args.event or EVENT, code = args.code or "PROMO10" }
    if not promo then return fail(err) end
    return send({ discount = promo.discount, stats = c:stats() })
end

-- The timer's job, as a shop would refresh its cache: the events and the
-- vacant seats of one into the shared dictionary, then an order placed
-- and cancelled. Its steps go to the dictionary as it goes.
local function job(premature)
    if premature then return end
    local dict = ngx.shared.tc
    local result = { phase = ngx.get_phase() }
    local c, err = client("main")
    if not c then
        result.error = fields(err)
        return dict:set("timer", cjson.encode(result))
    end
    local before = c:stats()
    local events
    events, err = c:events{ ids = { EVENT } }
    if events then
        local list_of = {}
        for e in events do list_of[#list_of + 1] = { id = e.id, name = e.name } end
        err = events:error()
        dict:set("events", cjson.encode(list_of))
        result.events = #list_of
    end
    if not err then
        local seats
        seats, err = c:seats{ event = EVENT, status = "VACANT" }
        if seats then
            local n = 0
            for _ in seats do n = n + 1 end
            err = seats:error()
            dict:set("vacant_seats", n)
            result.vacant = n
        end
    end
    if not err then
        local order
        order, err = c:create_order{ event = EVENT, random = { [FAN] = 1 } }
        if order then
            result.order, result.created = order.id, order.status
            local ok
            ok, err = order:cancel()
            if ok then result.cancelled = order.status end
        end
    end
    result.error = err and fields(err)
    local after = c:stats()
    result.stats = { subrequests = after.subrequests - before.subrequests,
                     pooled = after.pooled - before.pooled }
    dict:set("timer", cjson.encode(result))
end

function _M.timer()
    ngx.shared.tc:delete("timer")
    local ok, err = ngx.timer.at(0, job)
    return send({ started = ok, error = err })
end

function _M.timer_result()
    local text = ngx.shared.tc:get("timer")
    return send({ result = text and cjson.decode(text), events = ngx.shared.tc:get("events"),
                  vacant = ngx.shared.tc:get("vacant_seats") })
end

function _M.phases()
    return send({ ok = true })
end

function _M.header_filter()
    record("header_filter", try_everything())
end

function _M.log()
    record("log", try_everything())
end

function _M.phases_result()
    local out = {}
    for _, phase in ipairs{ "init_worker", "header_filter", "log" } do
        local text = ngx.shared.tc:get("phase:" .. phase)
        out[phase] = text and cjson.decode(text)
    end
    return send(out)
end

return _M
