-- ticketscloud.order: the order object that client:create_order and
-- client:order return: its change helpers, the checks after each answer,
-- the 409 retries and the local refusals (docs/orders.md). It uses its
-- client only through client:send, client:read_order and client:retry_pause.

local core = require "ticketscloud.core"
local answers = require "ticketscloud.answers"
local rest = require "ticketscloud.rest"

local error = error
local ipairs = ipairs
local next = next
local os_date = os.date
local pairs = pairs
local pcall = pcall
local setmetatable = setmetatable
local tostring = tostring
local type = type

local check_arg = core.check_arg
local check_field = core.check_field
local copy_fields = core.copy_fields
local core_error = core.error
local fail = core.fail

local _M = { _VERSION = core._VERSION }

local Order = {}
_M.Order = Order
local mt = { __index = Order, __name = "ticketscloud.Order" }

-- Per-order state kept out of the order's fields: the client, the server's
-- order of the last update (its keys are the order's fields), and whether a
-- call is running.
local private = setmetatable({}, { __mode = "k" })

local FINAL = { done = true, cancelled = true }

mt.__tostring = function(self)
    return ("ticketscloud.Order %s (%s)"):format(self.id, self.status)
end

-- Replaces the order's fields with the server's order of doc (and refs).
-- Fields named as a method (Order[k]) are not copied: they never shadow it.
local function update(self, doc)
    local st = private[self]
    for k in pairs(st.data) do
        if Order[k] == nil then self[k] = nil end
    end
    copy_fields(self, doc.data, Order)
    st.data = doc.data
    self.refs = doc.refs
end

-- Makes an order object of a decoded answer. Its fields are copied at once
-- into a table sized for them (and refs), one answer after another.
function _M.wrap(client, doc)
    local self = setmetatable(copy_fields(nil, doc.data, Order, 1), mt)
    private[self] = { client = client, data = doc.data }
    self.refs = doc.refs
    return self
end

-- How a call on an order fails: nil, err with err.order set to the order.
local function failed(self, err)
    err.order = self
    return nil, err
end

-- The same with a new error of kind with one message.
local function refuse(self, kind, message)
    local _, err = fail(kind, message)
    return failed(self, err)
end

-- true, or nil, err for a change the service would refuse anyway.
local function changeable(self)
    local status = self.status
    if status == "expired" then
        return fail("expired", ("order %s has expired"):format(self.id))
    end
    if FINAL[status] then
        return fail("invalid", ("order %s is %s: it cannot be changed"):format(self.id, status))
    end
    local expired_after = self.expired_after
    if type(expired_after) == "string"
            and os_date("!%Y-%m-%d %H:%M:%S") >= expired_after then
        return fail("expired", ("order %s expired at %s UTC"):format(self.id, expired_after))
    end
    return true
end

-- The checks after an answer: promocode errors, the tickets (want, see
-- core.order_verify), the status and the money.
local function verify(self, doc, want)
    if type(doc.errors) == "table" and #doc.errors > 0 then
        return failed(self, core_error{ kind = "api", status = 200, messages = doc.errors })
    end
    local ok, err
    if want and (want.tickets or want.released or want.counts) then
        ok, err = core.order_verify(self.tickets, want)
        if not ok then return failed(self, err) end
    end
    if want and want.status and self.status ~= want.status then
        return refuse(self, "api", ("order %s is %s, not %s"):format(
            self.id, tostring(self.status), want.status))
    end
    ok, err = core.order_check_money(doc.data, doc.refs)
    if not ok then return failed(self, err) end
    return self
end
_M.verify = verify

-- Runs fn(self) with the order marked busy; a second call meanwhile (from
-- another coroutine of a non-blocking transport) is refused.
local function serialized(self, fn, ...)
    local st = private[self]
    if st.busy then
        return fail("conflict", ("another call on order %s is running"):format(self.id))
    end
    st.busy = true
    local ok, a, b = pcall(fn, self, ...)
    st.busy = false
    if not ok then error(a, 0) end
    return a, b
end

-- Reads the order again (GET, or the list, spec §3.8); updates it.
local function reread(self, opts)
    local doc, err = private[self].client:read_order(self.id, self.event, opts)
    if not doc then return nil, err end
    update(self, doc)
    return doc
end

-- Whether the order read anew already is as the last body wanted: after a
-- change whose answer was lost, the order decides. Only a change of the
-- status or of the tickets can be told from the order; any other change is
-- sent again (the same desired state: no harm).
local function reached(self, body, want)
    if body.status ~= nil and self.status ~= body.status then return false end
    if body.status == nil and body.tickets == nil and body.random == nil then return false end
    return (want.tickets == nil and want.counts == nil and want.released == nil)
        or core.order_verify(self.tickets, want) ~= nil
end

-- A change: build(self) -> body, want (or nil, err) from the current
-- state; PATCH it. When it fails in a way worth another attempt (a 409,
-- no answer, a 5xx: answers.retryable), pause (client:retry_pause), read
-- the order anew and build the body again from what the service holds,
-- until the attempts or the deadline run out. A status change whose
-- outcome was unknown is done once the order read anew shows that status.
local function change(self, build, opts)
    opts = opts or {}
    local ok, err = changeable(self)
    if not ok then return failed(self, err) end
    local client = private[self].client
    local deadline = client:deadline(opts)
    local unknown = false -- whether a PATCH may have been applied unseen
    local attempt, failures = 0, 0 -- PATCHes sent; requests that failed
    repeat
        attempt = attempt + 1
        local body, want = build(self)
        if not body then return failed(self, want) end
        if opts.all_or_nothing ~= nil then body.all_or_nothing = opts.all_or_nothing end
        local req, doc
        req, err = rest.patch_order(self.id, body)
        if not req then return failed(self, err) end
        doc, err = client:send(req, opts)
        if doc then doc, err = answers.order(doc, self.id) end
        if doc then
            update(self, doc)
            return verify(self, doc, want)
        end
        if not answers.retryable(err) then break end
        unknown = unknown or answers.maybe_applied(err)
        failures = failures + 1
        local again
        repeat -- the order read anew: the only ground for the next attempt
            if not client:retry_pause(failures, deadline) then ok = false break end
            again, err = reread(self, opts)
            ok = again ~= nil
            if not ok then failures = failures + 1 end
        until ok or not answers.retryable(err)
        if ok and reached(self, body, want) then return verify(self, again, want) end
        if ok then
            unknown = false
            ok, err = changeable(self)
        end
    until not ok
    if unknown then
        err = core_error{ kind = "unknown", status = err.status, messages = {
            ("order %s: no answer to a change, and the order could not be read since: "
             .. "it may or may not be changed; read it again with order:refresh()"):format(self.id),
            tostring(err) } }
    elseif err.kind == "conflict" then
        err.attempts = attempt
    end
    if answers.is_expired_error(err) then err.kind = "expired" end
    return failed(self, err)
end

-- Makes the public method name of body(self, arg, opts). Its arguments are
-- checked here, in the function the caller called, so that a mistake
-- raises at the caller's line: arg a table when takes_table (else the
-- method takes only opts), opts nil or a table. opts is argument #2 either
-- way.
local function method(name, takes_table, body)
    return function(self, arg, opts)
        if takes_table then
            check_arg(arg, "table", name, 1)
        else
            arg, opts = nil, arg
        end
        check_arg(opts, "table?", name, 2)
        if opts then check_field(opts, "all_or_nothing", "boolean?", name) end
        return body(self, arg, opts)
    end
