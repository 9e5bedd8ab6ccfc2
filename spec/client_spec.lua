-- client_spec: the REST client and the order object against tc-sandbox over
-- real sockets: every call, every error kind, the order helpers with the
-- order example's amounts, the 409 retry, the check of tickets the server
-- skipped, local refusals, keep-alive and close.
local tc = require "ticketscloud"
local sandbox = require "ticketscloud.sandbox"
local rest = require "ticketscloud.rest"
local answers = require "ticketscloud.answers"
local core = require "ticketscloud.core"

local EVENT = "5d7134962110d30a34e95b96"
local FAN = "5d7135112110d30a34e97e2d"    -- Фан зона, 5600.00, unseated
local A2 = "5d71353b2110d30a34e97e31"     -- A2, 990.00, seated
local VIP = "5d713505255895db3c30b0c5"    -- VIP, 6666.00, unseated
local SEAT = "5d7134962110d30a34e95cfe"   -- A2 row 2 seat 14, the order example's
local UNKNOWN = "5d7134962110d30a34e9ffff"

-- A2 seats of row 1: 5d7134962110d30a34e95cdd, ...cde, ...
local function seat(i)
    return ("5d7134962110d30a34e95c%02x"):format(0xdc + i)
end

local LUA = arg and arg[-1] or "lua5.4"

