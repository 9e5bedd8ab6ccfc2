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

local error = error
local ipairs = ipairs
local pairs = pairs
local random = math.random
local setmetatable = setmetatable
local tostring = tostring
local type = type

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

local DEFAULT_RETRY = { attempts = 6, base = 0.1, max = 2 }

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
    local transport = opts.transport
    if transport ~= nil and (type(transport) ~= "table" and type(transport) ~= "userdata"
                             or type(transport.request) ~= "function") then
        error("bad field 'transport' to 'new' (an object with a request method expected)", 2)
    end

    -- key, api, simple, timeout, language, ca_file, insecure: options.c
    local options, err = core.options(opts)
    if not options then return nil, err end
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
    local http = transport
    if not http then
        http, err = core.http(options)
        if not http then return nil, err end
    end
    local self = { options = options, http = http, retry = r, sleep = sleep, trace = trace }
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
-- trace sees the request; the key never reaches an error.
function _M.send(self, req, opts)
    check_arg(req, "table", "send", 1)
    check_arg(opts, "table?", "send", 2)
    local status, body = self.http:request(req.method, req.path, req.body, opts)
    local trace = self.trace
    if trace then trace(req.method, req.path, req.body, status) end
    local key = self.options.key
    if not status then return nil, scrub(body, key) end
    local doc, err = answers.decode(status, body, req.no_data)
    if not doc then return nil, scrub(err, key) end
    return doc
end

-- client:retry_pause(attempt) -> true once it has waited before attempt + 1,
-- or false when attempt was the last one the retry option allows. The
-- pause grows exponentially from retry.base up to retry.max; half of it is
-- random, so that clients that collided do not retry in lockstep. For the
-- order object's 409 retries.
function _M.retry_pause(self, attempt)
    check_arg(attempt, "number", "retry_pause", 1)
    local retry = self.retry
    if attempt >= retry.attempts then return false end
    local pause = retry.base * 2 ^ (attempt - 1)
    if pause > retry.max then pause = retry.max end
    self.sleep(pause / 2 + random() * pause / 2)
    return true
end

-- client:create_order{ event = ID, random = { [SET] = n } }
-- client:create_order{ tickets = { TICKET, ... } }      (the event follows)
-- client:create_order{ event = ID }                     (an empty order)
-- plus all_or_nothing, settings, vendor_data, promocodes. Returns the
-- order, checked like every change (ticketscloud.order): a ticket asked for
-- but not reserved gives nil, err with err.order set to the new order.
function _M.create_order(self, args, opts)
    check_arg(args, "table", "create_order", 1)
    check_arg(opts, "table?", "create_order", 2)
    local req, err = rest.create_order(args)
    if not req then return nil, err end
    local doc
    doc, err = self:send(req, opts)
    if not doc then return nil, err end
    local want = {}
    if args.tickets ~= nil then want.tickets = args.tickets end
    if args.random ~= nil then want.counts = args.random end
    return orders.verify(wrap(self, doc), doc, want)
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
    return pages.read(self, ORDERS, id, event and { events = { event } } or nil, opts)
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
