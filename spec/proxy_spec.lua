-- The proxy and user_agent options (src/options.c), over real sockets: a
-- request goes through the proxy option's server and carries the
-- application's name; without the option, a proxy in the environment is
-- not used.

local tc = require "ticketscloud"
local sandbox = require "ticketscloud.sandbox"

local KEY = "9bd8359943b545500278875r49c5b96d"
local LUA = arg and arg[-1] or "lua5.4" -- the interpreter running the specs (the sanitizer step's host too)
-- Helper programs run without the sanitizer runtime a SAN=1 run preloads.
local CANNED = "env -u LD_PRELOAD lua5.4 spec/helpers/canned_http.lua "

local function quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- A one-shot server (spec/helpers/canned_http.lua): the pipe and its URL.
local function canned(status, body)
    local p = io.popen(CANNED .. status .. " " .. quote(body))
    local port = p:read("*l"):match("port (%d+)")
    return p, "http://127.0.0.1:" .. port
end

describe("proxy and user_agent", function()
    it("are checked by tc.new, core.http and core.channel alike", function()
        local core = require "ticketscloud.core"
        for _, bad in ipairs{ { proxy = "" }, { proxy = "socks5://127.0.0.1:1" },
                              { proxy = "http://a b" }, { proxy = "http://x\n" },
                              { user_agent = "" }, { user_agent = ("a"):rep(65) },
                              { user_agent = "app\r\nX-Evil: 1" }, { user_agent = "прил" } } do
            for name, make in pairs{ new = tc.new, http = core.http, channel = core.channel } do
                local opts = { key = KEY }
                for k, v in pairs(bad) do opts[k] = v end
                local obj, err = make(opts)
                assert.is_nil(obj, name)
                assert.equal("invalid", err.kind)
                assert.matches("^" .. next(bad) .. ": ", err.messages[1])
            end
        end
        assert.has_error(function() tc.new{ key = KEY, proxy = 1 } end)
        local c = assert(tc.new{ key = KEY, proxy = "https://user:pw@proxy.example:3128",
                                 user_agent = ("a"):rep(64) })
        assert.equal("https://user:pw@proxy.example:3128", c.options.proxy)
        c:close()
    end)

    it("a request goes through the proxy and carries the application's name", function()
        local p, url = canned("200", '{"data": []}')
        -- Nothing listens on the API's port: only the proxy can answer.
        local c = assert(tc.new{ key = KEY, api = "http://127.0.0.1:1", proxy = url,
                                 user_agent = "shop/2.1" })
        local doc, err = c:send{ method = "GET", path = "/v2/resources/events" }
        local seen = p:read("a")
        p:close()
        assert.is_table(doc, tostring(err))
        assert.matches("^GET http://127.0.0.1:1/v2/resources/events HTTP/1.1", seen)
        assert.matches("User-Agent: shop/2.1 lua-ticketscloud/" .. tc._VERSION .. "\n", seen,
                       1, true)
        c:close()
    end)

    it("the gRPC channel carries the application's name too", function()
        local p = io.popen("env -u LD_PRELOAD -u ASAN_OPTIONS -u LSAN_OPTIONS -u UBSAN_OPTIONS "
                           .. "/usr/bin/python3 spec/helpers/echo_grpc.py user-agent")
        local port = assert(p:read("*l"):match("port (%d+)"))
        local c = assert(tc.new{ key = KEY, simple = "http://127.0.0.1:" .. port,
                                 user_agent = "shop/2.1" })
        local event, err = c:events{}()
        p:read("a")
        p:close()
        assert.is_nil(event)
        -- gRPC appends its own name after ours.
        assert.matches("user-agent: shop/2.1 lua-ticketscloud/" .. tc._VERSION .. " grpc-c/",
                       err.messages[1], 1, true)
        c:close()
    end)

    it("the gRPC channel goes through an http:// proxy too", function()
        local p, url = canned("502", "no")
        -- Nothing listens on the service's port: only the proxy sees the call.
        local c = assert(tc.new{ key = KEY, simple = "http://127.0.0.1:1", proxy = url,
                                 timeout = 5 })
        local event, err = c:events{}()
        local seen = p:read("a")
        p:close()
        assert.is_nil(event)
        assert.is_table(err)
        assert.matches("^CONNECT 127.0.0.1:1 HTTP/1.1", seen)
        c:close()
    end)

    it("an https:// proxy, which the gRPC core cannot use, fails catalogue calls", function()
        local c = assert(tc.new{ key = KEY, simple = "http://127.0.0.1:1",
                                 proxy = "https://user:pw@127.0.0.1:1" })
        local events, err = c:events{}
        assert.is_nil(events)
        assert.equal("invalid", err.kind)
        assert.equal("proxy: the gRPC channel goes through http:// proxies only", err.messages[1])
        assert.not_matches("pw", tostring(err))
        c:close()
    end)

    it("without the option, proxies in the environment are not used", function()
        local sb = assert(sandbox.start{ log = "/dev/null" })
        local script = ([[
            package.path, package.cpath = %q, %q
            local tc = require "ticketscloud"
            local c = assert(tc.new{ key = %q, api = %q, simple = %q, timeout = 5 })
            local doc, err = c:send{ method = "GET", path = "/v2/resources/orders" }
            local events, serr = c:events{}
            local event = events and events()
            print(doc and "direct" or tostring(err), event and "direct" or tostring(serr or events:error()))
        ]]):format(package.path, package.cpath, sb.key, sb.api, sb.simple)
        local p = io.popen("env http_proxy=http://127.0.0.1:1 HTTP_PROXY=http://127.0.0.1:1 " ..
                           "https_proxy=http://127.0.0.1:1 ALL_PROXY=http://127.0.0.1:1 " ..
                           "grpc_proxy=http://127.0.0.1:1 no_grpc_proxy= no_proxy= " ..
                           LUA .. " -e " .. quote(script) .. " 2>&1")
        local out = p:read("a")
        p:close()
        assert.is_true(sb:stop())
        assert.equal("direct\tdirect\n", out)
    end)
end)
