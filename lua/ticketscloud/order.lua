--- The order object that @{ticketscloud.Client:create_order}, @{ticketscloud.Client:order} and
-- the order lists return: its change helpers, the checks after each answer, the retries and
-- the local refusals (docs/orders.md). It uses its client only through `client:send`,
-- `client:read_order`, `client:deadline` and `client:retry_pause`.
--
-- Every PATCH carries the whole desired state of what it changes (spec §5), computed by the
-- C core from the tickets the order held in the service's last answer: adding a seat
-- re-sends the tickets held, adding unseated tickets re-sends the seated ticket's set with
-- its count.
--
-- The module's other functions (`wrap`, `verify`) are the client's; an order is made by the
-- client, never by hand.
-- @module ticketscloud.order
-- @usage
-- local order = assert(client:create_order{ event = EVENT, random = { [FAN_SET] = 1 } })
-- assert(order:add_tickets{ SEAT_TICKET })   -- sends the held ticket ids + the new one
-- assert(order:set_customer{ name = "Ivan", email = "ivan@example.com" })
-- assert(order:finish())                     -- status done: barcodes appear
-- print(order.status, order.values.full, order.tickets[1].barcode)

local core = require "ticketscloud.core"
local answers = require "ticketscloud.answers"
local rest = require "ticketscloud.rest"

local error = error
local ipairs = ipairs
local next = next
local os_date = os.date
local pairs = pairs
local pcall = pcall
local rawget = rawget
local rawset = rawset
local setmetatable = setmetatable
local tostring = tostring
local type = type

local check_arg = core.check_arg
local check_field = core.check_field
local copy_fields = core.copy_fields
local core_error = core.error
local fail = core.fail

local _M = { _VERSION = core._VERSION }

--- The options every method of an @{Order} takes as its last argument (all optional).
-- @table call_options
-- @tfield[opt] boolean all_or_nothing put into the PATCH body: all the tickets or none (spec
--   §5.4); a value that is not a boolean raises
-- @tfield[opt] table headers extra request headers, `{ [NAME] = value }`
-- @tfield[opt] number timeout seconds for each request, instead of the client's `timeout`
-- @tfield[opt] number deadline seconds the call may spend on its retries, instead of the
--   client's `deadline` option
-- @tfield[opt] number list_timeout for a read of the order that scans the list
-- @usage
-- assert(order:add_tickets({ SEAT_TICKET }, { all_or_nothing = true, timeout = 5 }))

