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

local tc = require "ticketscloud"

local type = type
local next = next

local _M = {}

-- Runs one step; on failure cancels the order (so its tickets go back on
-- sale) and returns nil, err with err.order set to the order as it was.
local function fail(order, err, keep)
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
-- done) when finish is true. opts.keep_on_error = true leaves a failed order
-- as it is instead of cancelling it. opts.on_step(name, order), if given, is
-- called after every step. Returns the order, or nil, err.
function _M.mixed_order(client, opts)
    local seats, random = opts.seats or {}, opts.random or {}
    local first = opts.first or "random"
    local on_step = opts.on_step or function() end
    local order, err

    if first == "random" then
        order, err = client:create_order{ event = opts.event, random = random }
        if not order then return nil, err end
        on_step("create the order with the unseated tickets", order)
        if #seats > 0 then
            local ok
            ok, err = order:add_tickets(seats)
            if not ok then return fail(order, err, opts.keep_on_error) end
            on_step("add the seated tickets", order)
        end
    elseif first == "seats" then
        -- Like the order example's step 2b: the event is inferred from the tickets.
        order, err = client:create_order{ tickets = seats }
        if not order then return nil, err end
        on_step("create the order with the seated tickets", order)
        if next(random) then
            local ok
            ok, err = order:add_random(random)
            if not ok then return fail(order, err, opts.keep_on_error) end
            on_step("add the unseated tickets", order)
        end
    else
        return nil, tc.error{ kind = "invalid", messages = { 'first must be "random" or "seats"' } }
    end

    if opts.customer then
        local ok
        ok, err = order:set_customer(opts.customer)
        if not ok then return fail(order, err, opts.keep_on_error) end
        on_step("set the customer", order)
    end

    if opts.finish then
        local ok
        ok, err = order:finish()
        if not ok then return fail(order, err, opts.keep_on_error) end
        on_step("finish the order", order)
    end
    return order
end

return _M
