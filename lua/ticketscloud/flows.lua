-- ticketscloud.flows: whole sales flows composed from the order helpers.
--
-- Each flow is short, plain Lua: copy one and change it to script your own.
--
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

-- The order example's mixed order: seated tickets chosen by id plus unseated
-- tickets as a count per set, in either order (spec: the order example).
--
--   first = "random": create with random (2a), then add the seats (3a);
--   first = "seats":  create with the seats (2b), then add random (3b).
--
-- Then the customer is set if given, and the order is finished (status
-- done) when finish is true. vendor_data and request_id go to
-- client:create_order. A step that fails, the creation included (a ticket
-- asked for but not reserved, or an order made although its answer was
-- lost), cancels the order; opts.keep_on_error = true leaves it as it is.
-- opts.on_step(name, order), if given, is called after every step.
-- Returns the order, or nil, err: err.order is the order as the failed step
-- left it, err.cancelled whether the flow cancelled it; kind "unknown" when
-- an order may exist that the flow could not find (err.request_id, see
-- docs/reliability.md).
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
