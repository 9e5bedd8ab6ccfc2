-- How ticketscloud.sandbox finds and reads tc-sandbox: a checkout's own
-- build when neither bin, $TC_SANDBOX nor PATH name one, and a ready line
-- whose targets work as they are (grpc=http://... for plaintext).

local tc = require "ticketscloud"
local sandbox = require "ticketscloud.sandbox"

local function sh(cmd)
    local p = assert(io.popen(cmd))
    local out = p:read("a")
    p:close()
    return out
end

local function quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local ROOT = sh("pwd"):gsub("\n$", "")

-- Runs CODE in a fresh lua5.4 from CWD (default /tmp), with this checkout's
-- module, no $TC_SANDBOX and a PATH without tc-sandbox; LUA_PATH names LUADIR.
local function run(code, luadir, cwd)
    return sh("cd " .. quote(cwd or "/tmp") .. " && env -u TC_SANDBOX PATH=/usr/bin:/bin"
        .. " LUA_PATH=" .. quote(luadir .. "/?.lua;" .. luadir .. "/?/init.lua;;")
        .. " LUA_CPATH=" .. quote(ROOT .. "/build/lua5.4/?.so;;")
        .. " lua5.4 -e " .. quote(code) .. " 2>&1")
end

describe("sandbox.start", function()
    it("finds the checkout's build/tc-sandbox without bin, $TC_SANDBOX or PATH", function()
        local code = [[
            local sandbox = require "ticketscloud.sandbox"
            local sb, err = sandbox.start{ log = "/dev/null" }
            if not sb then print("failed: " .. tostring(err)) os.exit(1) end
            print("started " .. sb.simple)
            print(sb:stop() and "stopped" or "not stopped")
        ]]
        -- lua/ named by its full path, from elsewhere
        assert.matches("started http://127%.0%.0%.1:%d+\nstopped", run(code, ROOT .. "/lua"))
        -- LUA_PATH="lua/?.lua;...", from the checkout
        assert.matches("started http://127%.0%.0%.1:%d+\nstopped", run(code, "lua", ROOT))
    end)

    it("says where it looked when there is no build", function()
        local dir = os.tmpname()
        os.remove(dir)
        sh("mkdir -p " .. quote(dir .. "/lua") .. " && cp -r " .. quote(ROOT .. "/lua/ticketscloud")
           .. " " .. quote(dir .. "/lua/"))
        local out = run([[
            local sb, err = require("ticketscloud.sandbox").start{}
            print(sb, err.kind, tostring(err))
        ]], dir .. "/lua")
        sh("rm -rf " .. quote(dir))
        assert.matches("^nil\ttransport\t", out)
        assert.truthy(out:find("tc-sandbox not found: not on PATH, not at " .. dir .. "/build/tc-sandbox",
                               1, true), out)
    end)

    it("reads the ready line: grpc= is a plaintext target that works as it is", function()
        local p = assert(io.popen("exec " .. quote(os.getenv("TC_SANDBOX") or "build/tc-sandbox")
            .. " --http 127.0.0.1:0 --grpc 127.0.0.1:0 2>/dev/null & echo $!; wait"))
        local pid = p:read("l")
        local line = p:read("l")
        local api, simple = line:match("^tc%-sandbox ready http=(%S+) grpc=(%S+)$")
        assert.matches("^http://127%.0%.0%.1:%d+$", api)
        assert.matches("^http://127%.0%.0%.1:%d+$", simple)
        -- pasted as they are, both targets serve a client
        local c = assert(tc.new{ key = sandbox.DEFAULT_KEY, api = api, simple = simple })
        local n, stream = 0, assert(c:events())
        for _ in stream do n = n + 1 end
        local err = stream:error()
        local orders = c:orders{ page_size = 1 }
        local first = orders and orders()
        c:close()
        sh("kill -TERM " .. pid)
        p:close()
        assert.is_nil(err)
        assert.is_true(n > 0)
        assert.is_truthy(orders)
        assert.is_nil(orders:error())
        assert.is_nil(first) -- a new sandbox has no orders yet

        local sb = assert(sandbox.start{ log = "/dev/null" })
        assert.are.equal("http://" .. sb.grpc, sb.simple)
        assert.is_true(sb:stop())
    end)
end)
