-- ticketscloud: the client of the Ticketscloud distributor API. tc.new,
-- client:close and client:send; the order entry points; the catalogue and
-- refund methods wired in from ticketscloud.catalogue and .refunds. Usage:
-- README.md, docs/client.md (options, errors, lists) and docs/orders.md.

local core = require "ticketscloud.core"
local answers = require "ticketscloud.answers"
local rest = require "ticketscloud.rest"
local orders = require "ticketscloud.order"
local pages = require "ticketscloud.pages"
local catalogue = require "ticketscloud.catalogue"
local refunds = require "ticketscloud.refunds"
local time = require "ticketscloud.time"

local error = error
local ipairs = ipairs
local next = next
local pairs = pairs
local os_time = os.time
local random = math.random
local setmetatable = setmetatable
local tostring = tostring
local type = type

local core_error = core.error
local now = core.now
local check_arg = core.check_arg
local check_field = core.check_field
local fail = core.fail
local scrub = core.scrub -- the key out of every message a server echoed it into
local wrap = orders.wrap

local _M = { _VERSION = core._VERSION }
local mt = { __index = _M, __name = "ticketscloud.Client" }

_M.money = core.money
_M.error = core.error
_M.null = rest.null
_M.time = time -- tc.time.parse / tc.time.format: the order and catalogue times

local DEFAULT_RETRY = { attempts = 6, base = 0.1, max = 2 }
-- Seconds a change or a creation may spend on retries, well inside an
-- order's lifetime (15 minutes).
local DEFAULT_DEADLINE = 60
-- The key of vendor_data.raw that tags a creation (docs/reliability.md).
local TAG = "tc_request_id"
-- How far the clocks of this machine and the service may disagree when a
-- creation is looked up by its time, before an answer told the difference;
-- and the margin around the creation's time once it is known.
local CLOCK_SKEW = 300
local CLOCK_MARGIN = 30

-- The catalogue methods (gRPC): client:events{...}, client:seats{...}, ...
-- and the refund requests: client:create_refund{...}, client:refund(id), ...
for _, module in ipairs{ catalogue, refunds } do
    for name, fn in pairs(module.methods) do _M[name] = fn end
end

-- tc.new(opts) -> client | nil, err (the options: docs/client.md)
function _M.new(opts)
    check_arg(opts, "table", "new", 1)
    local retry = check_field(opts, "retry", "table?", "new") or {}
    local sleep = check_field(opts, "sleep", "function?", "new") or core.sleep
    local trace = check_field(opts, "trace", "function?", "new")
    local deadline = check_field(opts, "deadline", "number?", "new") or DEFAULT_DEADLINE
    local transport = opts.transport
    if transport ~= nil and (type(transport) ~= "table" and type(transport) ~= "userdata"
                             or type(transport.request) ~= "function") then
        error("bad field 'transport' to 'new' (an object with a request method expected)", 2)
    end

    -- key, api, simple, timeout, language, ca_file, insecure: options.c
    local options, err = core.options(opts)
    if not options then return nil, err end
    -- How long a walk of a list may spend fetching pages (pages.lua).
    local list_timeout = opts.list_timeout
    if list_timeout == nil then
        list_timeout = pages.LIST_TIMEOUT_FACTOR * options.timeout
    else
        list_timeout, err = pages.check_list_timeout(list_timeout)
        if not list_timeout then return nil, err end
    end
    local r = {}
    for k, default in pairs(DEFAULT_RETRY) do
        local v = retry[k]
        if v == nil then v = default end
        if k == "attempts" then
            -- An integer: retry_pause counts the attempts up to it exactly.
            if type(v) ~= "number" or v < 1 or v % 1 ~= 0 then
                return fail("invalid", "retry.attempts: an integer >= 1 expected")
            end
        elseif type(v) ~= "number" or v ~= v or v < 0 then
            return fail("invalid", "retry." .. k .. ": a number of seconds >= 0 expected")
        end
        r[k] = v
    end
    deadline, err = core.check_timeout(deadline, "deadline") -- options.c's rule
    if not deadline then return nil, err end
    local http = transport
    if not http then
        http, err = core.http(options)
        if not http then return nil, err end
    end
    local self = { options = options, http = http, retry = r, sleep = sleep, trace = trace,
                   deadline_seconds = deadline, list_timeout = list_timeout }
    -- The address is taken before the metatable hides it behind __tostring.
    self.name = "ticketscloud.Client: " .. tostring(self):match("0x%x+")
    return setmetatable(self, mt)
end

