-- examples_spec: the example programs run as a user runs them: against
-- their own sandbox (make demo), and against a "real service" (TC_KEY set),
-- played here by a sandbox the spec starts, where the examples may rely on
-- TC_EVENT and nothing else of the sandbox's catalog.
local tc = require "ticketscloud"
local sandbox = require "ticketscloud.sandbox"

local EVENT = "5d7134962110d30a34e95b96"
local SEAT = "5d7134962110d30a34e95cfe"   -- the order example's seat, row 2 seat 14

local LUA = arg and arg[-1] or "lua5.4"

local function quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- Runs an example with the given environment; returns its output and
-- whether it exited with status 0.
local function run(script, env)
    local unset, vars = {}, { "LUA_PATH=" .. quote(package.path), "LUA_CPATH=" .. quote(package.cpath) }
    env = env or {}
    for _, k in ipairs{ "TC_KEY", "TC_API", "TC_SIMPLE", "TC_EVENT", "TC_FINISH" } do
        if env[k] then vars[#vars + 1] = k .. "=" .. quote(env[k]) else unset[#unset + 1] = "-u " .. k end
    end
    local p = io.popen(("env %s %s timeout 60 %s %s 2>&1; echo \"exit=$?\"")
        :format(table.concat(unset, " "), table.concat(vars, " "), LUA, script))
    local out = p:read("a")
    p:close()
    return out, out:match("exit=(%d+)%s*$") == "0"
end

-- The orders a sandbox holds, counted by status.
local function orders_by_status(sb)
    local c = assert(tc.new{ key = sb.key, api = sb.api })
    local t = {}
    for o in assert(c:orders{ page_size = 200 }) do t[o.status] = (t[o.status] or 0) + 1 end
    c:close()
    return t
end

describe("examples/mixed_order.lua", function()
    it("builds the order example both ways on its own sandbox (make demo)", function()
        local out, ok = run("examples/mixed_order.lua")
        assert.is_true(ok, out)
        assert.matches("> POST /v2/resources/orders {[^\n]*\"event\":\"" .. EVENT, out)
        assert.matches("> PATCH /v2/resources/orders/%x+ {\"tickets\":%[", out)
        assert.matches("> PATCH /v2/resources/orders/%x+ {\"random\":{", out)
        local done = 0
        local line = "order %x+ done: full (%S+) %(([^)]*)%), code %w+, barcodes ([%d ]+)"
        for full, parts, barcodes in out:gmatch(line) do
            assert.equal("7249.00", full)
            assert.equal("6160.00 + 1089.00", parts)
            assert.matches("^%d+ %d+$", barcodes)
            for barcode in barcodes:gmatch("%d+") do assert.equal(17, #barcode) end
            done = done + 1
        end
        assert.equal(2, done, out)
    end)

    describe("against a service given by TC_KEY", function()
        local sb

        before_each(function()
            sb = assert(sandbox.start{ log = "/dev/null" })
        end)

        after_each(function()
            assert.is_true(sb:stop())
        end)

        local function service(extra)
            local env = { TC_KEY = sb.key, TC_API = sb.api, TC_SIMPLE = sb.simple, TC_EVENT = EVENT }
            for k, v in pairs(extra or {}) do env[k] = v end
            return env
        end

        it("knows only TC_EVENT, and leaves the orders unpaid unless TC_FINISH=1", function()
            local out, ok = run("examples/mixed_order.lua", service())
            assert.is_true(ok, out)
            -- The seats come from the service's listing, not from the sandbox's fixtures.
            assert.is_nil(out:find(SEAT, 1, true), out)
            assert.is_nil(out:find("status\":\"done", 1, true), out)
            assert.matches("order %x+ cancelled", out)
            assert.same({ cancelled = 2 }, orders_by_status(sb))

            out, ok = run("examples/mixed_order.lua", service{ TC_FINISH = "1" })
            assert.is_true(ok, out)
            assert.matches("order %x+ done: full 7249.00", out)
            assert.same({ cancelled = 2, done = 2 }, orders_by_status(sb))
        end)

        it("needs TC_EVENT and sends nothing without it", function()
            local env = service()
            env.TC_EVENT = nil
            local out, ok = run("examples/mixed_order.lua", env)
            assert.is_false(ok, out)
            assert.matches("TC_EVENT", out)
            assert.same({}, orders_by_status(sb))
            -- An empty variable counts as unset.
            out, ok = run("examples/mixed_order.lua", service{ TC_EVENT = "" })
            assert.is_false(ok, out)
            assert.matches("TC_EVENT", out)
        end)
    end)
end)

describe("examples/seats.lua", function()
    it("lists the vacant seats of the order example's event", function()
        local out, ok = run("examples/seats.lua")
        assert.is_true(ok, out)
        local first = "5d7134962110d30a34e95cdd  A2       sector 5a8dd58e6e55b2064c67c144"
        assert.matches(first .. "  row   1  seat   1", out, 1, true)
        assert.matches("%d+ vacant in set A2", out)
    end)
end)
