-- nginx_shop: the Lua side of examples/nginx.conf, a shop's endpoints on
-- lua-ticketscloud inside nginx (docs/openresty.md).
--
--   GET  /tc/events
--        the events, from the shared dictionary a timer of worker 0 refreshes
--        (tc-simple Events) every REFRESH seconds: no call to the API
--   GET  /tc/seats?event=ID[&seat=TICKET...][&set=SET...][&status=VACANT][&limit=N]
--        an event's seats (Seats), read in nginx's thread pool
--   POST /tc/order   {"event": ID, "seats": [TICKET...], "random": {SET: n},
--                     "first": "seats" | "random", "customer": {...}, "finish": true}
--        flows.mixed_order, its REST requests sent as subrequests; answers the
--        order and the client's counts
--   GET  /tc/promocode?event=ID&code=CODE
--        the promocode check
--   GET  /tc/key-check  (header X-Ticketscloud-Key, else the configured key)
--        whether the REST and the gRPC API accept the key
--
-- Every answer is JSON and carries "pid", the worker that served it. A
-- failure answers { error = { kind, status, code, messages, message } }.
--
-- One client per worker (ticketscloud.nginx.new), made on first use in that
-- worker: never in the master (init_by_lua), whose memory the workers
-- inherit when it forks. None of its calls blocks the worker: its REST
-- requests go through nginx (the internal location /_tc_api, which nginx
-- proxies to the API while the worker serves other requests), and its
-- catalogue calls and its REST requests in timers run in nginx's thread pool.

-- luacheck: globals ngx

local tc = require "ticketscloud"
local tc_nginx = require "ticketscloud.nginx"
local flows = require "ticketscloud.flows"
local cjson = require "cjson.safe"

local ipairs = ipairs
local pairs = pairs
local os_getenv = os.getenv
local tonumber = tonumber
local tostring = tostring
local type = type

local _M = { _VERSION = "0.1.0" }

local TIMEOUT = 5         -- seconds per REST request, and per whole gRPC listing
local DEFAULT_LIMIT = 100 -- seats per answer
local REFRESH = 60        -- seconds between two readings of the events
local THREADS = 8         -- the threads of nginx.conf's thread_pool default
local KEY_HEADER = "X-Ticketscloud-Key"
local API_LOCATION = "/_tc_api" -- the internal location of examples/nginx.conf
local CACHE = "tc_catalogue"    -- the lua_shared_dict of examples/nginx.conf

-- Per worker: the settings read at worker start, and the client.
local settings
local client

-- A client with this key: REST as subrequests to API_LOCATION (whose proxy
-- timeouts are TIMEOUT too), the catalogue in the thread pool.
local function new_client(key)
    return tc_nginx.new{ key = key, api = settings.api, simple = settings.simple,
                         timeout = settings.timeout, location = API_LOCATION,
                         threads = THREADS }
end

-- This worker's client, made on first use.
local function get_client()
    if not client then
        if type(settings.key) ~= "string" or settings.key == "" then
            return nil, tc.error{ kind = "invalid", messages = { "key: the API key is required" } }
        end
        local c, err = new_client(settings.key)
        if not c then return nil, err end
        client = c
    end
    return client
end