-- client:close(): closes the REST connection and the gRPC channel. Calls
-- after it return nil, err (kind "invalid", "closed"). Idempotent.
function _M.close(self)
    self.closed = true
    if self.http and self.http.close then self.http:close() end
    catalogue.close(self)
    return true
end

mt.__gc = function(self) self:close() end -- Lua 5.4 (LuaJIT: the userdata collect themselves)
mt.__close = mt.__gc
mt.__tostring = function(self) return self.name end

-- client:send(req, { headers = {...}, timeout = seconds }) -> doc | nil, err
-- Runs a request built by ticketscloud.rest (rest.get_order(id), ...) and
-- returns the decoded answer: the whole JSON document (data, refs, ...).
-- trace sees the request, its status and the seconds it took; the key
-- never reaches an error.
function _M.send(self, req, opts)
    check_arg(req, "table", "send", 1)
    check_arg(opts, "table?", "send", 2)
    local trace = self.trace
    local started = trace and now()
    local status, body = self.http:request(req.method, req.path, req.body, opts)
    if trace then trace(req.method, req.path, req.body, status, now() - started) end
    local key = self.options.key
    if not status then return nil, scrub(body, key) end
    local doc, err = answers.decode(status, body, req.no_data)
    if not doc then return nil, scrub(err, key) end
    return doc
end

-- client:deadline(opts) -> the monotonic time (core.now) by which a call
-- with these opts gives up retrying: opts.deadline or the client's
-- deadline option, in seconds from now.
function _M.deadline(self, opts)
    check_arg(opts, "table?", "deadline", 1)
    return core.now() + (opts and opts.deadline or self.deadline_seconds)
end

-- client:retry_pause(attempt, deadline) -> true once it has waited before
-- attempt + 1, or false when attempt was the last one the retry option
-- allows or the pause would end past deadline (a core.now() time, or nil).
-- The pause grows exponentially from retry.base up to retry.max; half of it
-- is random, so that clients that collided do not retry in lockstep.
function _M.retry_pause(self, attempt, deadline)
    check_arg(attempt, "number", "retry_pause", 1)
    check_arg(deadline, "number?", "retry_pause", 2)
    local retry = self.retry
    if attempt >= retry.attempts then return false end
    local pause = retry.base * 2 ^ (attempt - 1)
    if pause > retry.max then pause = retry.max end
    pause = pause / 2 + random() * pause / 2
    if deadline and core.now() + pause > deadline then return false end
    self.sleep(pause)
    return true
end

-- The creation's time window for find_created: since shortly before now,
-- in the service's clock when an earlier answer told how far it is from
-- this machine's.
local function creation_since(self)
    if self.clock_offset then return os_time() + self.clock_offset - CLOCK_MARGIN end
    return os_time() - CLOCK_SKEW
end

-- vendor_data with the creation's tag added to raw; the caller's table is
-- not changed (a vendor_data of the wrong shape is left for rest.create_order
-- to refuse).
local function tagged(vendor_data, request_id)
    if vendor_data ~= nil and (type(vendor_data) ~= "table" or
                               (vendor_data.raw ~= nil and type(vendor_data.raw) ~= "table")) then
        return vendor_data
    end
    local out, raw = {}, {}
    for k, v in pairs(vendor_data or {}) do out[k] = v end
    for k, v in pairs(out.raw or {}) do raw[k] = v end
    raw[TAG] = request_id
    out.raw = raw
    return out
end

