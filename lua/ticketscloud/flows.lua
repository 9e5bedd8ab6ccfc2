--- Whole sales flows composed from the order helpers.
--
-- Each flow is short, plain Lua (lua/ticketscloud/flows.lua): copy one and change it to
-- script your own.
-- @module ticketscloud.flows
-- @usage
--   local flows = require "ticketscloud.flows"
--   local order, err = flows.mixed_order(client, {
--       event = "5d7134962110d30a34e95b96",
--       seats = { "5d7134962110d30a34e95cfe" },            -- seated tickets, by ticket id
--       random = { ["5d7135112110d30a34e97e2d"] = 1 },     -- unseated tickets, a count per set
--       first = "random",                                  -- or "seats"
--       customer = { name = "Ivan", email = "ivan@example.com", phone = "+79991234576", lang = "ru" },
--       finish = true,
--   })

local core = require "ticketscloud.core"

local error = error
local tostring = tostring
local type = type
local next = next

local check_arg = core.check_arg
local check_field = core.check_field
local fail = core.fail

local _M = { _VERSION = core._VERSION }

-- After a failed step: unless keep is set, cancels the order so that its
-- tickets go back on sale, and returns nil, err with err.order set and
-- err.cancelled telling whether it was cancelled. A finish whose outcome
-- was unknown may have sold the order: when the service refuses the cancel
-- and the order read anew is done, the flow succeeded after all.
local function abandon(order, err, keep, finishing)
    if type(err) ~= "table" then return nil, err end
    err.order = order
    err.cancelled = false
    if not order or keep or order.status ~= "executed" then return nil, err end
    local cancelled, cerr = order:cancel()
    if cancelled then
        err.cancelled = true
        err.messages[#err.messages + 1] = ("order %s cancelled"):format(order.id)
        return nil, err
    end
    if order:refresh() and order.status == "done" and finishing then return order end
    err.messages[#err.messages + 1] = ("order %s could not be cancelled: %s")
        :format(order.id, tostring(cerr))
    return nil, err
end

-- After a creation that failed: the order it may have made all the same
-- (err.order, or the one tagged with err.request_id), abandoned like any.
local function abandon_creation(client, err, keep)
    if type(err) ~= "table" then return nil, err end
    if err.order then return abandon(err.order, err, keep) end
    if err.kind ~= "unknown" then return nil, err end
    local order, lookup = client:find_created(err.request_id, { event = err.event,
                                                                since = err.since })
    if order or lookup.kind == "not_found" then
        -- Known now: no order, or one the flow abandons. The cause stays.
        err.kind = "transport"
        return abandon(order, err, keep)
    end
    return nil, err
end

--- The order example's mixed order: seated tickets chosen by id plus unseated tickets as a
-- count per set, in either order (spec: the order example).
--
-- * `first = "random"`: create with `random` (2a; an empty order of the event when there is
--   none), then add the seats (3a);
-- * `first = "seats"`: create with the seats (2b: the event follows from them), then add
--   `random` (3b).
--
-- Then the customer is set if given, and the order is finished (status `done`) when `finish`
-- is true. A step that fails, the creation included (a ticket asked for but not reserved, or
-- an order made although its answer was lost), cancels the order, unless `keep_on_error`.
-- A finish whose outcome was unknown may have sold the order: when the cancel is refused and
-- the order read anew is `done`, the flow returns it.
-- @tparam ticketscloud.Client client the client
-- @tparam table opts the flow
-- @tparam[opt] string opts.event the event's id; required with `first = "random"`
-- @tparam[opt] table opts.seats seated tickets by id, `{ TICKET, ... }`; at least one with
--   `first = "seats"`
-- @tparam[opt] table opts.random unseated tickets, `{ [SET] = n }`
-- @tparam[opt="random"] string opts.first `"random"` or `"seats"`: what the order is created
--   with
-- @tparam[opt] table opts.customer `{ name =, email =, phone =, lang = }`, set after the tickets
-- @tparam[opt] boolean opts.finish finish the order (a purchase against the real service)
-- @tparam[opt] table opts.vendor_data for @{ticketscloud.Client:create_order}
-- @tparam[opt] string opts.request_id for @{ticketscloud.Client:create_order}
-- @tparam[opt] boolean opts.keep_on_error leave the order as a failed step left it, instead of
--   cancelling it
-- @tparam[opt] function opts.on_step `on_step(name, order)`, called after every step, with
--   its name: `"create the order with the unseated tickets"`, `"add the seated tickets"`,
--   `"set the customer"`, `"finish the order"`, ...
-- @treturn ticketscloud.order.Order the order
-- @return[2] nil
-- @treturn[2] ticketscloud.Error err: `err.order` the order as the failed step left it (none
--   when no order was made), `err.cancelled` whether the flow cancelled it; kind `"unknown"`
--   with `err.request_id` when an order may exist that the flow could not find
--   (docs/reliability.md); kind `"invalid"` for a `first` other than `"random"` or `"seats"`
-- @raise when `client` or `opts` is not a table, or `seats`, `random`, `customer`,
--   `vendor_data`, `on_step` or `request_id` has the wrong type
-- @usage
-- local order, err = flows.mixed_order(client, {
--     event = EVENT, seats = { SEAT_TICKET }, random = { [FAN_SET] = 1 },
--     customer = { name = "Ivan", email = "ivan@example.com" },
--     finish = true,
--     on_step = function(name, o) print(name, o.values.full) end,
-- })
-- if not order then print(err, err.cancelled) end
function _M.mixed_order(client, opts)
    if type(client) ~= "table" then
        error(("bad argument #1 to 'mixed_order' (client expected, got %s)"):format(type(client)), 2)
    end
    check_arg(opts, "table", "mixed_order", 2)
    local seats = check_field(opts, "seats", "table?", "mixed_order") or {}
    local random = check_field(opts, "random", "table?", "mixed_order") or {}
    local on_step = check_field(opts, "on_step", "function?", "mixed_order") or function() end
    check_field(opts, "customer", "table?", "mixed_order")
    local vendor_data = check_field(opts, "vendor_data", "table?", "mixed_order")
    local request_id = check_field(opts, "request_id", "string?", "mixed_order")
    local keep = opts.keep_on_error
    local first = opts.first or "random"
    local order, err

    if first == "random" then
        -- Nothing random: an empty order of the event (spec §5.7).
        order, err = client:create_order{ event = opts.event, random = next(random) and random or nil,
                                          vendor_data = vendor_data, request_id = request_id }
        if not order then return abandon_creation(client, err, keep) end
        on_step("create the order with the unseated tickets", order)
        if #seats > 0 then
            local ok
            ok, err = order:add_tickets(seats)
            if not ok then return abandon(order, err, keep) end
            on_step("add the seated tickets", order)
        end
    elseif first == "seats" then
        if #seats == 0 then return fail("invalid", 'seats: first = "seats" needs a seated ticket') end
        -- Like the order example's step 2b: the event is inferred from the tickets.
        order, err = client:create_order{ tickets = seats, vendor_data = vendor_data,
                                          request_id = request_id }
        if not order then return abandon_creation(client, err, keep) end
        on_step("create the order with the seated tickets", order)
        if next(random) then
            local ok
            ok, err = order:add_random(random)
            if not ok then return abandon(order, err, keep) end
            on_step("add the unseated tickets", order)
        end
    else
        return fail("invalid", 'first must be "random" or "seats"')
    end

    if opts.customer then
        local ok
        ok, err = order:set_customer(opts.customer)
        if not ok then return abandon(order, err, keep) end
        on_step("set the customer", order)
    end

    if opts.finish then
        local ok
        ok, err = order:finish()
        if not ok then
            local sold
            sold, err = abandon(order, err, keep, true)
            if not sold then return nil, err end
        end
        on_step("finish the order", order)
    end
    return order
end

return _M
