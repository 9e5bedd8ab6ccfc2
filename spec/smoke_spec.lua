-- Smoke spec: the module's main paths on whichever VM runs it (this one is
-- run on LuaJIT by `make test`; the full suite runs on Lua 5.4).
local tc = require "ticketscloud"
local flows = require "ticketscloud.flows"
local sandbox = require "ticketscloud.sandbox"

local EVENT = "5d7134962110d30a34e95b96"
local FAN = "5d7135112110d30a34e97e2d"
local SEAT = "5d7134962110d30a34e95cfe"

describe("smoke (" .. (jit and jit.version or _VERSION) .. ")", function()
    local sb, client

    lazy_setup(function()
        sb = assert(sandbox.start())
        client = assert(tc.new{ key = sb.key, api = sb.api, simple = sb.simple })
    end)

    lazy_teardown(function()
        client:close()
        assert.is_true(sb:stop())
    end)

    it("does exact money", function()
        assert.equal(560000, tc.money.parse("5600.00"))
        assert.equal("7249.00", tc.money.format(tc.money.parse("6160.00") + tc.money.parse("1089.00")))
    end)

    it("streams events and seats", function()
        local names = {}
        local events = assert(client:events{ ids = { EVENT } })
        for event in events do names[#names + 1] = event.name end
        assert.is_nil(events:error())
        assert.same({ "Slipknot" }, names)

        local seats = assert(client:seats{ event = EVENT, tickets = { SEAT } })
        local seat = seats()
        assert.equal("VACANT", seat.status)
        assert.equal("2", seat.row)
        assert.equal("14", seat.number)
        assert.is_nil(seats())
    end)

    it("builds and finishes a mixed order", function()
        local order = assert(flows.mixed_order(client, {
            event = EVENT, seats = { SEAT }, random = { [FAN] = 1 }, first = "seats", finish = true,
        }))
        assert.equal("done", order.status)
        assert.equal("7249.00", order.values.full)
    end)

    it("stops a sandbox its script forgot to stop, when the script ends", function()
        local lua = arg and arg[-1] or (jit and "luajit" or "lua5.4")
        local script = 'local sb = assert(require("ticketscloud.sandbox").start()) print(sb.pid)'
        local p = assert(io.popen(("timeout 20 %s -e '%s'; echo status=$?"):format(lua, script)))
        local out = p:read("*a")
        p:close()
        local pid = tonumber(out:match("^(%d+)"))
        assert.is_number(pid, out)
        assert.matches("status=0", out)
        local alive = os.execute("kill -0 " .. pid .. " 2>/dev/null") -- true (5.4) or 0 (LuaJIT)
        assert.is_false(alive == true or alive == 0, "the sandbox is still running")
    end)

    it("returns readable errors without the key", function()
        local bad = assert(tc.new{ key = "not-the-key", api = sb.api, simple = sb.simple })
        local order, err = bad:create_order{ event = EVENT }
        assert.is_nil(order)
        assert.equal("auth", err.kind)
        assert.equal(401, err.status)
        assert.not_matches("not%-the%-key", tostring(err))
        bad:close()
    end)
end)
