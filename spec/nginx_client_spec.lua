-- ticketscloud.nginx.new outside nginx: its options, and its calls with an
-- ngx table that stands in for lua-nginx-module, against a real sandbox.
-- The stand-in's run_worker_thread runs ticketscloud.nginx_thread in this
-- process, copying what crosses as nginx does (plain values, no metatables);
-- spec/nginx_threads_spec.lua runs the same client in a real nginx.
local tc = require "ticketscloud"
local tc_nginx = require "ticketscloud.nginx"
local sandbox = require "ticketscloud.sandbox"
local socket = require "socket"

local EVENT = "5d7134962110d30a34e95b96" -- Slipknot: 100 seats
local FAN = "5d7135112110d30a34e97e2d"

-- What ngx.run_worker_thread does to a value crossing to or from a thread.
local function cross(v, depth)
    depth = depth or 0
    assert(depth < 100, "too deep")
    local t = type(v)
    if t == "table" then
        local out = {}
        for k, x in pairs(v) do out[cross(k, depth + 1)] = cross(x, depth + 1) end
        return out
    end
    assert(t ~= "function" and t ~= "userdata" and t ~= "thread", "unsupported Lua type " .. t)
    return v
end

local function cross_all(...)
    local out = { n = select("#", ...) }
    for i = 1, out.n do out[i] = cross((select(i, ...))) end
    return table.unpack(out, 1, out.n)
end

