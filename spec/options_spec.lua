-- The client's options policy has one owner (src/options.c): tc.new, the
-- REST transport (core.http) and the gRPC channel (core.channel) accept and
-- refuse exactly the same options, with nil, err (kind "invalid").

local core = require "ticketscloud.core"
local tc = require "ticketscloud"

local KEY = "9bd8359943b545500278875r49c5b96d"

-- The three owners-to-be: each returns the object or nil, err.
local function makers(opts)
    local function with(extra)
        local t = { key = KEY }
        for k, v in pairs(opts) do t[k] = v end
        for k, v in pairs(extra or {}) do t[k] = v end
        return t
    end
    return {
        new = function() return tc.new(with()) end,
        http = function() return core.http(with()) end,
        channel = function() return core.channel(with()) end,
    }
end

local function refused_by_all(opts, pattern)
    for name, make in pairs(makers(opts)) do
        local obj, err = make()
        assert.is_nil(obj, name)
        assert.equal("invalid", err.kind, name)
        assert.matches(pattern, tostring(err), 1, true)
        assert.is_nil(tostring(err):find(KEY, 1, true), name)
    end
end

local function accepted_by_all(opts)
    for name, make in pairs(makers(opts)) do
        local obj, err = make()
        assert.is_not_nil(obj, name .. ": " .. tostring(err))
        obj:close()
    end
end

describe("options policy", function()
    it("loopback is localhost as documented, 127.0.0.0/8 or ::1, in both transports", function()
        accepted_by_all{ api = "http://localhost:1", simple = "http://localhost:1" }
        accepted_by_all{ api = "http://127.1.2.3:1", simple = "http://127.1.2.3:1" }
        accepted_by_all{ api = "http://[::1]:1", simple = "http://[::1]:1" }
        -- LOCALHOST was accepted by the REST rule and refused by the gRPC one:
        -- the stricter rule now holds for both.
        refused_by_all({ api = "http://LOCALHOST:1" }, "api: ")
        refused_by_all({ simple = "http://LOCALHOST:1" }, "simple: ")
        refused_by_all({ api = "http://10.0.0.1:1" }, "loopback")
        refused_by_all({ simple = "http://10.0.0.1:1" }, "loopback")
    end)

    it("a key is 1 to 256 printable characters without spaces, in both transports", function()
        accepted_by_all{ key = ("k"):rep(256) }
        refused_by_all({ key = ("k"):rep(257) }, "key: ")
        refused_by_all({ key = "a b" }, "key: ")
        refused_by_all({ key = "a\0b" }, "key: ")
        refused_by_all({ key = "ключ" }, "key: ")
        refused_by_all({ key = "" }, "key: ")
    end)

    it("a timeout over 86,400 s is nil, err, not a raised error", function()
        accepted_by_all{ timeout = 86400 }
        accepted_by_all{ timeout = 0.001 }
        refused_by_all({ timeout = 100000 }, "timeout: ")
        refused_by_all({ timeout = 0 }, "timeout: ")
        refused_by_all({ timeout = 0 / 0 }, "timeout: ")
        refused_by_all({ timeout = math.huge }, "timeout: ")
    end)

    it("the client's other timeouts follow the same rule", function()
        for _, field in ipairs{ "deadline", "list_timeout" } do
            for _, bad in ipairs{ 100000, 0, 0 / 0, -1 } do
                local c, err = tc.new{ key = KEY, [field] = bad }
                assert.is_nil(c)
                assert.equal("invalid", err.kind)
                assert.matches(field .. ": a number of seconds in (0, 86400] expected",
                               tostring(err), 1, true)
            end
            local c = assert(tc.new{ key = KEY, [field] = 86400 })
            c:close()
        end
    end)

    it("a language is 1 to 35 printable ASCII characters, in both transports", function()
        accepted_by_all{ language = "en-US, ru;q=0.8" }
        refused_by_all({ language = "ru\0" }, "language: ")
        refused_by_all({ language = "" }, "language: ")
        refused_by_all({ language = ("x"):rep(36) }, "language: ")
        refused_by_all({ language = "рус" }, "language: ")
    end)

    it("fills the defaults in one place", function()
        local o = assert(core.options{ key = KEY })
        assert.same({ key = KEY, api = "https://ticketscloud.com",
                      simple = "simple.ticketscloud.com:443", timeout = 10, language = "ru",
                      insecure = false }, o)
        assert.has_error(function() core.options{ key = KEY, timeout = "10" } end,
                         "bad field 'timeout' to 'new' (number expected, got string)")
    end)
end)

describe("request rules", function()
    it("the nginx transport and libcurl refuse the same paths and headers", function()
        local http = assert(core.http{ key = KEY, api = "http://127.0.0.1:1", timeout = 1 })
        local cases = {
            { "GET", "orders", nil, "path: must start with '/'" },
            { "GET", "/a b", nil, "printable ASCII" },
            { "GET", "/\1", nil, "printable ASCII" },
            { "GET", "/x", { Authorization = "key other" }, "Authorization" },
            { "GET", "/x", { ["X-A"] = "a\nb" }, "control characters" },
            { "GET", "/x", { ["X A"] = "v" }, "not a token" },
            { "GET", "/x", { [1] = "v" }, "must be strings" },
        }
        for _, c in ipairs(cases) do
            local ok, err = core.check_request(c[1], c[2], c[3])
            assert.is_nil(ok)
            assert.equal("invalid", err.kind)
            assert.matches(c[4], tostring(err), 1, true)
            local status, err2 = http:request(c[1], c[2], nil, { headers = c[3] })
            assert.is_nil(status)
            assert.equal(tostring(err), tostring(err2))
        end
        assert.is_true(core.check_request("PATCH", "/v2/resources/orders/x", { ["X-A"] = "b" }))
        assert.is_nil(core.check_request("TRACE", "/"))
        http:close()
    end)
end)
