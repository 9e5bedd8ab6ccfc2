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
local type = type
local next = next

local check_arg = core.check_arg
local check_field = core.check_field
local fail = core.fail

local _M = { _VERSION = core._VERSION }

-- After a failed step: cancels the order, unless keep is set, so that its
-- tickets go back on sale, and returns nil, err with err.order set to the
-- order (then cancelled).
local function abandon(order, err, keep)
    if order and not keep and order.status == "executed" then
        order:cancel()
    end
    if type(err) == "table" then err.order = order end
    return nil, err
end

-- The order example's mixed order: seated tickets chosen by id plus unseated
-- tickets as a count per set, in either order (spec: the order example).
--
--   first = "random": create with random (2a), then add the seats (3a);
--   first = "seats":  create with the seats (2b), then add random (3b).
--
-- Then the customer is set if given, and the order is finished (status
-- done) when finish is true. A step that fails, the creation included (a
-- ticket asked for but not reserved), cancels the order; opts.keep_on_error
-- = true leaves it as it is instead. opts.on_step(name, order), if given, is
-- called after every step. Returns the order, or nil, err (err.order is the
-- order as the failed step left it).
function _M.mixed_order(client, opts)
    if type(client) ~= "table" then
        error(("bad argument #1 to 'mixed_order' (client expected, got %s)"):format(type(client)), 2)
    end
    check_arg(opts, "table", "mixed_order", 2)
    local seats = check_field(opts, "seats", "table?", "mixed_order") or {}
    local random = check_field(opts, "random", "table?", "mixed_order") or {}
    local on_step = check_field(opts, "on_step", "function?", "mixed_order") or function() end
    check_field(opts, "customer", "table?", "mixed_order")
    local first = opts.first or "random"
    local order, err

    if first == "random" then
        -- Nothing random: an empty order of the event (spec §5.7).
        order, err = client:create_order{ event = opts.event, random = next(random) and random or nil }
        -- A creation that did not reserve everything still made an order.
        if not order then return abandon(err and err.order, err, opts.keep_on_error) end
        on_step("create the order with the unseated tickets", order)
        if #seats > 0 then
            local ok
            ok, err = order:add_tickets(seats)
            if not ok then return abandon(order, err, opts.keep_on_error) end
            on_step("add the seated tickets", order)
        end
    elseif first == "seats" then
        if #seats == 0 then return fail("invalid", 'seats: first = "seats" needs a seated ticket') end
        -- Like the order example's step 2b: the event is inferred from the tickets.
        order, err = client:create_order{ tickets = seats }
        if not order then return abandon(err and err.order, err, opts.keep_on_error) end
        on_step("create the order with the seated tickets", order)
        if next(random) then
            local ok
            ok, err = order:add_random(random)
            if not ok then return abandon(order, err, opts.keep_on_error) end
            on_step("add the unseated tickets", order)
        end
    else
        return fail("invalid", 'first must be "random" or "seats"')
    end

    if opts.customer then
        local ok
        ok, err = order:set_customer(opts.customer)
        if not ok then return abandon(order, err, opts.keep_on_error) end
        on_step("set the customer", order)
    end

    if opts.finish then
        local ok
        ok, err = order:finish()
        if not ok then return abandon(order, err, opts.keep_on_error) end
        on_step("finish the order", order)
    end
    return order
end

return _M