end

local function held_ids(self)
    local ids = core.order_held(self.tickets)
    return ids
end

-- tickets: every id held plus the new ones (order example step 3a).
Order.add_tickets = method("add_tickets", true, function(self, tickets, opts)
    return serialized(self, change, function(o)
        local list, err = core.order_tickets_body(o.tickets, tickets)
        if not list then return nil, err end
        return { tickets = rest.array(list) }, { tickets = list }
    end, opts)
end)

-- tickets: every id held but these.
Order.remove_tickets = method("remove_tickets", true, function(self, tickets, opts)
    return serialized(self, change, function(o)
        local list, err = core.order_tickets_body(o.tickets, nil, tickets)
        if not list then return nil, err end
        return { tickets = rest.array(list) }, { tickets = list, released = tickets }
    end, opts)
end)

local function random_change(name, mode)
    return method(name, true, function(self, counts, opts)
        if next(counts) == nil then return refuse(self, "invalid", name .. ": no set given") end
        -- The counts asked for, made absolute from the order as this call
        -- found it: a retry after the order was read anew must not add
        -- again what a first attempt, its answer lost, already added.
        local target
        return serialized(self, change, function(o)
            local map, err = core.order_random_body(o.tickets, target or counts,
                                                    target and "set" or mode)
            if not map then return nil, err end
            if not target then
                target = {}
                for set in pairs(counts) do target[set] = map[set] end
            end
            return { random = map }, { counts = map }
        end, opts)
    end)