-- Every error message seen, to prove the key is in none of them.
local seen_errors = {}
local function remember(err)
    if err ~= nil then seen_errors[#seen_errors + 1] = tostring(err) end
    return err
end

local function by_set(order)
    local t = {}
    for _, ticket in ipairs(order.tickets) do
        t[ticket.set] = t[ticket.set] or {}
        table.insert(t[ticket.set], ticket)
    end
    return t
end

local function amounts(x)
    return { x.price, x.discount, x.nominal, x.extra, x.full }
end

-- Helper programs run without the sanitizer runtime a SAN=1 run preloads:
-- they do not load the module, and curl hangs at exit under LeakSanitizer.
local CANNED = "env -u LD_PRELOAD lua5.4 spec/helpers/canned_http.lua "

-- A create body without the creation's tag, which must be there (32 hex
-- digits in vendor_data.raw.tc_request_id, the only vendor data).
local function untagged(body)
    local tag = body.vendor_data.raw.tc_request_id
    assert.matches("^%x+$", tag)
    assert.equal(32, #tag)
    assert.same({ raw = { tc_request_id = tag } }, body.vendor_data)
    body.vendor_data = nil
    return body
end

local function quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

describe("ticketscloud REST client", function()
    local sb, client, requests

    lazy_setup(function()
        sb = assert(sandbox.start{ log = "/dev/null" })
    end)

    lazy_teardown(function()
        assert.is_true(sb:stop())
    end)

    before_each(function()
        requests = {}
        client = assert(tc.new{ key = sb.key, api = sb.api, simple = sb.simple,
            trace = function(method, path, body, status)
                requests[#requests + 1] = { method = method, path = path, body = body,
                                            status = status }
            end })
    end)

    after_each(function()
        client:close()
    end)

    it("sends through a transport given to tc.new, and closes it", function()
        -- A transport of Lua's own around the C one: it sees every request.
        local inner = assert(core.http{ api = sb.api, key = sb.key })
        local seen, closed = {}, false
        local transport = {
            request = function(_, method, path, body, opts)
                seen[#seen + 1] = method .. " " .. path
                return inner:request(method, path, body, opts)
            end,
            stats = function() return inner:stats() end,
            close = function() closed = true; return inner:close() end,
        }
        local c = assert(tc.new{ key = sb.key, api = "http://127.0.0.1:1", simple = sb.simple,
                                 transport = transport })
        local order = assert(c:create_order{ event = EVENT, random = { [FAN] = 1 } })
        assert.equal("executed", order.status)
        local none, err = c:check_promocode{ event = EVENT, code = "nope" }
        assert.is_nil(none)
        assert.equal("api", err.kind)
        assert.same({ "POST /v2/resources/orders", "POST /v2/services/promocodes/check" }, seen)
        c:close()
        assert.is_true(closed)

        assert.has_error(function() tc.new{ key = sb.key, transport = {} } end,
            "bad field 'transport' to 'new' (an object with a request method expected)")
        assert.has_error(function() tc.new{ key = sb.key, transport = "nginx" } end)
    end)

    -- How many orders the sandbox holds, through a separate client.
    local function count_orders()
        local c = assert(tc.new{ key = sb.key, api = sb.api, simple = sb.simple })
        local n = 0
        for _ in assert(c:orders{ page_size = 200 }) do n = n + 1 end
        c:close()
        return n
    end

    describe("tc.new", function()
        it("keeps normalised options and never shows the key", function()
            assert.equal(sb.api, client.options.api)
            assert.equal(10, client.options.timeout)
            assert.equal("ru", client.options.language)
            assert.is_false(client.options.insecure)
            assert.matches("^ticketscloud.Client: 0x%x+$", tostring(client))
            assert.not_matches(sb.key, tostring(client.http))
            local c = assert(tc.new{ key = "k" })
            assert.equal("https://ticketscloud.com", c.options.api)
            assert.equal("simple.ticketscloud.com:443", c.options.simple)
            c:close()
        end)

        it("refuses a missing key and bad options with invalid errors", function()
            local cases = {
                { { }, "key" },
                { { key = "" }, "key" },
                { { key = "a b" }, "key" },
                { { key = "k", api = "http://example.com" }, "plaintext" },
                { { key = "k", api = "ftp://127.0.0.1" }, "http" },
                { { key = "k", api = "https://u:p@example.com" }, "credentials" },
                { { key = "k", simple = "http://example.com:50051" }, "loopback" },
                { { key = "k", timeout = 0 }, "timeout" },
                { { key = "k", ca_file = "/nonexistent/ca.pem" }, "ca_file" },
                { { key = "k", retry = { attempts = 0 } }, "retry" },
                { { key = "k", retry = { attempts = 2.5 } }, "retry.attempts" },
                { { key = "k", retry = { attempts = math.huge } }, "retry.attempts" },
                { { key = "k", retry = { base = -1 } }, "retry.base" },
            }
            for _, case in ipairs(cases) do
                local c, err = tc.new(case[1])
                assert.is_nil(c)
                assert.equal("invalid", remember(err).kind)
                assert.matches(case[2], tostring(err))
            end
        end)

        it("allows plaintext to other hosts only with insecure = true", function()
            local c = assert(tc.new{ key = "k", api = "http://example.com",
                                     simple = "http://example.com:1", insecure = true })
            c:close()
            c = assert(tc.new{ key = "k", api = "http://localhost:1", simple = "http://[::1]:1" })
            c:close()
        end)

        it("raises on argument type mistakes", function()
            assert.has_error(function() tc.new() end)
            assert.has_error(function() tc.new{ key = 5 } end)
            assert.has_error(function() tc.new{ key = "k", timeout = "10" } end)
            assert.has_error(function() tc.new{ key = "k", insecure = "yes" } end)
        end)

        it("opens no socket and starts no thread on require or new", function()
            local script = [[
                package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
                package.cpath = ARGS_CPATH .. ";" .. package.cpath
                local function state()
                    local threads = io.open("/proc/self/status"):read("a"):match("Threads:%s*(%d+)")
                    local p = io.popen("ls -l /proc/$PPID/fd")
                    local sockets = select(2, p:read("a"):gsub("socket:", ""))
                    p:close()
                    return threads .. "/" .. sockets
                end
                local before = state()
                local tc = require "ticketscloud"
                local c = assert(tc.new{ key = "k", api = "http://127.0.0.1:1" })
                print(before, state())
                c:close()
            ]]
            script = script:gsub("ARGS_CPATH", ("%q"):format(package.cpath))
            local p = io.popen(LUA .. " -e " .. quote(script))
            local out = p:read("a")
            p:close()
            local before, after = out:match("(%S+)%s+(%S+)")
            assert.is_string(before)
            assert.equal(before, after)
        end)
    end)

    describe("orders", function()
        it("creates an order with random tickets (order example step 2a)", function()
            local order = assert(client:create_order{ event = EVENT, random = { [FAN] = 1 } })
            assert.equal("executed", order.status)
            assert.equal(EVENT, order.event)
            assert.equal(1, #order.tickets)
            local t = order.tickets[1]
            assert.equal(FAN, t.set)
            assert.is_nil(t.seat)
            assert.equal(tc.null, t.barcode)
            assert.same({ "5600.00", "0.00", "5600.00", "560.00", "6160.00" }, amounts(t))
            assert.same({ "5600.00", "0.00", "5600.00", "560.00", "6160.00" }, amounts(order.values))
            assert.equal("6666.00", order.values.sets_values[VIP].price)
            assert.equal("Фан зона", order.refs.sets[FAN].name)
            assert.equal("POST", requests[1].method)
            assert.equal("/v2/resources/orders", requests[1].path)
            assert.same({ event = EVENT, random = { [FAN] = 1 } },
                        untagged(rest.decode_json(requests[1].body)))
            assert.is_true(order:cancel() == order)
        end)

        it("creates an order from tickets, the event inferred (step 2b)", function()
            local order = assert(client:create_order{ tickets = { seat(1) } })
            assert.equal(EVENT, order.event)
            assert.equal(seat(1), order.tickets[1].id)
            assert.same({ "990.00", "0.00", "990.00", "99.00", "1089.00" }, amounts(order.values))
            assert.same({ tickets = { seat(1) } }, untagged(rest.decode_json(requests[1].body)))
            assert(order:cancel())
        end)

        it("creates an empty order", function()
            local order = assert(client:create_order{ event = EVENT })
            assert.same({}, order.tickets)
            assert.equal("0.00", order.values.full)
            assert(order:cancel())
        end)

        it("reads one order and lists orders page by page", function()
            local made = {}
            for i = 1, 3 do
                made[i] = assert(client:create_order{ event = EVENT, random = { [VIP] = 1 } })
            end
            assert(made[3]:cancel())
            local one = assert(client:order(made[1].id))
            assert.equal(made[1].id, one.id)
            assert.same(made[1].tickets, one.tickets)
            assert.is_function(one.add_tickets)

            requests = {}
            local ids, stream = {}, assert(client:orders{ status = { "executed" }, events = { EVENT },
                                                          page_size = 1 })
            for order in stream do
                assert.equal("executed", order.status)
                ids[order.id] = true
            end
            assert.is_nil(stream:error())
            assert.is_true(ids[made[1].id])
            assert.is_true(ids[made[2].id])
            assert.is_nil(ids[made[3].id])
            assert.is_true(stream.total >= 2)
            assert.equal(stream.total, #requests)
            assert.matches("status=executed&events=" .. EVENT .. "&page_size=1&page=1",
                           requests[1].path, 1, true)
            assert.matches("&page=2$", requests[2].path)

            local cancelled = 0
            for order in assert(client:orders{ status = "cancelled", page_size = 200 }) do
                assert.equal("cancelled", order.status)
                cancelled = cancelled + 1
            end
            assert.is_true(cancelled >= 1)
            assert(made[1]:cancel())
            assert(made[2]:cancel())
        end)

        it("closes the order list like a catalogue stream", function()
            for _ = 1, 2 do assert(client:create_order{ event = EVENT }) end
            local stream = assert(client:orders{ page_size = 1 })
            assert.is_table(stream())
            assert.is_true(stream:close())
            assert.is_true(stream:close())
            requests = {}
            local order, err = stream()
            assert.is_nil(order)
            assert.equal("invalid", remember(err).kind)
            assert.same({ "closed" }, err.messages)
            assert.equal(0, #requests)
            assert.is_nil(stream:error())
            -- A closed stream that had failed still tells why.
            local c = assert(tc.new{ key = "0000000000000000wrongkey", api = sb.api })
            stream = assert(c:orders())
            local _, failed = stream()
            assert.equal("auth", remember(failed).kind)
            stream:close()
            _, err = stream()
            assert.same({ "closed" }, err.messages)
            assert.equal(failed, stream:error())
            c:close()
        end)

        it("filters the list by creation time", function()
            local order = assert(client:create_order{ event = EVENT })
            local now = os.time()
            local found = false
            for o in assert(client:orders{ created_at = { now - 3600, now + 3600 } }) do
                if o.id == order.id then found = true end
            end
            assert.is_true(found)
            found = false
            for o in assert(client:orders{ created_at = { "2000-01-01T00:00:00",
                                                          "2000-01-02T00:00:00" } }) do
                found = true
                assert.is_nil(o)
            end
            assert.is_false(found)
            assert.matches("created_at=2000%-01%-01T00%%3A00%%3A00,2000", requests[#requests].path)
            assert(order:cancel())
        end)

        it("finds an order in the list, the fallback of client:order", function()
            local order = assert(client:create_order{ event = EVENT })
            local found = assert(client:find_order(order.id, { events = { EVENT } }))
            assert.equal(order.id, found.id)
            assert.equal("executed", found.status)
            assert.is_function(found.refresh) -- an order object, like client:order's
            local none, err = client:find_order(UNKNOWN, { events = { EVENT } })
            assert.is_nil(none)
            assert.equal("not_found", remember(err).kind)
            -- The decision: a 404 naming the order is final, any other 404 or a 405 falls back.
            assert.is_true(answers.is_missing({ status = 404, messages = {
                "Order " .. UNKNOWN .. " not found" } }, "Order", UNKNOWN))
            assert.is_false(answers.is_missing({ status = 404, messages = { "Not found" } },
                                               "Order", UNKNOWN))
            assert(order:cancel())
        end)

        it("runs a request built by ticketscloud.rest with client:send", function()
            local order = assert(client:create_order{ event = EVENT })
            local doc = assert(client:send(assert(rest.get_order(order.id))))
            assert.equal(order.id, doc.data.id)
            assert.is_table(doc.refs)
            assert.same({ method = "GET", path = rest.ORDERS .. "/" .. order.id, status = 200 },
                        requests[#requests])
            local none, err = client:send(assert(rest.get_order(UNKNOWN)))
            assert.is_nil(none)
            assert.equal("not_found", remember(err).kind)
            assert.has_error(function() client:send("GET /") end,
                             "bad argument #1 to 'send' (table expected, got string)")
            assert(order:cancel())
        end)

        it("updates an order's fields from the service and keeps the program's own", function()
            -- Answers to GET lose one field and gain one named as a method.
            local inner = assert(core.http{ api = sb.api, key = sb.key })
            local drop
            local c = assert(tc.new{ key = sb.key, api = sb.api, transport = {
                request = function(_, method, path, body, opts)
                    local status, text = inner:request(method, path, body, opts)
                    if status == 200 and method == "GET" and drop then
                        local doc = assert(core.json_decode(text))
                        doc.data[drop] = nil
                        doc.data.finish = "a field named as a method"
                        text = assert(core.json_encode(doc))
                    end
                    return status, text
                end,
                close = function() return inner:close() end } })
            local order = assert(c:create_order{ event = EVENT, random = { [FAN] = 1 } })
            local status = order.status
            assert.is_string(order.expired_after)
            order.note = "gift"    -- the program's own field
            order.status = "mine"  -- a field of the service's
            drop = "expired_after"
            assert.equal(order, order:refresh())
            assert.equal("gift", order.note)
            assert.equal(status, order.status)
            assert.is_nil(order.expired_after)
            assert.is_function(order.finish)
            assert.is_table(order.refs.events)
            local read = assert(c:order(order.id))
            assert.is_nil(read.expired_after)
            assert.is_nil(rawget(read, "finish"))
            assert.equal(order.id, read.id)
            assert.is_table(read.refs.events)
            drop = nil
            assert(order:cancel())
            assert.equal("gift", order.note)
            assert.equal("cancelled", order.status)
            assert.is_string(order.expired_after)
            c:close()
        end)

        it("reads an order from the list when the service does not serve GET by id", function()
            -- A server without the route: GET of one order answers 405.
            local inner = assert(core.http{ api = sb.api, key = sb.key })
            local gets = 0
            local c = assert(tc.new{ key = sb.key, api = sb.api, transport = {
                request = function(_, method, path, body, opts)
                    if method == "GET" and path:find("^/v2/resources/orders/%w+$") then
                        gets = gets + 1
                        return 405, '{"errors": ["Method Not Allowed"]}'
                    end
                    return inner:request(method, path, body, opts)
                end,
                close = function() return inner:close() end } })
            local order = assert(c:create_order{ event = EVENT, random = { [FAN] = 1 } })
            local read = assert(c:order(order.id, { event = EVENT }))
            assert.equal(1, gets)
            assert.equal(order.id, read.id)
            assert.same(order.tickets, read.tickets)
            assert(read:refresh()) -- the order object reads itself the same way
            assert.equal(2, gets)
            local none, err = c:order(UNKNOWN)
            assert.is_nil(none)
            assert.equal("not_found", remember(err).kind)
            assert.same({ "Order " .. UNKNOWN .. " not found" }, err.messages)
            assert(order:cancel())
            c:close()
        end)

        it("sends a raw PATCH", function()
            local order = assert(client:create_order{ event = EVENT, random = { [FAN] = 1 } })
            local patched = assert(client:patch_order(order.id, {
                settings = { customer = { name = "Иван", email = "ivan@example.com" } } }))
            assert.equal("Иван", patched.settings.customer.name)
            assert.equal(1, #patched.tickets)
            assert(patched:cancel())
        end)

        it("checks a promocode", function()
            local promo = assert(client:check_promocode{ event = EVENT, code = "PROMO10" })
            assert.same({ percentage = "10%" }, promo.discount)
            assert.is_table(promo.refs)
            local none, err = client:check_promocode{ event = EVENT, code = "nope" }
            assert.is_nil(none)
            assert.equal("api", remember(err).kind)
            assert.equal(400, err.status)
            assert.same({ "Promocode not found" }, err.messages)
        end)
    end)

    describe("errors", function()
        it("invalid: nothing is sent", function()
            local before = count_orders()
            local stats = client.http:stats()
            local calls = {
                function() return client:create_order{ event = "nope" } end,
                function() return client:create_order{ event = EVENT, random = { [FAN] = 0 } } end,
                function() return client:create_order{ event = EVENT, random = { [FAN] = 1.5 } } end,
                function() return client:create_order{ tickets = { SEAT, "x" } } end,
                function() return client:create_order{ tickets = { SEAT }, random = { [FAN] = 1 } } end,
                function() return client:create_order{} end,
                function() return client:create_order{ event = EVENT,
                    settings = { customer = { name = "a\nb" } } } end,
                function() return client:order("5d71") end,
                function() return client:patch_order(UNKNOWN, {}) end,
                function() return client:patch_order(UNKNOWN, { vendor_data = { raw = { x = "\0" } } }) end,
                function() return client:orders{ status = "paid" } end,
                function() return client:orders{ page_size = 201 } end,
                function() return client:orders{ events = { "x" } } end,
                function() return client:orders{ created_at = { 1 } } end,
                -- misspelt keys: refused, not ignored (that would list every order)
                function() return client:orders{ statuses = { "done" }, evnts = { EVENT } } end,
                function() return client:orders{ finished_at = { 1, 2 } } end,
                function() return client:orders{ "executed" } end,
                function() return client:check_promocode{ event = EVENT, code = "a\tb" } end,
            }
            for i, call in ipairs(calls) do
                local v, err = call()
                assert.is_nil(v, "call " .. i)
                assert.equal("invalid", remember(err).kind, "call " .. i)
            end
            local _, err = client:orders{ status = "done", evnts = { EVENT } }
            assert.matches("unknown key evnts", tostring(err), 1, true)
            assert.same(stats, client.http:stats())
            assert.equal(0, #requests)
            assert.equal(before, count_orders())
        end)

        it("auth: a wrong key", function()
            local c = assert(tc.new{ key = "0000000000000000wrongkey", api = sb.api })
            local order, err = c:create_order{ event = EVENT }
            assert.is_nil(order)
            assert.equal("auth", remember(err).kind)
            assert.equal(401, err.status)
            c:close()
        end)

        it("not_found: an unknown order", function()
            local order, err = client:order(UNKNOWN)
            assert.is_nil(order)
            assert.equal("not_found", remember(err).kind)
            assert.equal(404, err.status)
            assert.same({ "Order " .. UNKNOWN .. " not found" }, err.messages)
        end)

        it("api: the service's error list", function()
            local order = assert(client:create_order{ event = EVENT })
            local patched, err = client:patch_order(order.id, { tickets = { "5d31fbfa27649b0dff0761aa" } })
            assert.is_nil(patched)
            assert.equal("api", remember(err).kind)
            assert.equal(400, err.status)
            assert.matches("does not belong to current event", err.messages[1])
            local other
            other, err = client:create_order{ event = UNKNOWN }
            assert.is_nil(other)
            assert.same({ "Event " .. UNKNOWN .. " not found" }, err.messages)
            assert.equal("ticketscloud: api error (400): Event " .. UNKNOWN .. " not found",
                         tostring(err))
            assert(order:cancel())
        end)

        it("conflict: a raw PATCH while another change runs; timeout: a slow answer", function()
            local order = assert(client:create_order{ event = EVENT })
            local slow = client:patch_order(order.id, { vendor_data = { order_id = "slow" } },
                                            { headers = { ["X-Sandbox-Delay"] = "1500" }, timeout = 0.3 })
            assert.is_nil(slow)
            local _, err = client:patch_order(order.id, { vendor_data = { order_id = "slow" } },
                                              { headers = { ["X-Sandbox-Delay"] = "1500" }, timeout = 0.3 })
            -- The first slow PATCH still holds the order: this one is refused at once.
            assert.equal("conflict", remember(err).kind)
            assert.equal(409, err.status)
            local t0 = os.time()
            _, err = client:patch_order(order.id, { vendor_data = { order_id = "x" } })
            while err and err.kind == "conflict" and os.time() - t0 < 5 do
                core.sleep(0.1)
                _, err = client:patch_order(order.id, { vendor_data = { order_id = "x" } })
            end
            assert.is_nil(err)
            _, err = client:patch_order(order.id, { vendor_data = { order_id = "y" } },
                                        { headers = { ["X-Sandbox-Delay"] = "1000" }, timeout = 0.2 })
            assert.equal("timeout", remember(err).kind)
            assert.matches("no answer within 200 ms", tostring(err))
            core.sleep(1)
            assert(order:cancel())
        end)

        it("transport: a stopped sandbox", function()
            local gone = assert(sandbox.start{ log = "/dev/null" })
            local c = assert(tc.new{ key = gone.key, api = gone.api })
            assert(c:create_order{ event = EVENT })
            assert.is_true(gone:stop())
            local order, err = c:create_order{ event = EVENT }
            assert.is_nil(order)
            assert.equal("transport", remember(err).kind)
            local stream = assert(c:orders())
            local first
            first, err = stream()
            assert.is_nil(first)
            assert.equal("transport", err.kind)
            assert.equal(err, stream:error())
            assert.is_nil((stream()))
            c:close()
        end)

        it("expired: an order past its lifetime is refused locally", function()
            local short = assert(sandbox.start{ expire = 1, log = "/dev/null" })
            local reqs = 0
            local c = assert(tc.new{ key = short.key, api = short.api,
                                     trace = function() reqs = reqs + 1 end })
            local order = assert(c:create_order{ event = EVENT, random = { [FAN] = 1 } })
            core.sleep(2.1)
            reqs = 0
            local ok, err = order:add_random{ [FAN] = 1 }
            assert.is_nil(ok)
            assert.equal("expired", remember(err).kind)
            assert.equal(order, err.order)
            assert.equal(0, reqs)
            assert(order:refresh())
            assert.equal("expired", order.status)
            ok, err = order:cancel()
            assert.is_nil(ok)
            assert.equal("expired", err.kind)
            c:close()
            assert.is_true(short:stop())
        end)

        it("api: a redirect is not followed and a body that is not JSON is reported", function()
            local function canned(...)
                local args = { ... }
                for i, a in ipairs(args) do args[i] = quote(a) end
                local p = io.popen(CANNED .. table.concat(args, " "))
                local port = p:read("*l"):match("port (%d+)")
                return p, "http://127.0.0.1:" .. port
            end
            local p, url = canned("301", "moved", "Location: http://127.0.0.1:1/v2/resources/orders")
            local c = assert(tc.new{ key = sb.key, api = url })
            local order, err = c:create_order{ event = EVENT }
            assert.is_nil(order)
            assert.equal("api", remember(err).kind)
            assert.equal(301, err.status)
            assert.matches("redirect, not followed", tostring(err))
            local seen = p:read("a")
            p:close()
            assert.matches("^POST /v2/resources/orders HTTP/1.1", seen)
            assert.matches("Authorization: key " .. sb.key, seen, 1, true)
            assert.matches("Content%-Type: application/json", seen)
            assert.matches("User%-Agent: lua%-ticketscloud/" .. tc._VERSION:gsub("%.", "%%."), seen)
            c:close()

            p, url = canned("200", "<html>hello</html>")
            c = assert(tc.new{ key = sb.key, api = url })
            order, err = c:order(UNKNOWN)
            seen = p:read("a")
            p:close()
            assert.is_nil(order)
            assert.equal("api", remember(err).kind)
            assert.matches("not the expected JSON", tostring(err))
            -- A GET has no content, so no Content-Type; the rest is there.
            assert.matches("^GET /v2/resources/orders/" .. UNKNOWN .. " HTTP/1.1", seen)
            assert.matches("Authorization: key " .. sb.key, seen, 1, true)
            assert.matches("Accept: application/json", seen, 1, true)
            assert.is_nil(seen:find("Content-Type", 1, true))
            c:close()

            p, url = canned("200", "@300000")
            local http = assert(core.http{ api = url, key = "k", max_body = 100000 })
            local status
            status, err = http:request("GET", "/")
            p:close()
            assert.is_nil(status)
            assert.equal("transport", remember(err).kind)
            assert.matches("larger than 100000 bytes", tostring(err))
            http:close()
        end)
    end)

    describe("order helpers", function()
        it("path A: random, then the seated ticket by id, then done (steps 2a, 3a, 4)", function()
            local order = assert(client:create_order{ event = EVENT, random = { [FAN] = 1 } })
            local fan = order.tickets[1].id
            requests = {}
            assert.equal(order, order:add_tickets{ SEAT })
            assert.same({ tickets = { fan, SEAT } }, rest.decode_json(requests[1].body))
            assert.equal(2, #order.tickets)
            assert.equal(fan, order.tickets[1].id)
            assert.same({ row = "2", number = "14", sector = "5a8dd58e6e55b2064c67c144" },
                        order.tickets[2].seat)
            assert.same({ "990.00", "0.00", "990.00", "99.00", "1089.00" }, amounts(order.tickets[2]))
            assert.same({ "6590.00", "0.00", "6590.00", "659.00", "7249.00" }, amounts(order.values))
            assert(order:finish())
            assert.same({ status = "done" }, rest.decode_json(requests[2].body))
            assert.equal("done", order.status)
            assert.is_string(order.code)
            assert.is_string(order.done_at)
            for _, t in ipairs(order.tickets) do assert.matches("^%d+$", t.barcode) end
            assert.same({ "6590.00", "0.00", "6590.00", "659.00", "7249.00" }, amounts(order.values))
        end)

        it("path B: the seat, then random naming both sets (steps 2b, 3b)", function()
            local order = assert(client:create_order{ tickets = { seat(2) } })
            requests = {}
            assert(order:add_random{ [FAN] = 1 })
            assert.same({ random = { [A2] = 1, [FAN] = 1 } }, rest.decode_json(requests[1].body))
            local sets = by_set(order)
            assert.equal(seat(2), sets[A2][1].id)
            assert.same({ "5600.00", "0.00", "5600.00", "560.00", "6160.00" }, amounts(sets[FAN][1]))
            assert.same({ "6590.00", "0.00", "6590.00", "659.00", "7249.00" }, amounts(order.values))
            assert(order:cancel())
            assert.equal("cancelled", order.status)
        end)

        it("removes tickets and sets absolute counts", function()
            local order = assert(client:create_order{ event = EVENT, random = { [FAN] = 2 } })
            assert(order:add_tickets{ seat(3), seat(4) })
            assert.equal(4, #order.tickets)
            requests = {}
            assert(order:remove_tickets{ seat(3) })
            assert.equal(3, #order.tickets)
            local body = rest.decode_json(requests[1].body)
            assert.equal(3, #body.tickets)
            for _, id in ipairs(body.tickets) do assert.not_equal(seat(3), id) end
            assert(order:set_random{ [FAN] = 1, [VIP] = 2 })
            assert.same({ random = { [FAN] = 1, [A2] = 1, [VIP] = 2 } }, rest.decode_json(requests[2].body))
            local sets = by_set(order)
            assert.equal(1, #sets[FAN])
            assert.equal(1, #sets[A2])
            assert.equal(2, #sets[VIP])
            -- 5600 + 990 + 2 * 6666 = 19922.00, +10 % = 21914.20
            assert.equal("19922.00", order.values.nominal)
            assert.equal("21914.20", order.values.full)
            assert(order:set_random{ [FAN] = 0, [A2] = 0, [VIP] = 0 })
            assert.same({}, order.tickets)
            assert.equal("0.00", order.values.full)
            -- An empty list goes out as [], not {}.
            assert(order:add_tickets{ seat(3) })
            assert(order:remove_tickets{ seat(3) })
            assert.equal('{"tickets":[]}', requests[#requests].body)
            assert.same({}, order.tickets)
            assert(order:cancel())
        end)

        it("sets the customer and the vendor data, keeping the tickets", function()
            local order = assert(client:create_order{ event = EVENT, random = { [FAN] = 1 } })
            assert(order:set_customer{ name = "Иван Петров", email = "ivan@example.com",
                                       phone = "+79991234576", lang = "ru" })
            assert.same({ name = "Иван Петров", email = "ivan@example.com", phone = "+79991234576",
                          lang = "ru" }, order.settings.customer)
            assert(order:set_vendor_data{ order_id = "A-1", raw = { call_counter = 3, note = "x" } })
            assert.equal("A-1", order.vendor_data.order_id)
            assert.equal(3, order.vendor_data.raw.call_counter)
            assert.equal(1, #order.tickets)
            local ok, err = order:set_customer{ email = "not an address" }
            assert.is_nil(ok)
            assert.equal("invalid", remember(err).kind)
            ok, err = order:set_vendor_data{ order_id = ("x"):rep(65) }
            assert.is_nil(ok)
            assert.equal("invalid", err.kind)
            assert(order:cancel())
        end)

        it("counts the vendor data's limits in characters, not bytes", function()
            local order = assert(client:create_order{ event = EVENT })
            local key, value = ("ключ"):rep(10), ("з"):rep(128) -- 40 and 128 characters
            assert(order:set_vendor_data{ order_id = ("я"):rep(64), raw = { [key] = value } })
            assert.equal(("я"):rep(64), order.vendor_data.order_id)
            assert.equal(value, order.vendor_data.raw[key])
            requests = {}
            for _, bad in ipairs{ { order_id = ("я"):rep(65) }, { raw = { [key .. "й"] = "x" } },
                                  { raw = { k = value .. "й" } } } do
                local ok, err = order:set_vendor_data(bad)
                assert.is_nil(ok)
                assert.equal("invalid", remember(err).kind)
            end
            assert.equal(0, #requests)
            assert(order:cancel())
        end)

        it("refuses an empty promocode before sending", function()
            local order = assert(client:create_order{ event = EVENT })
            requests = {}
            local ok, err = order:apply_promocodes{ "PROMO10", "" }
            assert.is_nil(ok)
            assert.equal("invalid", remember(err).kind)
            assert.matches("promocodes%[2%]", tostring(err))
            assert.equal(0, #requests)
            assert(order:cancel())
        end)

        it("applies a promocode, and reports one the service did not apply", function()
            local order = assert(client:create_order{ event = EVENT, random = { [FAN] = 1 } })
            assert(order:apply_promocodes{ "PROMO10" })
            assert.same({ "5600.00", "560.00", "5040.00", "504.00", "5544.00" }, amounts(order.values))
            assert.equal(1, #order.promocodes)
            local ok, err = order:apply_promocodes{ "NOPE" }
            assert.is_nil(ok)
            assert.equal("api", remember(err).kind)
            assert.equal(order, err.order)
            assert.equal("promocode_not_found", err.messages[1].code)
            assert.matches("Promocode not found", tostring(err))
            assert(order:cancel())
        end)

        it("refreshes the order", function()
            local order = assert(client:create_order{ event = EVENT, random = { [FAN] = 1 } })
            assert(client:patch_order(order.id, { vendor_data = { order_id = "elsewhere" } }))
            assert.equal("tc_request_id", (next(order.vendor_data.raw)))
            assert.is_nil(order.vendor_data.order_id)
            assert.equal(order, order:refresh())
            assert.equal("elsewhere", order.vendor_data.order_id)
            assert(order:cancel())
        end)

        it("reports a requested ticket the server skipped, naming it", function()
            local holder = assert(client:create_order{ tickets = { seat(5) } })
            local order = assert(client:create_order{ event = EVENT, random = { [FAN] = 1 } })
            local ok, err = order:add_tickets{ seat(5), seat(6) }
            assert.is_nil(ok)
            assert.equal("api", remember(err).kind)
            assert.same({ seat(5) }, err.missing)
            assert.matches("ticket " .. seat(5) .. " was requested but is not held", tostring(err))
            assert.equal(order, err.order)
            assert.equal(2, #order.tickets) -- updated all the same: FAN and seat(6)
            -- all_or_nothing: nothing changes, and the check still names it.
            ok, err = order:add_tickets({ seat(5), seat(7) }, { all_or_nothing = true })
            assert.is_nil(ok)
            assert.same({ seat(5), seat(7) }, err.missing)
            assert.equal(2, #order.tickets)
            -- The same for random: more than the set has.
            ok, err = order:add_random{ [VIP] = 100 }
            assert.is_nil(ok)
            assert.equal(100, err.sets[VIP].wanted)
            assert.is_true(err.sets[VIP].held < 100)
            assert(holder:cancel())
            assert(order:cancel())
        end)

        it("refuses a second call on an order while one runs, naming the order", function()
            local order, nested
            -- The trace hook runs inside the PATCH of order:add_random and calls the order again.
            local c = assert(tc.new{ key = sb.key, api = sb.api, simple = sb.simple,
                                     trace = function(method)
                                         if order and method == "PATCH" and not nested then
                                             nested = { order:cancel() }
                                         end
                                     end })
            order = assert(c:create_order{ event = EVENT, random = { [FAN] = 1 } })
            assert(order:add_random{ [FAN] = 1 })
            assert.is_nil(nested[1])
            assert.equal("conflict", nested[2].kind)
            assert.equal(order, nested[2].order)
            assert.matches("another call on order " .. order.id .. " is running", tostring(nested[2]))
            assert.equal("executed", order.status) -- the nested cancel sent nothing
            assert.equal(2, #order.tickets)
            assert(order:cancel())
            c:close()
        end)

        it("retries a 409 with backoff, recomputing the body", function()
            local order = assert(client:create_order{ event = EVENT, random = { [FAN] = 1 } })
            -- Another client holds the order busy for one second.
            local cmd = ("env -u LD_PRELOAD curl -s -o /dev/null -w '%%{http_code}' -X PATCH"
                         .. " -H %s -H %s -H %s -d %s %s")
                :format(quote("Authorization: key " .. sb.key), quote("X-Sandbox-Delay: 1000"),
                        quote("Content-Type: application/json"),
                        quote('{"random":{"' .. FAN .. '":2}}'),
                        quote(sb.api .. "/v2/resources/orders/" .. order.id))
            local bg = io.popen(cmd)
            core.sleep(0.3)
            requests = {}
            assert(order:add_tickets{ seat(8) })
            assert.equal("200", bg:read("a"))
            bg:close()
            local statuses = {}
            for _, r in ipairs(requests) do statuses[#statuses + 1] = r.method .. " " .. r.status end
            assert.equal("PATCH 409", statuses[1])
            assert.equal("GET 200", statuses[2])
            assert.equal("PATCH 200", statuses[#statuses])
            assert.is_true(#statuses <= 2 * 6)
            -- The last body came from the re-read order: the two FAN tickets of the
            -- other change are kept, not released.
            assert.equal(3, #rest.decode_json(requests[#requests].body).tickets)
            assert.equal(3, #order.tickets)
            assert(order:cancel())
        end)

        it("gives up after the attempts with a conflict error", function()
            local c = assert(tc.new{ key = sb.key, api = sb.api,
                                     retry = { attempts = 2, base = 0.05, max = 0.05 } })
            local order = assert(c:create_order{ event = EVENT })
            local bg = io.popen(("env -u LD_PRELOAD curl -s -o /dev/null -X PATCH"
                                 .. " -H %s -H %s -H %s -d %s %s"):format(
                quote("Authorization: key " .. sb.key), quote("X-Sandbox-Delay: 1000"),
                quote("Content-Type: application/json"), quote('{"vendor_data":{"order_id":"bg"}}'),
                quote(sb.api .. "/v2/resources/orders/" .. order.id)))
            core.sleep(0.3)
            local ok, err = order:set_customer{ name = "N" }
            assert.is_nil(ok)
            assert.equal("conflict", remember(err).kind)
            assert.equal(2, err.attempts)
            bg:read("a")
            bg:close()
            assert(order:cancel())
            c:close()
        end)

        it("pauses between 409 retries for a growing, jittered, capped time", function()
            local pauses = {}
            local c = assert(tc.new{ key = sb.key, api = sb.api,
                                     retry = { attempts = 5, base = 0.1, max = 0.3 },
                                     sleep = function(s) pauses[#pauses + 1] = s end,
                                     trace = function(method, _, _, status)
                                         requests[#requests + 1] = method .. " " .. tostring(status)
                                     end })
            local order = assert(c:create_order{ event = EVENT })
            -- The order stays busy for two seconds; the recorded pauses take no time.
            assert.is_nil(c:patch_order(order.id, { vendor_data = { order_id = "busy" } },
                { headers = { ["X-Sandbox-Delay"] = "2000" }, timeout = 0.2 }))
            requests = {}
            local ok, err = order:set_customer{ name = "N" }
            assert.is_nil(ok)
            assert.equal("conflict", remember(err).kind)
            assert.equal(5, err.attempts)
            assert.equal(order, err.order)
            -- Five PATCHes, a re-read before each retry, and no pause after the last.
            assert.same({ "PATCH 409", "GET 200", "PATCH 409", "GET 200", "PATCH 409", "GET 200",
                          "PATCH 409", "GET 200", "PATCH 409" }, requests)
            assert.equal(4, #pauses)
            -- base * 2^(n-1), capped at max, of which the second half is random.
            for i, full in ipairs{ 0.1, 0.2, 0.3, 0.3 } do
                assert.is_true(pauses[i] >= full / 2 and pauses[i] <= full, "pause " .. i)
            end
            core.sleep(2)
            assert(order:cancel())
            c:close()
        end)

        it("client:retry_pause: the pause before the next attempt, false after the last", function()
            local pauses = {}
            local c = assert(tc.new{ key = "k", retry = { attempts = 3, base = 1, max = 1.5 },
                                     sleep = function(s) pauses[#pauses + 1] = s end })
            assert.is_true(c:retry_pause(1))
            assert.is_true(c:retry_pause(2))
            assert.is_false(c:retry_pause(3))
            assert.equal(2, #pauses)
            assert.is_true(pauses[1] >= 0.5 and pauses[1] <= 1)
            assert.is_true(pauses[2] >= 0.75 and pauses[2] <= 1.5)
            c:close()
        end)

        it("refuses changes of done and cancelled orders locally", function()
            local done = assert(client:create_order{ event = EVENT, random = { [FAN] = 1 } })
            assert(done:finish())
            local cancelled = assert(client:create_order{ event = EVENT, random = { [FAN] = 1 } })
            assert(cancelled:cancel())
            requests = {}
            local stats = client.http:stats()
            for _, order in ipairs{ done, cancelled } do
                local calls = {
                    function() return order:add_tickets{ seat(9) } end,
                    function() return order:remove_tickets{ seat(9) } end,
                    function() return order:add_random{ [FAN] = 1 } end,
                    function() return order:set_random{ [FAN] = 0 } end,
                    function() return order:set_customer{ name = "x" } end,
                    function() return order:set_vendor_data{ order_id = "x" } end,
                    function() return order:apply_promocodes{ "PROMO10" } end,
                    function() return order:finish() end,
                    function() return order:cancel() end,
                }
                for _, call in ipairs(calls) do
                    local ok, err = call()
                    assert.is_nil(ok)
                    assert.equal("invalid", remember(err).kind)
                    assert.matches("is " .. order.status .. ": it cannot be changed", tostring(err))
                    assert.equal(order, err.order)
                end
            end
            assert.equal(0, #requests)
            assert.same(stats, client.http:stats())
            assert(done:refresh())
        end)

        it("reports the service's refusal to finish", function()
            local poor = assert(sandbox.start{ args = { "--balance", "1000.00" }, log = "/dev/null" })
            local c = assert(tc.new{ key = poor.key, api = poor.api })
            local order = assert(c:create_order{ event = EVENT, random = { [FAN] = 1 } })
            local ok, err = order:finish()
            assert.is_nil(ok)
            assert.equal("api", remember(err).kind)
            assert.same({ "Not enough money, \209\129ontact to TicketsCloud manager" }, err.messages)
            assert.equal("executed", order.status)
            c:close()
            assert.is_true(poor:stop())
        end)

        it("raises on argument type mistakes", function()
            local order = assert(client:create_order{ event = EVENT })
            assert.has_error(function() order:add_tickets(SEAT) end)
            assert.has_error(function() order:add_random(nil) end)
            assert.has_error(function() order:finish("now") end)
            assert.has_error(function() order:add_tickets({ SEAT }, { all_or_nothing = "yes" }) end,
                             "bad field 'all_or_nothing' to 'add_tickets' (boolean expected, got string)")
            assert.has_error(function() client:order(5) end)
            assert.has_error(function() client:create_order("x") end)
            assert.has_error(function() client:patch_order(order.id, "{}") end)
            assert(order:cancel())
        end)
    end)

    describe("transport", function()
        it("reuses one connection for every request", function()
            for _ = 1, 3 do assert(client:create_order{ event = EVENT }) end
            assert.same({ requests = 3, connects = 1 }, client.http:stats())
        end)

        it("closes idempotently; calls after close return closed", function()
            assert.is_true(client:close())
            assert.is_true(client:close())
            local order, err = client:create_order{ event = EVENT }
            assert.is_nil(order)
            assert.equal("invalid", err.kind)
            assert.same({ "closed" }, err.messages)
            assert.matches("%(closed%)", tostring(client.http))
            local stats
            stats, err = client.http:stats()
            assert.is_nil(stats)
            assert.equal("invalid", err.kind)
        end)

        it("closes on __close and on garbage collection", function()
            if _VERSION == "Lua 5.4" then -- to-be-closed variables
                local chunk = assert(load([[
                    local tc, opts = ...
                    local c <close> = assert(tc.new(opts))
                    return c.http
                ]]))
                local http = chunk(tc, { key = sb.key, api = sb.api })
                assert.matches("%(closed%)", tostring(http))
            end
            local c = assert(tc.new{ key = sb.key, api = sb.api })
            assert(c:create_order{ event = EVENT })
            local weak = setmetatable({ c, c.http }, { __mode = "v" })
            c = nil -- luacheck: ignore
            collectgarbage()
            collectgarbage()
            assert.is_nil(weak[1])
            assert.is_nil(weak[2])
        end)
    end)

    describe("the key", function()
        it("appears in no error message", function()
            assert.is_true(#seen_errors > 30)
            for _, text in ipairs(seen_errors) do
                assert.is_nil(text:find(sb.key, 1, true), text)
            end
        end)

        it("appears in no output of a failing program", function()
            local script = [[
                package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
                package.cpath = ARGS_CPATH .. ";" .. package.cpath
                local tc = require "ticketscloud"
                local c = assert(tc.new{ key = KEY, api = "http://127.0.0.1:1" })
                print(c, c.http, select(2, c:create_order{ event = "5d7134962110d30a34e95b96" }))
                io.stderr:write(tostring(select(2, c:order("x"))), "\n")
                assert(c:create_order{ event = "5d7134962110d30a34e95b96" })
            ]]
            script = script:gsub("ARGS_CPATH", ("%q"):format(package.cpath))
                           :gsub("KEY", ("%q"):format(sb.key))
            local p = io.popen(LUA .. " -e " .. quote(script) .. " 2>&1")
            local out = p:read("a")
            p:close()
            assert.matches("transport error", out)
            assert.is_nil(out:find(sb.key, 1, true))
        end)

        it("is replaced if a server ever echoes it", function()
            local body = '{"errors":["refused key ' .. sb.key .. ' here"]}'
            local p = io.popen(CANNED .. "400 " .. quote(body))
            local port = p:read("*l"):match("port (%d+)")
            local c = assert(tc.new{ key = sb.key, api = "http://127.0.0.1:" .. port })
            local order, err = c:create_order{ event = EVENT }
            p:read("a")
            p:close()
            assert.is_nil(order)
            assert.same({ "refused key <key> here" }, err.messages)
            c:close()
        end)
    end)

    it("keeps the money API and the error constructor on the module", function()
        assert.equal(560000, tc.money.parse("5600.00"))
        assert.equal("7249.00", tc.money.format(tc.money.add("6160.00", "1089.00")))
        assert.equal(core.error, tc.error)
        local err = tc.error{ kind = "api", messages = { "x" } }
        assert.equal("ticketscloud: api error: x", tostring(err))
    end)
end)