-- client:create_order{ event = ID, random = { [SET] = n } }
-- client:create_order{ tickets = { TICKET, ... } }      (the event follows)
-- client:create_order{ event = ID }                     (an empty order)
-- plus all_or_nothing, settings, vendor_data, promocodes and request_id.
-- Returns the order, checked like every change (ticketscloud.order): a
-- ticket asked for but not reserved gives nil, err with err.order set.
--
-- Exactly once: the order is tagged with request_id (given, or made here)
-- in vendor_data.raw.tc_request_id. When an attempt's outcome is unknown
-- (no answer, a 5xx), the order is looked up by its tag before any new
-- attempt: an order that exists is returned, a new attempt is made only
-- when none does, and when that cannot be learnt before the deadline the
-- result is nil, err with kind "unknown" and err.request_id, to resolve
-- later with client:find_created (docs/reliability.md).
function _M.create_order(self, args, opts)
    check_arg(args, "table", "create_order", 1)
    check_arg(opts, "table?", "create_order", 2)
    local request_id = check_field(args, "request_id", "string?", "create_order")
    if request_id == nil then
        request_id = core.request_id()
    elseif #request_id > 64 or not request_id:find("^[%w%-_.]+$") then
        return fail("invalid", "request_id: 1 to 64 letters, digits, '-', '_' or '.' expected")
    end
    local body = {}
    for k, v in pairs(args) do body[k] = v end
    body.request_id = nil
    body.vendor_data = tagged(args.vendor_data, request_id)
    local req, err = rest.create_order(body)
    if not req then return nil, err end

    local want = { tickets = args.tickets, counts = args.random }
    local where = { event = args.event, since = creation_since(self) }
    if self.keeps_tag ~= true then
        -- Not known yet that the service keeps vendor_data given with a
        -- POST: an untagged order holding exactly these tickets counts too.
        where.tickets, where.random = args.tickets, args.random or (args.tickets == nil and {})
    end
    local deadline = self:deadline(opts)
    local unknown = false -- whether an attempt may have made an order that was not found
    local attempt = 0
    repeat
        attempt = attempt + 1
        local doc
        doc, err = self:send(req, opts)
        if doc then doc, err = answers.order(doc) end
        if doc then
            local created = type(doc.data.created_at) == "string"
                            and time.parse(doc.data.created_at)
            if created then self.clock_offset = created - os_time() end
            local vd = doc.data.vendor_data
            self.keeps_tag = type(vd) == "table" and type(vd.raw) == "table"
                             and vd.raw[TAG] == request_id
            return orders.verify(wrap(self, doc), doc, want)
        end
        if not answers.retryable(err) then break end
        if answers.maybe_applied(err) then
            -- Settled before anything is sent again: the order exists, or
            -- none does, or that cannot be told (then nothing is sent).
            local found, lookup = self:find_created(request_id, where, opts)
            if found then return orders.verify(found, { data = found, refs = found.refs }, want) end
            if lookup.kind ~= "not_found" then
                unknown, err = true, lookup
                break
            end
        end
    until not self:retry_pause(attempt, deadline)
    if unknown then
        err = core_error{ kind = "unknown", status = err.status, since = where.since,
                          event = args.event, messages = {
            "no answer: the order may exist; look it up with client:find_created(err.request_id)",
            tostring(err) } }
    end
    err.request_id = request_id
    return nil, err
end

-- Whether order holds exactly what a creation asked for: the ticket ids,
-- or the count in each set (nothing else either way).
local function holds_exactly(order, want)
    local tickets = type(order.tickets) == "table" and order.tickets or {}
    if want.tickets then
        local asked = {}
        for _, id in ipairs(want.tickets) do asked[id] = true end
        for _, t in ipairs(tickets) do
            if not asked[t.id] then return false end
            asked[t.id] = nil
        end
        return next(asked) == nil
    end
    local counts = {}
    for _, t in ipairs(tickets) do counts[t.set] = (counts[t.set] or 0) + 1 end
    for set, n in pairs(want.random or {}) do
        if counts[set] ~= n then return false end
        counts[set] = nil
    end
    return next(counts) == nil
end