-- What a shop shows of an event. (The vacant count of an event is
-- tickets_amount_vacant; amount_vacant is a set's.)
local function event_fields(e)
    local sets = {}
    for _, set in ipairs(e.sets) do
        sets[#sets + 1] = { id = set.id, name = set.name, with_seats = set.with_seats,
                            amount = set.amount, amount_vacant = set.amount_vacant }
    end
    local lifetime = e.lifetime or {}
    return { id = e.id, name = e.name, status = e.status, start = lifetime.start,
             finish = lifetime.finish, tickets_amount = e.tickets_amount,
             tickets_amount_vacant = e.tickets_amount_vacant, sets = sets }
end

-- The timer of worker 0: reads every event (in the thread pool; a timer
-- has no subrequests and must not block either) into the shared
-- dictionary, which every worker's /tc/events reads. A failed reading
-- leaves the last one in place.
local function refresh(premature)
    if premature then return end -- the worker is exiting
    local c, err = get_client()
    local events
    if c then events, err = c:events{} end
    local list = {}
    if events then
        for e in events do list[#list + 1] = event_fields(e) end
        err = events:error()
    end
    if err then
        return ngx.log(ngx.ERR, "ticketscloud: the events were not refreshed: ", tostring(err))
    end
    local dict = ngx.shared[CACHE]
    dict:set("events", cjson.encode(list))
    dict:set("refreshed_at", ngx.now())
end

-- init_worker_by_lua: the settings and, in worker 0, the refreshing timer.
-- No client yet: a wrong setting then shows in the answers, not only in
-- the error log.
function _M.init_worker()
    -- Each worker seeds its own generator, so that two workers do not retry
    -- a conflicting order change in lockstep.
    math.randomseed(ngx.now() * 1000 + ngx.worker.pid())
    settings = {
        key = os_getenv("TICKETSCLOUD_KEY"),
        api = os_getenv("TICKETSCLOUD_API"),       -- nil: the real service
        simple = os_getenv("TICKETSCLOUD_SIMPLE"), -- nil: the real service
        timeout = TIMEOUT,
    }
    if ngx.worker.id() == 0 then
        local ok, err = ngx.timer.at(0, refresh)
        if ok then ok, err = ngx.timer.every(REFRESH, refresh) end
        if not ok then ngx.log(ngx.ERR, "ticketscloud: no refreshing timer: ", err) end
    end
end

-- exit_worker_by_lua: closes this worker's client. (The clients of the
-- pool's threads are closed by nginx as it closes their Lua states.)
function _M.exit_worker()
    if client then
        client:close()
        client = nil
        ngx.log(ngx.NOTICE, "ticketscloud: worker ", ngx.worker.pid(), " closed its client")
    end
end

local HTTP_STATUS = { invalid = 400, not_found = 404, conflict = 409, expired = 410,
                      timeout = 504 }

local function send(status, doc)
    doc.pid = ngx.worker.pid()
    local body = cjson.encode(doc)
    ngx.status = status
    ngx.header["Content-Type"] = "application/json"
    ngx.say(body)
    return ngx.exit(ngx.HTTP_OK)
end

-- The fields of an error, for a JSON answer (tostring(err) reads well and
-- never contains the key).
local function error_fields(err)
    if type(err) ~= "table" then return { kind = "internal", message = tostring(err) } end
    return { kind = err.kind, status = err.status, code = err.code,
             messages = err.messages, message = tostring(err) }
end

local function fail(err)
    local fields = error_fields(err)
    ngx.log(ngx.ERR, fields.message)
    if type(err) == "table" and type(err.order) == "table" then
        fields.order = { id = err.order.id, status = err.order.status }
    end
    local status = HTTP_STATUS[fields.kind] or 502
    if fields.kind == "api" and fields.status == 400 then status = 422 end -- refused data
    return send(status, { error = fields })
end

local function bad_request(message)
    return send(400, { error = { kind = "invalid", messages = { message }, message = message } })
end

-- A query argument as a list (absent: nil; given once: one item).
local function list(v)
    if v == nil or v == true then return nil end
    if type(v) == "table" then return v end
    return { v }
end

-- GET /tc/events: the events as the timer last read them.
function _M.events()
    local dict = ngx.shared[CACHE]
    local text, refreshed = dict:get("events"), dict:get("refreshed_at")
    if not text then
        ngx.header["Retry-After"] = "1"
        return send(503, { error = { kind = "unavailable",
                                     message = "the events have not been read yet" } })
    end
    return send(200, { events = cjson.decode(text), refreshed_at = refreshed,
                       age = ngx.now() - refreshed })
end

-- GET /tc/seats: an event's seats, read whole in the thread pool.
function _M.seats()
    local args = ngx.req.get_uri_args()
    local event = args.event
    if type(event) ~= "string" then return bad_request("event: one event id expected") end
    local limit = tonumber(args.limit) or DEFAULT_LIMIT
    local c, err = get_client()
    if not c then return fail(err) end
    local seats
    seats, err = c:seats{ event = event, tickets = list(args.seat), sets = list(args.set),
                          status = args.status }
    if not seats then return fail(err) end
    local out = {}
    for seat in seats do
        if #out >= limit then
            seats:close() -- the rest of the listing is dropped; nothing runs in the pool
            break
        end
        out[#out + 1] = { ticket = seat.ticket, set = seat.set, sector = seat.sector,
                          row = seat.row, number = seat.number, status = seat.status }
    end
    if seats:error() then return fail(seats:error()) end
    return send(200, { seats = out, count = seats.count })
end

-- What a shop shows of an order.
local function order_fields(order)
    local tickets = {}
    for _, t in ipairs(order.tickets or {}) do
        tickets[#tickets + 1] = { id = t.id, set = t.set, seat = t.seat, serial = t.serial,
                                  number = t.number, full = t.full, barcode = t.barcode }
    end
    return { id = order.id, event = order.event, status = order.status, number = order.number,
             expired_after = order.expired_after, values = order.values, tickets = tickets }
end

-- The JSON types of the order's fields. The flow raises on a wrong type (a
-- caller's mistake); here it is the shopper's data, so a bad request.
local ORDER_FIELDS = { seats = "table", random = "table", customer = "table", first = "string" }

-- POST /tc/order
function _M.order()
    if ngx.req.get_method() ~= "POST" then
        ngx.header["Allow"] = "POST"
        return send(405, { error = { kind = "invalid", message = "POST a JSON order" } })
    end
    ngx.req.read_body()
    local args = cjson.decode(ngx.req.get_body_data() or "")
    if type(args) ~= "table" then return bad_request("the body must be a JSON object") end
    for name, expected in pairs(ORDER_FIELDS) do
        if args[name] == cjson.null then args[name] = nil end
        if args[name] ~= nil and type(args[name]) ~= expected then
            return bad_request(name .. ": a JSON " .. (expected == "table" and "object or array"
                                                           or expected) .. " expected")
        end
    end
    local c, err = get_client()
    if not c then return fail(err) end

    local order
    order, err = flows.mixed_order(c, {
        event = args.event,
        seats = args.seats,
        random = args.random,
        first = args.first,
        customer = args.customer,
        finish = args.finish == true,
    })
    if not order then return fail(err) end
    return send(200, { order = order_fields(order), stats = c:stats() })
end

-- Whether one API accepts the key: ok = true, or the error's fields.
local function verdict(stream, err)
    if stream then
        local _
        _, err = stream()
        if stream.close then stream:close() end
    end
    if err then return { ok = false, error = error_fields(err) } end
    return { ok = true }
end

-- GET /tc/key-check: a throwaway client with the key under test. (The
-- threads of the pool keep a few clients each, of the keys they served
-- last.)
function _M.key_check()
    local key = ngx.req.get_headers()[KEY_HEADER] or settings.key
    if type(key) ~= "string" then return bad_request(KEY_HEADER .. ": one key expected") end
    local c, err = new_client(key)
    if not c then return fail(err) end
    local result = {
        rest = verdict(c:orders{ page_size = 1 }),
        grpc = verdict(c:events{}),
    }
    c:close()
    return send(200, result)
end


-- GET /tc/promocode
function _M.promocode()
    local args = ngx.req.get_uri_args()
    local c, err = get_client()
    if not c then return fail(err) end
    local promo
    promo, err = c:check_promocode{ event = args.event, code = args.code }
    if not promo then return fail(err) end
    promo.refs = nil
    return send(200, { promocode = promo })
end

return _M