-- The methods; METHODS lists their names, a method added later included.
local Order = {}
local METHODS = {}
setmetatable(Order, { __newindex = function(t, k, v)
    METHODS[#METHODS + 1] = k
    rawset(t, k, v)
end })
_M.Order = Order
local mt = { __index = Order, __name = "ticketscloud.Order" }

-- Per-order state kept out of the order's fields: the client, the fields
-- the program set itself (own), and whether a call is running.
local private = setmetatable({}, { __mode = "k" })

local FINAL = { done = true, cancelled = true }

mt.__tostring = function(self)
    return ("ticketscloud.Order %s (%s)"):format(self.id, self.status)
end

-- A field the order did not have, set by the program: its own, kept when
-- the order is updated. (Fields the order has are the service's: an update
-- replaces them.)
mt.__newindex = function(self, k, v)
    local st = private[self]
    if st then
        local own = st.own
        if not own then
            own = {}
            st.own = own
        end
        own[k] = true
    end
    rawset(self, k, v)
end

-- Replaces the order's fields with the server's order of doc (and refs);
-- the program's own fields stay, unless the server's order has them too.
local function update(self, doc)
    local own = private[self].own
    for k in pairs(self) do
        if not (own and own[k]) then self[k] = nil end
    end
    copy_fields(self, doc.data, Order)
    rawset(self, "refs", doc.refs)
    if own then
        for k in pairs(own) do
            if rawget(doc.data, k) ~= nil or k == "refs" then own[k] = nil end
        end
    end
end

-- Makes an order object of a decoded answer: the answer's data table itself
-- becomes the order, with refs beside its fields. A field named as a method
-- (Order[k]) is dropped: it never shadows the method.
function _M.wrap(client, doc)
    local self = doc.data
    for i = 1, #METHODS do
        local k = METHODS[i]
        if self[k] ~= nil then self[k] = nil end
    end
    self.refs = doc.refs
    private[self] = { client = client }
    return setmetatable(self, mt)
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
        return refuse(self, "conflict", ("another call on order %s is running"):format(self.id))
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

--- An order: its fields are the service's order exactly as the REST answer holds it (spec
-- §4): `id`, `status` (`executed`, `done`, `cancelled`, `expired`, ...), `event`, `tickets`
-- (each with `id`, `set`, `price`, `nominal`, `full`, ... and, once done, `barcode`),
-- `values` (`full`, `nominal`, `price`, `extra`, `discount`, `sets_values`, ...; money as
-- decimal strings, see `tc.money`), `expired_after` and `created_at`
-- (`"YYYY-MM-DD HH:MM:SS"`, UTC; see `tc.time`), `settings`, `vendor_data`, `promocodes`, ...,
-- plus `refs`,
-- the answer's references (`events`, `sets`, `venues`, ...). Every call replaces them with the
-- service's answer. `tostring(order)` is `ticketscloud.Order <id> (<status>)`.
--
-- Each method returns the order, or `nil, err` with `err.order` set to the order, and takes
-- an optional last argument, @{call_options}. After every change the order is checked, and a
-- check that fails is kind `"api"`, the order already updated:
--
-- * every ticket asked for must be held (without `all_or_nothing` the service skips what it
--   cannot reserve): `err.missing` lists the ticket ids not held, and
--   `err.sets[SET] = { wanted =, held = }` the sets whose counts differ;
-- * `finish` and `cancel` must reach their status;
-- * the money must add up (spec §7.6);
-- * a promocode the service did not apply gives `err.messages`, its `{ code =, msg = }` list.
--
-- **Retries.** A 409 (another change in flight), a lost answer (kind `"transport"` or
-- `"timeout"`) and a 5xx are retried: `client:retry_pause` waits, the order is read again,
-- and when it already holds what the change asked for the change is done; otherwise the body
-- is recomputed from what the service holds. After `retry.attempts` attempts the result is
-- kind `"conflict"` with `err.attempts`; a lost answer that could not be settled before the
-- deadline is kind `"unknown"` (read the order again with @{Order:refresh}). A 400 saying the
-- order expired is kind `"expired"`.
--
-- **Refused locally**, before any request: a `done` or `cancelled` order (kind `"invalid"`,
-- `order <id> is done: it cannot be changed`); an expired one (kind `"expired"`: its status
-- is `expired`, or its `expired_after` is past by this machine's clock); data the API would
-- refuse (kind `"invalid"`); a second call on the same order while one runs, from another
-- coroutine (kind `"conflict"`). @{Order:refresh} works in any state.
-- @type Order
-- @usage
-- local order = assert(client:order(ORDER_ID))
-- print(order, order.values.full, #order.tickets)   --> ticketscloud.Order 5d71... (executed) ...

--- Adds seated (or any) tickets by id: sends `tickets`, every id held plus the new ones
-- (order example step 3a).
-- @function Order:add_tickets
-- @tparam table tickets a non-empty list of ticket ids
-- @tparam[opt] call_options opts
-- @treturn Order the order, updated
-- @return[2] nil
-- @treturn[2] Error err, with `err.order`; kind `"api"` with `err.missing` when a ticket is not
--   held after the change
-- @raise when `tickets` is not a table, or `opts` neither nil nor a table
-- @usage
-- assert(order:add_tickets{ SEAT_TICKET })
-- print(order:add_tickets{})   --> nil  ticketscloud: invalid error: tickets: no ticket given
Order.add_tickets = method("add_tickets", true, function(self, tickets, opts)
    return serialized(self, change, function(o)
        local list, err = core.order_tickets_body(o.tickets, tickets)
        if not list then return nil, err end
        return { tickets = rest.array(list) }, { tickets = list }
    end, opts)
end)

--- Releases tickets by id: sends `tickets`, every id held but these.
-- @function Order:remove_tickets
-- @tparam table tickets a non-empty list of ticket ids
-- @tparam[opt] call_options opts
-- @treturn Order the order, updated
-- @return[2] nil
-- @treturn[2] Error err, with `err.order`
-- @raise when `tickets` is not a table, or `opts` neither nil nor a table
-- @usage
-- assert(order:remove_tickets{ SEAT_TICKET })
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

--- Adds unseated tickets, a count per set: sends `random`, the count held in every set (seated
-- sets included) plus the new ones (order example step 3b). The counts are made absolute
-- once, from the order as the call found it, so that a retry does not add them twice.
-- @function Order:add_random
-- @tparam table counts `{ [SET] = n }`, positive integers, at least one set
-- @tparam[opt] call_options opts
-- @treturn Order the order, updated
-- @return[2] nil
-- @treturn[2] Error err, with `err.order`; kind `"api"` with `err.sets` when a count is not
--   held after the change
-- @raise when `counts` is not a table, or `opts` neither nil nor a table
-- @usage
-- assert(order:add_random{ [FAN_SET] = 2 })   -- two more in FAN_SET
Order.add_random = random_change("add_random", "add")
--- Sets absolute counts of unseated tickets: sends `random`, the counts held with these sets
-- at the given counts; 0 releases a set.
-- @function Order:set_random
-- @tparam table counts `{ [SET] = n }`, non-negative integers, at least one set
-- @tparam[opt] call_options opts
-- @treturn Order the order, updated
-- @return[2] nil
-- @treturn[2] Error err, with `err.order`
-- @raise when `counts` is not a table, or `opts` neither nil nor a table
-- @usage
-- assert(order:set_random{ [FAN_SET] = 0 })   -- releases every ticket of FAN_SET
Order.set_random = random_change("set_random", "set")

-- A change of something else: the tickets held must stay held.
local function keep_tickets(body)
    return function(o)
        return body, { tickets = held_ids(o) }
    end
end

--- Sets the customer: sends `settings.customer` (spec §3.4.1), keeping the tickets held.
-- Checked by the C core (`core.check_customer`): only `name`, `email`, `phone` and `lang`,
-- each a string without control characters; `lang` is `"ru"` or `"en"`; `email` has one `@`
-- with something on either side and no spaces. Anything else is kind `"invalid"`, nothing sent.
-- @function Order:set_customer
-- @tparam table customer `{ name =, email =, phone =, lang = }`, every field optional
-- @tparam[opt] call_options opts
-- @treturn Order the order, updated
-- @return[2] nil
-- @treturn[2] Error err, with `err.order`
-- @raise when `customer` is not a table, or `opts` neither nil nor a table
-- @usage
-- assert(order:set_customer{ name = "Ivan", email = "ivan@example.com",
--                            phone = "+79991234576", lang = "ru" })
-- print(order:set_customer{ email = "ivan" })
-- --> nil  ticketscloud: invalid error: customer.email: not an e-mail address
Order.set_customer = method("set_customer", true, function(self, customer, opts)
    local ok, err = core.check_customer(customer)
    if not ok then return failed(self, err) end
    return serialized(self, change, keep_tickets({ settings = { customer = customer } }), opts)
end)

--- Sets the distributor's own data: sends `vendor_data` (spec §3.4.3), keeping the tickets
-- held. Checked by the C core (`core.check_vendor_data`): only `order_id`, a string of at
-- most 64 characters, and `raw`, a table of at most 20 keys of at most 40 characters whose
-- values are strings of at most 128 characters, numbers or booleans. An order made by
-- @{ticketscloud.Client:create_order} carries its tag in `raw.tc_request_id`: keep it.
-- @function Order:set_vendor_data
-- @tparam table vendor_data `{ order_id =, raw = { ... } }`
-- @tparam[opt] call_options opts
-- @treturn Order the order, updated
-- @return[2] nil
-- @treturn[2] Error err, with `err.order`
-- @raise when `vendor_data` is not a table, or `opts` neither nil nor a table
-- @usage
-- local raw = order.vendor_data.raw or {}
-- raw.cart = "c-7781"
-- assert(order:set_vendor_data{ order_id = "shop-1042", raw = raw })
Order.set_vendor_data = method("set_vendor_data", true, function(self, vendor_data, opts)
    local ok, err = core.check_vendor_data(vendor_data)
    if not ok then return failed(self, err) end
    return serialized(self, change, keep_tickets({ vendor_data = vendor_data }), opts)
end)

--- Applies promocodes by code: sends `promocodes` (spec §3.4.4), keeping the tickets held.
-- One the service did not apply comes back as `nil, err` (kind `"api"`, status 200,
-- `messages` its `{ code =, msg = }` list), with the order updated all the same.
-- @function Order:apply_promocodes
-- @tparam table codes a non-empty list of non-empty strings
-- @tparam[opt] call_options opts
-- @treturn Order the order, updated
-- @return[2] nil
-- @treturn[2] Error err, with `err.order`
-- @raise when `codes` is not a table, or `opts` neither nil nor a table
-- @usage
-- local ok, err = order:apply_promocodes{ "SPRING" }
-- if not ok then print(err.messages[1].msg) end
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

--- Finishes the order: sends `status = "done"` (spec §3.4.5). The order is paid and its tickets
-- get barcodes; the order gets its `code`. Against the real service this is a purchase.
-- @function Order:finish
-- @tparam[opt] call_options opts
-- @treturn Order the order, status `done`
-- @return[2] nil
-- @treturn[2] Error err, with `err.order`
-- @raise when `opts` is neither nil nor a table
-- @usage
-- assert(order:finish())
-- print(order.status, order.code, order.tickets[1].barcode)
Order.finish = method("finish", false, function(self, _, opts)
    return serialized(self, change, function(o)
        return { status = "done" }, { tickets = held_ids(o), status = "done" }
    end, opts)
end)

--- Cancels the order: sends `status = "cancelled"`. The tickets go back on sale.
-- @function Order:cancel
-- @tparam[opt] call_options opts
-- @treturn Order the order, status `cancelled`
-- @return[2] nil
-- @treturn[2] Error err, with `err.order`; kind `"invalid"` for a done order
-- @raise when `opts` is neither nil nor a table
-- @usage
-- assert(order:cancel())
Order.cancel = method("cancel", false, function(self, _, opts)
    return serialized(self, change, function()
        return { status = "cancelled" }, { status = "cancelled" }
    end, opts)
end)

--- Sends the visitors' data for AIS Mosbilet venues (spec §3.10):
-- `PUT /v2/services/orders/mosbilet/user_data`, while the order can be changed (refused locally
-- for a done, cancelled or expired order). The order itself does not change and is returned
-- as it is; there is no retry.
-- @function Order:set_visitors
-- @tparam table visitors a non-empty list of tables with `ticket_id`, `user_id`, `name`,
--   `surname`, `middle_name`: `user_id`, `name` and `surname` required and non-empty,
--   `ticket_id` a ticket id, no other field
-- @tparam[opt] call_options opts `headers`, `timeout`
-- @treturn Order the order
-- @return[2] nil
-- @treturn[2] Error err, with `err.order`
-- @raise when `visitors` is not a table, or `opts` neither nil nor a table
-- @usage
-- assert(order:set_visitors{ { ticket_id = order.tickets[1].id, user_id = "42",
--                              name = "Ivan", surname = "Petrov" } })
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

--- Reads the order again (`GET`, or the list, as @{ticketscloud.Client:order}) and updates it.
-- Allowed in any state, done, cancelled and expired included.
-- @function Order:refresh
-- @tparam[opt] call_options opts `headers`, `timeout`, `list_timeout`
-- @treturn Order the order, updated
-- @return[2] nil
-- @treturn[2] Error err, with `err.order`
-- @raise when `opts` is neither nil nor a table
-- @usage
-- assert(order:refresh())
-- if order.status == "expired" then print("too late") end
Order.refresh = method("refresh", false, function(self, _, opts)
    return serialized(self, function(o)
        local doc, err = reread(o, opts)
        if not doc then return failed(o, err) end
        return o
    end)
end)

return _M
