-- The trace option over real sockets: each REST request and each catalogue
-- stream is seen once, with its status and the seconds it took.

local sandbox = require "ticketscloud.sandbox"
local tc = require "ticketscloud"

local SLIPKNOT = "5d7134962110d30a34e95b96"

describe("trace", function()
    local sb, client, seen

    lazy_setup(function()
        sb = assert(sandbox.start{ log = "/dev/null" })
    end)

    lazy_teardown(function()
        assert.is_true(sb:stop())
    end)

    before_each(function()
        seen = {}
        client = assert(tc.new{ key = sb.key, api = sb.api, simple = sb.simple,
            trace = function(...)
                seen[#seen + 1] = { n = select("#", ...), ... }
            end })
    end)

    after_each(function() client:close() end)

    it("a REST request: method, path, body, status and the seconds it took", function()
        assert(client:order("5d7134962110d30a34e95b00") == nil)
        assert.equal(1, #seen)
        local t = seen[1]
        assert.equal(5, t.n)
        assert.equal("GET", t[1])
        assert.equal("/v2/resources/orders/5d7134962110d30a34e95b00", t[2])
        assert.is_nil(t[3])
        assert.is_number(t[4])
        assert.is_number(t[5])
        assert.is_true(t[5] >= 0 and t[5] < 10)
    end)

    it("a catalogue stream, once at its end: status 0", function()
        local n = 0
        for _ in assert(client:events{}) do n = n + 1 end
        assert.is_true(n > 0)
        assert.equal(1, #seen)
        local t = seen[1]
        assert.equal(5, t.n)
        assert.same({ "GRPC", "/v3.Simple/Events" }, { t[1], t[2] })
        assert.is_nil(t[3])
        assert.equal(0, t[4])
        assert.is_true(t[5] >= 0 and t[5] < 10)
    end)

    it("a stream that fails: the gRPC status; calls after the end do not trace again", function()
        local bad = assert(tc.new{ key = "wrong-key-0000", simple = sb.simple,
            trace = function(...) seen[#seen + 1] = { ... } end })
        local seats = assert(bad:seats{ event = SLIPKNOT })
        local item, err = seats()
        assert.is_nil(item)
        assert.equal("auth", err.kind)
        seats()
        seats:close()
        assert.equal(1, #seen)
        assert.same({ "GRPC", "/v3.Simple/Seats" }, { seen[1][1], seen[1][2] })
        assert.equal(16, seen[1][4]) -- UNAUTHENTICATED
        bad:close()
    end)

    it("a stream closed before its end: status nil, once", function()
        local seats = assert(client:seats{ event = SLIPKNOT })
        assert.is_table(seats())
        seats:close()
        seats:close()
        assert.equal(1, #seen)
        assert.equal("/v3.Simple/Seats", seen[1][2])
        assert.is_nil(seen[1][4])
        assert.is_number(seen[1][5])
    end)

    it("a stream collected unfinished or cancelled with its client is not traced", function()
        local seats = assert(client:seats{ event = SLIPKNOT })
        assert.is_table(seats())
        client:close()
        local _, err = seats()
        assert.equal("invalid", err.kind)
        seats = nil -- luacheck: ignore
        collectgarbage()
        collectgarbage()
        assert.equal(0, #seen)
    end)
end)