-- The stand-in for nginx: the phase, the pools configured, and what ran.
local fake = { phase = "content", pools = { default = true, tiny = true }, calls = 0, slept = {} }
fake.ngx = {
    get_phase = function() return fake.phase end,
    sleep = function(s) fake.slept[#fake.slept + 1] = s end,
    run_worker_thread = function(pool, module, fn, ...)
        if fake.refuse then return false, fake.refuse end
        if not fake.pools[pool] then return false, "thread pool " .. pool .. " not found" end
        fake.calls = fake.calls + 1
        if fake.during then
            local during = fake.during
            fake.during = nil
            during()
        end
        return true, cross_all(require(module)[fn](cross_all(...)))
    end,
}

describe("ticketscloud.nginx.new", function()
    local sb, hang, saved_ngx

    lazy_setup(function()
        sb = assert(sandbox.start{ log = "/dev/null" })
        hang = assert(socket.bind("127.0.0.1", 0)) -- a gRPC server that never answers
        saved_ngx = rawget(_G, "ngx")
        rawset(_G, "ngx", fake.ngx)
    end)

    lazy_teardown(function()
        require("ticketscloud.nginx_thread").close()
        rawset(_G, "ngx", saved_ngx)
        if hang then hang:close() end
        if sb then sb:stop() end
    end)

    before_each(function()
        fake.phase, fake.refuse, fake.during, fake.calls, fake.slept = "content", nil, nil, 0, {}
    end)

    local function new(opts)
        local o = { key = sb.key, api = sb.api, simple = sb.simple, timeout = 5 }
        for k, v in pairs(opts or {}) do o[k] = v end
        return tc_nginx.new(o)
    end

    local function all(stream)
        local list = {}
        for item in stream do list[#list + 1] = item end
        return list
    end

    describe("options", function()
        it("are tc.new's, plus the pool's; a client has every method of tc.new's", function()
            local c = assert(new{ location = "/_tc_api", thread_pool = "tiny", threads = 3,
                                  max_listing_bytes = 1000, headers = { ["X-A"] = "tc_a" } })
            assert.matches("^ticketscloud%.NginxClient: 0x%x+$", tostring(c))
            for name in pairs(tc) do
                if type(tc[name]) == "function" and name ~= "new" then
                    assert.is_function(c[name], name)
                end
            end
            assert.same({ requests = 0, failures = 0, subrequests = 0, pooled = 0 }, c:stats())
            assert.equal(0, fake.calls) -- nothing opened, nothing run
            c:close()
        end)

        it("refuse values they cannot use", function()
            for _, case in ipairs{
                { { threads = 0 }, "threads: an integer >= 1 expected" },
                { { threads = 1.5 }, "threads: an integer >= 1 expected" },
                { { max_listing_bytes = 0 }, "max_listing_bytes: an integer from 1 to 2^31 expected" },
                { { thread_pool = "" }, "thread_pool: the name of a thread pool expected" },
                { { key = "" }, "key" },
            } do
                local c, err = new(case[1])
                assert.is_nil(c)
                assert.equal("invalid", err.kind)
                assert.matches(case[2], err.messages[1], 1, true)
            end
        end)

        it("raise on caller mistakes", function()
            assert.has_error(function() tc_nginx.new() end)
            assert.has_error(function() new{ transport = {} } end,
                "bad field 'transport' to 'new' (the nginx client sends through nginx; see location)")
            assert.has_error(function() new{ location = "_tc_api" } end)
            assert.has_error(function() new{ location = 1 } end)
            assert.has_error(function() new{ headers = { ["X-A"] = 1 } } end)
            assert.has_error(function() new{ threads = "8" } end)
        end)
    end)

    describe("where nginx cannot wait", function()
        for _, phase in ipairs{ "init", "init_worker", "set", "header_filter", "body_filter", "log",
                                "balancer", "exit_worker" } do
            it("returns nil, err (kind invalid) in the " .. phase .. " phase, and runs nothing", function()
                fake.phase = phase
                local c = assert(new{ location = "/_tc_api" })
                local calls = {
                    function() return c:seats{ event = EVENT } end,
                    function() return c:events() end,
                    function() return c:create_order{ event = EVENT, random = { [FAN] = 1 } } end,
                    function() return c:order("5d7134962110d30a34e95b96") end,
                    function() return c:check_promocode{ event = EVENT, code = "PROMO10" } end,
                }
                for _, call in ipairs(calls) do
                    local res, err = call()
                    assert.is_nil(res)
                    assert.equal("invalid", err.kind)
                    assert.matches("nginx cannot wait in the " .. phase .. " phase", tostring(err), 1, true)
                end
                local list, err = c:orders{ page_size = 1 }
                assert.is_nil(list and list())
                assert.equal("invalid", (err or list:error()).kind)
                assert.equal(0, fake.calls)
                assert.same({}, fake.slept)
            end)
        end
    end)

    describe("in the pool", function()
        it("lists the catalogue whole, as tc.new's client streams it", function()
            local traced = {}
            local c = assert(new{ trace = function(...) traced[#traced + 1] = { ... } end })
            local listing = assert(c:seats{ event = EVENT })
            assert.equal(1, fake.calls)
            assert.equal(100, listing.count)
            assert.is_true(listing.bytes > 100 * 60)
            local direct = assert(tc.new{ key = sb.key, api = sb.api, simple = sb.simple })
            assert.same(all(assert(direct:seats{ event = EVENT })), all(listing))
            assert.is_nil(listing:error())
            assert.is_nil(listing())
            -- traced once, when it crossed
            assert.equal(1, #traced)
            assert.same({ "GRPC", "/v3.Simple/Seats" }, { traced[1][1], traced[1][2] })
            assert.equal(0, traced[1][4])
            -- closed early: nothing left
            listing = assert(c:events{})
            assert.is_table(listing())
            assert.is_true(listing:close())
            local _, err = listing()
            assert.equal("closed", err.messages[1])
            -- a request refused before anything is sent
            local none
            none, err = c:seats{}
            assert.is_nil(none)
            assert.equal("invalid", err.kind)
            assert.has_error(function() c:seats("x") end)
            direct:close()
            c:close()
        end)

        it("gives the messages read, then the error that ended the listing", function()
            local _, port = hang:getsockname()
            local c = assert(new{ simple = "http://127.0.0.1:" .. port, timeout = 0.5 })
            local listing = assert(c:events{})
            assert.is_nil(listing:error()) -- not yet: the loop has not reached it
            assert.same({}, all(listing))
            local err = listing:error()
            assert.equal("timeout", err.kind)
            assert.equal("DEADLINE_EXCEEDED", err.code)
            assert.matches("ticketscloud: timeout error", tostring(err), 1, true)
            local again
            again, err = listing()
            assert.is_nil(again)
            assert.equal("timeout", err.kind)
            c:close()
        end)

        it("refuses a listing past max_listing_bytes, and says which option", function()
            local c = assert(new{ max_listing_bytes = 2000 })
            local listing, err = c:seats{ event = EVENT }
            assert.is_nil(listing)
            assert.equal("transport", err.kind)
            assert.matches("the Seats listing is larger than 2000 bytes", err.messages[1], 1, true)
            assert.equal("max_listing_bytes is 2000: narrow the request or raise the option",
                         err.messages[2])
            c:close()
        end)

        it("sends REST there without a location, and orders through it", function()
            local c = assert(new())
            local order = assert(c:create_order{ event = EVENT, random = { [FAN] = 1 } })
            assert(order:cancel())
            assert.equal("cancelled", order.status)
            local stats = c:stats()
            assert.equal(0, stats.subrequests)
            assert.is_true(stats.pooled >= 2 and stats.requests == stats.pooled)
            assert.equal(0, stats.failures)
            c:close()
            local res, err = c:order(order.id)
            assert.is_nil(res)
            assert.equal("closed", err.messages[1])
        end)

        it("refuses a call at once while the worker has `threads` calls there", function()
            local c = assert(new{ thread_pool = "tiny", threads = 1 })
            local inner
            fake.during = function() inner = { c:events{} } end
            assert(c:events{})
            assert.is_nil(inner[1])
            assert.equal("transport", inner[2].kind)
            assert.is_false(inner[2].sent)
            assert.matches("nginx's thread pool tiny is busy", inner[2].messages[1], 1, true)
            -- and the thread is free again afterwards
            assert.equal(1, #all(assert(c:events{ ids = { EVENT } })))
            c:close()
        end)

        it("turns nginx's own refusals into errors", function()
            local c = assert(new{ thread_pool = "nowhere" })
            local res, err = c:events{}
            assert.is_nil(res)
            assert.equal("invalid", err.kind)
            assert.is_false(err.sent)
            assert.matches("'thread_pool nowhere threads=N;'", err.messages[1], 1, true)
            c:close()
            c = assert(new())
            fake.refuse = "no available Lua vm"
            res, err = c:create_order{ event = EVENT, random = { [FAN] = 1 } }
            assert.is_nil(res)
            assert.equal("transport", err.kind)
            assert.matches("lua_worker_thread_vm_pool_size", tostring(err), 1, true)
            -- sent = false is worth another attempt: retried after pauses (ngx.sleep)
            assert.is_true(#fake.slept >= 1)
            c:close()
        end)
    end)
end)
