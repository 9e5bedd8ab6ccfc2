-- The representative spec `make test` runs under valgrind memcheck: REST
-- orders, gRPC streams (finished, abandoned and failed), errors, and close,
-- with a full garbage collection after every test so that every __gc path
-- of the C core runs while valgrind watches.
local tc = require "ticketscloud"
local flows = require "ticketscloud.flows"
local sandbox = require "ticketscloud.sandbox"

local EVENT = "5d7134962110d30a34e95b96"
local FAN = "5d7135112110d30a34e97e2d"
local A2 = "5d71353b2110d30a34e97e31"

describe("under valgrind", function()
    local sb

    lazy_setup(function() sb = assert(sandbox.start()) end)
    lazy_teardown(function() assert.is_true(sb:stop()) end)
    after_each(function() collectgarbage(); collectgarbage() end)

    local function new_client(key)
        return assert(tc.new{ key = key or sb.key, api = sb.api, simple = sb.simple })
    end

    it("runs both mixed orders", function()
        local client = new_client()
        for _, first in ipairs{ "random", "seats" } do
            local seat = assert(client:seats{ event = EVENT, sets = { A2 }, status = "VACANT" })()
            local order = assert(flows.mixed_order(client, {
                event = EVENT, seats = { seat.ticket }, random = { [FAN] = 1 }, first = first,
                finish = true,
            }))
            assert.equal("done", order.status)
            assert.equal("7249.00", order.values.full)
        end
        client:close()
    end)

    it("streams to the end, abandons a stream, and leaves one to the collector", function()
        local client = new_client()
        local n = 0
        for seat in assert(client:seats{ event = EVENT }) do n = n + (seat.ticket and 1 or 0) end
        assert.is_true(n > 0)
        local seats = assert(client:seats{ event = EVENT })
        assert.is_table(seats())
        seats:close()
        local events = assert(client:events{})
        assert.is_table(events())
        events = nil -- luacheck: ignore
        client = nil -- luacheck: ignore
    end)

    it("reads listings whole, and refuses one past its cap", function()
        local core = require "ticketscloud.core"
        local client = new_client()
        local chunks, n, type_name = assert(client:seats{ event = EVENT }):read_all(1024 * 1024, 500)
        local seen = 0
        for _, chunk in ipairs(chunks) do
            local pos = 1
            repeat
                local seat, nxt = core.decode_at(type_name, chunk, pos)
                if seat then seen, pos = seen + 1, nxt end
            until not seat
        end
        assert.equal(n, seen)
        local _, err = assert(client:seats{ event = EVENT }):read_all(300)
        assert.equal("transport", err.kind)
        client:close()
    end)

    it("fails cleanly: bad key on both transports, unknown order, closed client", function()
        local client = new_client("wrong-key")
        local events = assert(client:events{})
        assert.is_nil(events())
        assert.equal("auth", events:error().kind)
        local order, err = client:create_order{ event = EVENT }
        assert.is_nil(order)
        assert.equal("auth", err.kind)
        client:close()

        client = new_client()
        order, err = client:order("000000000000000000000000")
        assert.is_nil(order)
        assert.equal("not_found", err.kind)
        client:close()
        client:close()
        order, err = client:order("000000000000000000000000")
        assert.is_nil(order)
        assert.is_table(err)
    end)
end)
