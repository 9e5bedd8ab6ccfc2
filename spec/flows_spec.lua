-- flows.mixed_order against the sandbox: both sequences of the order
-- example, to the kopeck, and what happens when a step fails.
local tc = require "ticketscloud"
local flows = require "ticketscloud.flows"
local sandbox = require "ticketscloud.sandbox"
local cjson = require "cjson"

local EVENT = "5d7134962110d30a34e95b96"
local FAN = "5d7135112110d30a34e97e2d"   -- "Фан зона", 5600.00, unseated
local A2 = "5d71353b2110d30a34e97e31"    -- "A2", 990.00, seated
local SEAT = "5d7134962110d30a34e95cfe"  -- A2, row 2 seat 14
local VIP = "5d713505255895db3c30b0c5"   -- 6666.00, unseated, 30 tickets

describe("flows.mixed_order", function()
    local sb, client

    before_each(function()
        sb = assert(sandbox.start())
        client = assert(tc.new{ key = sb.key, api = sb.api, simple = sb.simple })
    end)

    after_each(function()
        client:close()
        assert.is_true(sb:stop())
    end)

    local function by_set(order)
        local t = {}
        for _, ticket in ipairs(order.tickets) do t[ticket.set] = ticket end
        return t
    end

    local function check_done(order)
        assert.equal("done", order.status)
        assert.equal(2, #order.tickets)
        local t = by_set(order)
        assert.equal("6160.00", t[FAN].full)
        assert.equal("560.00", t[FAN].extra)
        assert.is_nil(t[FAN].seat)
        assert.equal("1089.00", t[A2].full)
        assert.equal("99.00", t[A2].extra)
        assert.same({ row = "2", number = "14", sector = "5a8dd58e6e55b2064c67c144" }, t[A2].seat)
        assert.equal(SEAT, t[A2].id)
        assert.equal("6590.00", order.values.price)
        assert.equal("0.00", order.values.discount)
        assert.equal("6590.00", order.values.nominal)
        assert.equal("659.00", order.values.extra)
        assert.equal("7249.00", order.values.full)
        for _, ticket in ipairs(order.tickets) do
            assert.is_string(ticket.barcode)
            assert.matches("^%d+$", ticket.barcode)
            assert.equal("reserved", ticket.status)
        end
        assert.matches("^[a-z0-9]+$", order.code)
        assert.is_string(order.done_at)
    end

    it("builds path A: random first, then the seat, then done", function()
        local steps = {}
        local order = assert(flows.mixed_order(client, {
            event = EVENT, seats = { SEAT }, random = { [FAN] = 1 }, first = "random", finish = true,
            on_step = function(step, o)
                steps[#steps + 1] = { step = step, n = #o.tickets, full = o.values.full }
            end,
        }))
        check_done(order)
        assert.same({
            { step = "create the order with the unseated tickets", n = 1, full = "6160.00" },
            { step = "add the seated tickets", n = 2, full = "7249.00" },
            { step = "finish the order", n = 2, full = "7249.00" },
        }, steps)
        -- The unseated ticket of step 2a is the one kept in step 3a.
        assert.equal(FAN, order.tickets[1].set)
    end)

    it("builds path B: the seat first, then random naming both sets, then done", function()
        local steps = {}
        local order = assert(flows.mixed_order(client, {
            event = EVENT, seats = { SEAT }, random = { [FAN] = 1 }, first = "seats", finish = true,
            on_step = function(step, o)
                steps[#steps + 1] = { step = step, n = #o.tickets, full = o.values.full }
            end,
        }))
        check_done(order)
        assert.same({
            { step = "create the order with the seated tickets", n = 1, full = "1089.00" },
            { step = "add the unseated tickets", n = 2, full = "7249.00" },
            { step = "finish the order", n = 2, full = "7249.00" },
        }, steps)
        -- Step 3b kept the very seat of step 2b.
        assert.equal(SEAT, order.tickets[1].id)
    end)

    it("sets the customer when asked", function()
        local customer = { name = "Ivan", email = "ivan@example.com", phone = "+79991234576", lang = "ru" }
        local order = assert(flows.mixed_order(client, {
            event = EVENT, seats = { SEAT }, random = { [FAN] = 1 }, customer = customer,
        }))
        assert.equal("executed", order.status)
        assert.same(customer, order.settings.customer)
        local again = assert(client:order(order.id))
        assert.same(customer, again.settings.customer)
    end)

    it("cancels the partial order when the seat is taken, and reports the seat", function()
        -- Someone else holds the seat.
        local other = assert(client:create_order{ tickets = { SEAT } })
        local order, err = flows.mixed_order(client, {
            event = EVENT, seats = { SEAT }, random = { [FAN] = 1 }, first = "random", finish = true,
        })
        assert.is_nil(order)
        assert.equal("api", err.kind)
        assert.matches(SEAT, tostring(err))
        -- The partial order was cancelled: its unseated ticket is back on sale.
        assert.equal("cancelled", err.order.status)
        local fresh = assert(client:order(err.order.id))
        assert.equal("cancelled", fresh.status)
        -- The other order still holds its seat.
        other = assert(client:order(other.id))
        assert.equal(SEAT, other.tickets[1].id)
    end)

    it("keeps the partial order when keep_on_error is set", function()
        assert(client:create_order{ tickets = { SEAT } })
        local order, err = flows.mixed_order(client, {
            event = EVENT, seats = { SEAT }, random = { [FAN] = 1 }, first = "random",
            keep_on_error = true,
        })
        assert.is_nil(order)
        assert.equal("executed", err.order.status)
        assert.equal(1, #err.order.tickets)
        assert.equal(FAN, err.order.tickets[1].set)
    end)

    -- The orders the sandbox holds, by status.
    local function statuses()
        local t = {}
        for o in assert(client:orders{ page_size = 200 }) do t[o.status] = (t[o.status] or 0) + 1 end
        return t
    end

    it("cancels the order when its creation could not reserve everything", function()
        local order, err = flows.mixed_order(client, {
            event = EVENT, seats = { SEAT }, random = { [VIP] = 31 }, first = "random",
        })
        assert.is_nil(order)
        assert.equal("api", err.kind)
        assert.equal(31, err.sets[VIP].wanted)
        assert.equal("cancelled", err.order.status)
        assert.same({ cancelled = 1 }, statuses())
        -- Every VIP ticket is back on sale.
        local all = assert(client:create_order{ event = EVENT, random = { [VIP] = 30 } })
        assert(all:cancel())
        -- keep_on_error keeps it, holding what it got.
        order, err = flows.mixed_order(client, {
            event = EVENT, random = { [VIP] = 31 }, keep_on_error = true,
        })
        assert.is_nil(order)
        assert.equal("executed", err.order.status)
        assert.equal(30, #err.order.tickets)
    end)

    it("creates an empty order when there is nothing random to start with", function()
        local seen = {}
        local c = assert(tc.new{ key = sb.key, api = sb.api,
                                 trace = function(_, _, body) seen[#seen + 1] = body end })
        local order = assert(flows.mixed_order(c, { event = EVENT, seats = { SEAT } }))
        local body = cjson.decode(seen[1])
        assert.is_string(body.vendor_data.raw.tc_request_id)
        body.vendor_data = nil
        assert.same({ event = EVENT }, body)
        assert.equal(SEAT, order.tickets[1].id)
        assert(order:cancel())
        c:close()
    end)

    it("refuses what it cannot build without sending anything", function()
        local cases = {
            { first = "seats", random = { [FAN] = 1 } },               -- no seat to start with
            { first = "seats", seats = {}, random = { [FAN] = 1 } },
            { seats = { SEAT } },                                      -- random first, no event
        }
        for i, opts in ipairs(cases) do
            local order, err = flows.mixed_order(client, opts)
            assert.is_nil(order, i)
            assert.equal("invalid", err.kind, i)
        end
        assert.same({}, statuses())
    end)

    it("raises on argument type mistakes, naming the field", function()
        local function raises(pattern, ...)
            local ok, msg = pcall(flows.mixed_order, ...)
            assert.is_false(ok)
            assert.matches(pattern, msg)
        end
        raises("bad argument #1 to 'mixed_order'", nil, { event = EVENT })
        raises("bad argument #2 to 'mixed_order'", client, nil)
        raises("bad field 'seats' to 'mixed_order' %(table expected, got string%)",
               client, { event = EVENT, seats = SEAT, random = { [FAN] = 1 } })
        raises("bad field 'random'", client, { event = EVENT, random = 1 })
        raises("bad field 'customer'", client, { event = EVENT, random = { [FAN] = 1 }, customer = "Ivan" })
        raises("bad field 'on_step'", client, { event = EVENT, random = { [FAN] = 1 }, on_step = true })
        assert.same({}, statuses())
    end)

    it("refuses an unknown sequence without sending anything", function()
        local order, err = flows.mixed_order(client, {
            event = EVENT, seats = { SEAT }, random = { [FAN] = 1 }, first = "sideways",
        })
        assert.is_nil(order)
        assert.equal("invalid", err.kind)
        local count = 0
        for o in assert(client:orders{}) do count = count + 1; assert.is_table(o) end
        assert.equal(0, count)
    end)

    it("is not confused by JSON null in the order", function()
        local order = assert(flows.mixed_order(client, {
            event = EVENT, seats = { SEAT }, random = { [FAN] = 1 },
        }))
        for _, ticket in ipairs(order.tickets) do assert.equal(cjson.null, ticket.barcode) end
    end)
end)