end

-- random: the count held in every set, seated sets included, plus the new
-- (order example step 3b).
Order.add_random = random_change("add_random", "add")
-- random: the held counts with these sets set to the given counts.
Order.set_random = random_change("set_random", "set")

-- A change of something else: the tickets held must stay held.
local function keep_tickets(body)
    return function(o)
        return body, { tickets = held_ids(o) }
    end
end

-- settings.customer (spec §3.4.1): name, email, phone, lang, checked by
-- core.check_customer (validate.c).
Order.set_customer = method("set_customer", true, function(self, customer, opts)
    local ok, err = core.check_customer(customer)
    if not ok then return failed(self, err) end
    return serialized(self, change, keep_tickets({ settings = { customer = customer } }), opts)
end)

-- vendor_data (spec §3.4.3): order_id and raw within their limits, checked
-- by core.check_vendor_data (validate.c).
Order.set_vendor_data = method("set_vendor_data", true, function(self, vendor_data, opts)
    local ok, err = core.check_vendor_data(vendor_data)
    if not ok then return failed(self, err) end
    return serialized(self, change, keep_tickets({ vendor_data = vendor_data }), opts)
end)

-- promocodes, by code (spec §3.4.4). One the service did not apply comes
-- back as nil, err (kind "api", messages = its { code, msg } list), with the
-- order updated all the same.
Order.apply_promocodes = method("apply_promocodes", true, function(self, codes, opts)
    local list = rest.array()
    for i, code in ipairs(codes) do
        local ok, err = core.check_text(code, "promocodes[" .. i .. "]")
        if not ok then return failed(self, err) end
        if code == "" then return refuse(self, "invalid", "promocodes[" .. i .. "]: empty") end
        list[i] = code
    end
    if #list == 0 then return refuse(self, "invalid", "apply_promocodes: no code given") end
    return serialized(self, change, keep_tickets({ promocodes = list }), opts)
end)

-- status done (spec §3.4.5): the order is paid, tickets get barcodes.
Order.finish = method("finish", false, function(self, _, opts)
    return serialized(self, change, function(o)
        return { status = "done" }, { tickets = held_ids(o), status = "done" }
    end, opts)
end)

-- status cancelled: the tickets go back on sale.
Order.cancel = method("cancel", false, function(self, _, opts)
    return serialized(self, change, function()
        return { status = "cancelled" }, { status = "cancelled" }
    end, opts)
end)

-- Visitor data for AIS Mosbilet venues (spec §3.10): PUT
-- /v2/services/orders/mosbilet/user_data, allowed only while the order is
-- executed (refused locally otherwise). The order itself is unchanged, so
-- it is returned as it is; no 409 retry (the call does not change the
-- order's tickets).
Order.set_visitors = method("set_visitors", true, function(self, visitors, opts)
    local ok, err = changeable(self)
    if not ok then return failed(self, err) end
    local req
    req, err = rest.mosbilet_user_data(self.id, visitors)
    if not req then return failed(self, err) end
    return serialized(self, function(o)
        local done, e = private[o].client:send(req, opts)
        if not done then
            if answers.is_expired_error(e) then e.kind = "expired" end
            return failed(o, e)
        end
        return o
    end)
end)

-- Reads the order again. Allowed in any state.
Order.refresh = method("refresh", false, function(self, _, opts)
    return serialized(self, function(o)
        local doc, err = reread(o, opts)
        if not doc then return failed(o, err) end
        return o
    end)
end)

return _M