-- client:find_created(request_id, { event = ID, since = unix_seconds,
--                                   tickets = {...} | random = {...} })
-- -> order | nil, err: the order that create_order tagged with request_id
-- (kind "not_found" when there is none). It reads the list of the event's
-- orders (every event's without one) created since `since` (default: a day
-- ago), retrying a read that fails on the network until the deadline.
-- With tickets or random (what the creation asked for), an order without
-- any tag that holds exactly that is taken for it when no order has the
-- tag: for a service that does not keep vendor_data given with a POST. Two
-- such orders are kind "unknown": the client cannot tell which is its own.
function _M.find_created(self, request_id, where, opts)
    check_arg(request_id, "string", "find_created", 1)
    check_arg(where, "table?", "find_created", 2)
    check_arg(opts, "table?", "find_created", 3)
    where = where or {}
    local untagged = (where.tickets or where.random) and where or nil
    local filter = { page_size = rest.MAX_PAGE_SIZE,
                     created_at = { where.since or os_time() - 86400, os_time() + CLOCK_SKEW },
                     events = where.event and { where.event } or nil }
    local deadline = self:deadline(opts)
    local attempt, err = 0
    repeat
        attempt = attempt + 1
        local list
        list, err = self:orders(filter, opts)
        if not list then return nil, err end
        local alike = {} -- orders without a tag that hold what was asked for
        for order in list do
            local vd = order.vendor_data
            local raw = type(vd) == "table" and type(vd.raw) == "table" and vd.raw or {}
            if raw[TAG] == request_id then
                list:close()
                return order
            end
            if untagged and raw[TAG] == nil and holds_exactly(order, untagged) then
                alike[#alike + 1] = order
            end
        end
        err = list:error()
        if not err then
            if #alike == 1 then return alike[1] end
            if #alike > 1 then
                return fail("unknown", ("%d orders without a tag hold what request %s asked for")
                            :format(#alike, request_id))
            end
            return fail("not_found", "no order was created with request id " .. request_id, 404)
        end
    until not answers.retryable(err) or not self:retry_pause(attempt, deadline)
    return nil, err
end

-- The order list: its stream makes an order object of each item.
local ORDERS = pages.list{
    name = "ticketscloud.OrderStream", noun = "order", what = "an order", missing = "Order",
    query = rest.orders_query, request = rest.list_orders, get = rest.get_order,
    make = function(client, item, refs) return wrap(client, { data = item, refs = refs }) end,
}

-- client:find_order(id, { events = { EVENT } }) -> order | nil, err
-- Looks for an order in the list: what client:order falls back to when the
-- service does not serve GET /v2/resources/orders/:id.
function _M.find_order(self, id, filter, opts)
    check_arg(id, "string", "find_order", 1)
    check_arg(filter, "table?", "find_order", 2)
    check_arg(opts, "table?", "find_order", 3)
    local doc, err = pages.find(self, ORDERS, id, filter, opts)
    if not doc then return nil, err end
    return wrap(self, doc)
end

-- client:read_order(id, event, opts) -> doc | nil, err: the server's
-- document of order id ({ data = order, refs = refs }, as an answer): GET
-- /v2/resources/orders/:id, else the list (of event's orders only, when
-- event is given), as client:order reads it. For the order object.
function _M.read_order(self, id, event, opts)
    check_arg(id, "string", "read_order", 1)
    check_arg(opts, "table?", "read_order", 3)
    local doc, err = pages.read(self, ORDERS, id, event and { events = { event } } or nil, opts)
    if not doc then return nil, err end
    return answers.order(doc, id)
end

-- client:order(id, { event = EVENT }) -> order | nil, err
-- GET /v2/resources/orders/:id; when the service does not serve that route
-- (404 that is not "Order <id> not found", or 405) the list is scanned,
-- only the event's orders when opts.event is given.
function _M.order(self, id, opts)
    check_arg(id, "string", "order", 1)
    check_arg(opts, "table?", "order", 2)
    local doc, err = self:read_order(id, opts and opts.event, opts)
    if not doc then return nil, err end
    return wrap(self, doc)
end

-- client:patch_order(id, body) -> order | nil, err: a raw PATCH with any
-- body (spec §3.4), no retry. A promocode the service did not apply, or
-- money that does not add up, gives nil, err with err.order.
function _M.patch_order(self, id, body, opts)
    check_arg(id, "string", "patch_order", 1)
    check_arg(body, "table", "patch_order", 2)
    check_arg(opts, "table?", "patch_order", 3)
    local req, err = rest.patch_order(id, body)
    if not req then return nil, err end
    local doc
    doc, err = self:send(req, opts)
    if doc then doc, err = answers.order(doc, id) end
    if not doc then return nil, err end
    return orders.verify(wrap(self, doc), doc)
end

-- client:check_promocode{ event = ID, code = "PROMO" } -> promo | nil, err
-- promo is the answer's data (discount, sets, tickets_count, lifetime) with
-- promo.refs; a code that cannot be applied is nil, err (kind "api",
-- messages = { reason }), spec §3.9.
function _M.check_promocode(self, args, opts)
    check_arg(args, "table", "check_promocode", 1)
    check_arg(opts, "table?", "check_promocode", 2)
    local req, err = rest.check_promocode(args)
    if not req then return nil, err end
    local doc
    doc, err = self:send(req, opts)
    if not doc then return nil, err end
    local promo = doc.data
    promo.refs = doc.refs
    return promo
end

-- client:orders{ status = { "done" }, events = { ID }, created_at = { from, to },
--                only_with_customer = true, page_size = 50 }
-- -> a stream of orders (pages fetched as needed), or nil, err. created_at
-- bounds are Unix seconds or "YYYY-MM-DDTHH:MM:SS" (UTC). After a loop,
-- stream:error() tells whether the listing ended on an error; stream.total
-- is the service's count of matching orders once a page was read.
function _M.orders(self, filter, opts)
    check_arg(filter, "table?", "orders", 1)
    check_arg(opts, "table?", "orders", 2)
    return pages.stream(self, ORDERS, filter, opts)
end

return _M
