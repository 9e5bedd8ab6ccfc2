-- Fork spec: a client belongs to the process that made it. nginx forks its
-- workers from a master that may hold one (a client made in init_by_lua);
-- in the child a call must be refused, not share the parent's connection
-- nor wait forever on gRPC threads that did not survive the fork, and
-- letting the client go must not disturb the parent.
--
-- LuaJIT's FFI does the fork (spec/helpers/fork.lua), on the LuaJIT build of
-- the module in TC_LUAJIT_CPATH (tools/test sets it); pending without it.
local sandbox = require "ticketscloud.sandbox"

local EVENT = "5d7134962110d30a34e95b96"
local CPATH = os.getenv("TC_LUAJIT_CPATH")

local function quote(s)
    return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

if not CPATH then
    describe("a client across fork", function()
        pending("TC_LUAJIT_CPATH is not set: the LuaJIT build of the module, " ..
                "e.g. build/luajit/?.so after make LUA=luajit module")
    end)
    return
end

describe("a client across fork", function()
    local sb
    local seen = {} -- name -> value, printed by the helper

    lazy_setup(function()
        sb = assert(sandbox.start{ log = "/dev/null" })
        -- timeout: before the fix the child waited forever on gRPC.
        local cmd = table.concat({
            "env -u LD_PRELOAD", "LUA_PATH='lua/?.lua;lua/?/init.lua;;'",
            "LUA_CPATH=" .. quote(CPATH .. ";;"),
            "timeout 30 luajit spec/helpers/fork.lua",
            quote(sb.api), quote(sb.simple), quote(sb.key), EVENT, "2>&1",
        }, " ")
        local p = assert(io.popen(cmd, "r"))
        for line in p:lines() do
            local name, value = line:match("^([%w_]+)=(.*)$")
            if name then seen[name] = value else seen.output = (seen.output or "") .. line .. "\n" end
        end
        p:close()
    end)

    lazy_teardown(function()
        if sb then sb:stop() end
    end)

    local REFUSED = "^invalid: made in process %d+, before a fork: make a client in the process that uses it$"

    it("works in the parent before the fork", function()
        assert.equal("ok", seen.parent_rest, seen.output)
        assert.equal("ok", seen.parent_seat, seen.output)
    end)

    it("refuses REST in the child instead of sharing the parent's connection", function()
        assert.truthy((seen.child_rest or ""):match(REFUSED), seen.child_rest or seen.output)
    end)

    it("refuses the parent's open stream and channel in the child instead of hanging", function()
        assert.truthy((seen.child_seat or ""):match(REFUSED), seen.child_seat or seen.output)
        assert.truthy((seen.child_stream or ""):match(REFUSED), seen.child_stream or seen.output)
    end)

    it("closes the parent's client in the child at once, and the child exits cleanly", function()
        assert.equal("true", seen.child_close_stream, seen.output)
        assert.equal("true", seen.child_close, seen.output)
        assert.equal("yes", seen.child_done, seen.output)
        assert.equal("0", seen.child_status, seen.output)
    end)

    it("leaves the parent's connection and stream to the parent", function()
        assert.equal("ok", seen.parent_rest_after, seen.output)
        assert.equal("1", seen.parent_connects, seen.output) -- the same connection
        assert.equal("ok", seen.parent_seats_after, seen.output)
        assert.equal("yes", seen.parent_done, seen.output)
    end)
end)
