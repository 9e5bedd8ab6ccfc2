-- How ticketscloud.sandbox reads tc-sandbox: a ready line whose targets
-- work as they are (grpc=http://... for plaintext).

local tc = require "ticketscloud"
local sandbox = require "ticketscloud.sandbox"

local function sh(cmd)
    local p = assert(io.popen(cmd))
    local out = p:read("a")
    p:close()
    return out
end

local function quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

describe("sandbox.start", function()
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
