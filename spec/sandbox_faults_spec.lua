-- tc-sandbox --faults over real sockets: with each fault at probability 1
-- on one route, what the client sees and what the sandbox holds afterwards
-- (orders, tickets on sale); that at most one fault fires per request; that
-- the same --seed and SPEC fault the same requests; and that bad SPECs are
-- usage errors.
--
-- core.http is the raw client. Most requests go out on a connection of
-- their own (`request` below), so that each stands alone. The drop_after
-- test on orders.create and "many faults at once" send on one kept-alive
-- connection instead, which proves it safe: libcurl takes a reused
-- connection that closes without an answer for one the server had closed
-- while idle, and would send the request again, but core.http does not let
-- it when the service may have acted on the request (spec/transport_spec.lua).

local cjson = require "cjson.safe"
local core = require "ticketscloud.core"
local faulty = require "helpers.faulty"
local sandbox = require "ticketscloud.sandbox"
local socket = require "socket"
local tc = require "ticketscloud"

local BIN = os.getenv("TC_SANDBOX") or "build/tc-sandbox"
local ORDERS = "/v2/resources/orders"

local EVENT = "5d7134962110d30a34e95b96" -- Slipknot
local FAN = "5d7135112110d30a34e97e2d"   -- "Фан зона", 200 tickets, unseated
local A2 = "5d71353b2110d30a34e97e31"    -- seated, 100 seats
local UNKNOWN = "000000000000000000000000"

local function shell_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local start, stop, read_file = faulty.start, faulty.stop, faulty.read_file

-- A raw client on a connection of its own.
local function fresh(sb, timeout)
    return assert(core.http{ api = sb.api, key = sb.key, timeout = timeout or 2 })
end

local function request(sb, method, path, body, timeout)
    local http = fresh(sb, timeout)
    local status, text = http:request(method, path, body and assert(cjson.encode(body)))
    http:close()
    return status, text
end

local function create_body()
    return { event = EVENT, random = { [FAN] = 1 } }
end

-- Every order in the sandbox (orders.list must not have faults).
local function orders(sb)
    local status, text = request(sb, "GET", ORDERS .. "?page_size=200")
    assert.are.equal(200, status, text)
    return assert(cjson.decode(text)).data
end

local function get_order(sb, id)
    local status, text = request(sb, "GET", ORDERS .. "/" .. id)
    assert.are.equal(200, status, text)
    return assert(cjson.decode(text)).data
end

-- Tickets of the set on sale, as the catalogue (gRPC Events) counts them.
local function vacant(sb, set)
    local client = assert(tc.new{ key = sb.key, api = sb.api, simple = sb.simple })
    local found
    for e in assert(client:events{ ids = { EVENT } }) do
        for _, s in ipairs(e.sets or {}) do
            if s.id == set then found = s.amount_vacant or 0 end
        end
    end
    client:close()
    return assert(found, "set " .. set)
end

local function has(text, line)
    return text:find(line, 1, true) ~= nil
end

describe("tc-sandbox --faults", function()
    after_each(faulty.stop_all)

    describe("REST, each fault at probability 1", function()
        it("drop_after on orders.create: the answer is lost, the order is made once", function()
            local sb = start("orders.create:drop_after=1")
            local on_sale = vacant(sb, FAN)
            -- on a kept-alive connection, where libcurl would send it again
            local http = fresh(sb)
            assert.are.equal(200, (http:request("GET", ORDERS)))
            assert.are.equal(1, http:stats().connects)
            local status, err = http:request("POST", ORDERS, assert(cjson.encode(create_body())))
            http:close()
            assert.is_nil(status)
            assert.are.equal("transport", err.kind)
            assert.is_true(err.sent)
            local list = orders(sb)
            assert.are.equal(1, #list)
            assert.are.equal("executed", list[1].status)
            assert.are.equal(1, #list[1].tickets)
            assert.are.equal(FAN, list[1].tickets[1].set)
            assert.are.equal(on_sale - 1, vacant(sb, FAN))
            local log = stop(sb)
            assert.is_true(has(log, "tc-sandbox: fault drop_after POST /v2/resources/orders\n"))
            assert.is_true(has(log, "POST /v2/resources/orders 200"))
            assert.is_true(has(log, "tc-sandbox: faults injected: orders.create drop_after 1\n"))
            assert.is_true(has(log, "tc-sandbox: faults injected: 1 in all\n"))
        end)

        it("drop_before on orders.create: no answer and nothing made", function()
            local sb = start("orders.create:drop_before=1")
            local on_sale = vacant(sb, FAN)
            local status, err = request(sb, "POST", ORDERS, create_body())
            assert.is_nil(status)
            assert.are.equal("transport", err.kind)
            assert.are.same({}, orders(sb))
            assert.are.equal(on_sale, vacant(sb, FAN))
            local log = stop(sb)
            assert.is_true(has(log, "tc-sandbox: fault drop_before POST /v2/resources/orders\n"))
            assert.is_false(has(log, "POST /v2/resources/orders 200"))
        end)

        it("503 on orders.create: the status and the API's error body, nothing made", function()
            local sb = start("orders.create:503=1")
            local on_sale = vacant(sb, FAN)
            local status, text = request(sb, "POST", ORDERS, create_body())
            assert.are.equal(503, status)
            assert.are.same({ errors = { "Service Unavailable (injected fault)" } },
                            cjson.decode(text))
            assert.are.same({}, orders(sb))
            assert.are.equal(on_sale, vacant(sb, FAN))
            -- the high-level client reports it as the API's error
            local client = assert(tc.new{ key = sb.key, api = sb.api, simple = sb.simple })
            local order, err = client:create_order(create_body())
            assert.is_nil(order)
            assert.are.equal(503, err.status)
            client:close()
            assert.are.same({}, orders(sb))
            stop(sb)
        end)

        it("500 on orders.patch and 502 on orders.get: the order stays as it was", function()
            local sb = start("orders.patch:500=1,orders.get:502=1")
            local status, text = request(sb, "POST", ORDERS, create_body())
            assert.are.equal(200, status, text)
            local id = cjson.decode(text).data.id
            local on_sale = vacant(sb, FAN)
            status, text = request(sb, "PATCH", ORDERS .. "/" .. id, { status = "cancelled" })
            assert.are.equal(500, status)
            assert.are.same({ errors = { "Internal Server Error (injected fault)" } },
                            cjson.decode(text))
            status, text = request(sb, "GET", ORDERS .. "/" .. id)
            assert.are.equal(502, status)
            assert.are.same({ errors = { "Bad Gateway (injected fault)" } }, cjson.decode(text))
            local list = orders(sb)
            assert.are.equal(1, #list)
            assert.are.equal("executed", list[1].status)
            assert.are.equal(on_sale, vacant(sb, FAN))
            local log = stop(sb)
            assert.is_true(has(log, "tc-sandbox: fault 500 PATCH /v2/resources/orders/" .. id .. "\n"))
            assert.is_true(has(log, "tc-sandbox: fault 502 GET /v2/resources/orders/" .. id .. "\n"))
            assert.is_true(has(log, "tc-sandbox: faults injected: 2 in all\n"))
        end)

        it("drop_after on orders.patch: the cancel is lost to the client, not to the order", function()
            local sb = start("orders.patch:drop_after=1")
            local status, text = request(sb, "POST", ORDERS, create_body())
            assert.are.equal(200, status, text)
            local id = cjson.decode(text).data.id
            local on_sale = vacant(sb, FAN)
            local err
            status, err = request(sb, "PATCH", ORDERS .. "/" .. id, { status = "cancelled" })
            assert.is_nil(status)
            assert.are.equal("transport", err.kind)
            assert.are.equal("cancelled", get_order(sb, id).status)
            assert.are.equal(on_sale + 1, vacant(sb, FAN))
            stop(sb)
        end)

        it("slow on orders.create: a short timeout times out, yet the order is made", function()
            local sb = start("orders.create:slow=1@1500")
            local on_sale = vacant(sb, FAN)
            local status, err = request(sb, "POST", ORDERS, create_body(), 0.5)
            assert.is_nil(status)
            assert.are.equal("timeout", err.kind)
            local list = orders(sb)
            assert.are.equal(1, #list)
            assert.are.equal("executed", list[1].status)
            assert.are.equal(on_sale - 1, vacant(sb, FAN))
            -- a patient client gets the answer, late
            local t0 = socket.gettime()
            local text
            status, text = request(sb, "POST", ORDERS, create_body(), 10)
            assert.are.equal(200, status, text)
            assert.is_true(socket.gettime() - t0 >= 1.4)
            assert.are.equal(2, #orders(sb))
            local log = stop(sb)
            assert.is_true(has(log, "tc-sandbox: faults injected: orders.create slow 2\n"))
        end)

        it("a slow answer does not hold up shutdown", function()
            local sb = start("orders.list:slow=1@60000")
            local curl = assert(io.popen("env -u LD_PRELOAD curl -s -o /dev/null -m 90 -H "
                .. shell_quote("Authorization: key " .. sb.key) .. " "
                .. shell_quote(sb.api .. ORDERS) .. " 2>/dev/null", "r"))
            -- until the request is in and waiting
            local deadline = socket.gettime() + 20
            while not has(read_file(sb.log_file), "fault slow GET") do
                assert.is_true(socket.gettime() < deadline, "the request never arrived")
                socket.sleep(0.05)
            end
            local t0 = socket.gettime()
            stop(sb)
            assert.is_true(socket.gettime() - t0 < 10)
            curl:read("a")
            curl:close()
        end)

        it("* covers every REST route; other methods and paths draw nothing", function()
            local sb = start("*:503=1")
            for _, r in ipairs{
                { "POST", ORDERS, create_body() }, { "GET", ORDERS },
                { "GET", ORDERS .. "/" .. UNKNOWN }, { "PATCH", ORDERS .. "/" .. UNKNOWN, {} },
                { "POST", "/v2/resources/refund_requests", {} },
                { "GET", "/v2/resources/refund_requests" },
                { "GET", "/v2/resources/refund_requests/" .. UNKNOWN },
                { "PATCH", "/v2/resources/refund_requests/" .. UNKNOWN, {} },
                { "POST", "/v2/services/promocodes/check", {} },
                { "PUT", "/v2/services/orders/mosbilet/user_data", {} },
            } do
                assert.are.equal(503, (request(sb, r[1], r[2], r[3])), r[1] .. " " .. r[2])
            end
            assert.are.equal(404, (request(sb, "GET", "/v2/nowhere")))
            assert.are.equal(405, (request(sb, "DELETE", ORDERS)))
            assert.are.equal(200, (request(sb, "POST", ORDERS .. "/export")))
            -- the catalogue is not a REST route
            local client = assert(tc.new{ key = sb.key, api = sb.api, simple = sb.simple })
            local n = 0
            for _ in assert(client:events{}) do n = n + 1 end
            assert.is_true(n > 0)
            client:close()
            local log = stop(sb)
            assert.is_true(has(log, "tc-sandbox: faults injected: 10 in all\n"))
        end)

        it("fires at most one fault per request, the first in the order given", function()
            local sb = start("orders.get:503=1,orders.get:500=1,orders.list:500=0,orders.list:502=1")
            local http = fresh(sb)
            for _ = 1, 5 do
                assert.are.equal(503, (http:request("GET", ORDERS .. "/" .. UNKNOWN)))
                assert.are.equal(502, (http:request("GET", ORDERS)))
            end
            http:close()
            local log = stop(sb)
            assert.is_true(has(log, "tc-sandbox: faults injected: orders.get 503 5\n"))
            assert.is_true(has(log, "tc-sandbox: faults injected: orders.list 502 5\n"))
            assert.is_true(has(log, "tc-sandbox: faults injected: 10 in all\n"))
        end)
    end)

    describe("many faults at once", function()
        -- Reads that retry through the faults of their route.
        local function retry(fn)
            for _ = 1, 50 do
                local v = fn()
                if v ~= nil then return v end
            end
            error("still failing after 50 tries")
        end

        it("leave the inventory consistent: what is on sale is what no live order holds", function()
            local sb = start("*:drop_after=0.2,*:drop_before=0.1,*:503=0.1,*:slow=0.1@20,"
                             .. "grpc.*:unavailable=0.5", 20240601)
            local client = assert(tc.new{ key = sb.key, api = sb.api, simple = sb.simple })
            local seats = {}
            retry(function()
                local list = {}
                local stream = assert(client:seats{ event = EVENT })
                for seat in stream do list[#list + 1] = seat.ticket end
                if stream:error() then return nil end
                seats = list
                return true
            end)
            assert.are.equal(100, #seats)

            -- Creates, changes and cancels through one client, whatever
            -- each one's fate: on its kept-alive connection while the
            -- sandbox keeps it open, on a new one after a drop.
            local http = fresh(sb)
            local made, sent = {}, { POST = 0, PATCH = 0 }
            math.randomseed(20240601)
            local next_rnd = math.random
            for _ = 1, 60 do
                local k = next_rnd(4)
                if k <= 2 or #made == 0 then
                    local body = k == 1 and { event = EVENT, random = { [FAN] = next_rnd(3) } }
                                 or { tickets = { seats[next_rnd(100)], seats[next_rnd(100)] } }
                    local status, text = http:request("POST", ORDERS, cjson.encode(body))
                    sent.POST = sent.POST + 1
                    if status == 200 then made[#made + 1] = cjson.decode(text).data.id end
                else
                    local id = made[next_rnd(#made)]
                    local body = ({ { status = "cancelled" }, { status = "done" },
                                    { random = { [FAN] = next_rnd(3) } } })[next_rnd(3)]
                    http:request("PATCH", ORDERS .. "/" .. id, cjson.encode(body))
                    sent.PATCH = sent.PATCH + 1
                end
            end
            local stats = http:stats()
            http:close()
            -- connections were reused, so drops met reused ones
            assert.is_true(stats.connects < stats.requests, cjson.encode(stats))

            local list = retry(function()
                local status, text = request(sb, "GET", ORDERS .. "?page_size=200")
                return status == 200 and cjson.decode(text).data or nil
            end)
            local held, state = {}, {}
            for _, o in ipairs(list) do
                if o.status == "executed" or o.status == "done" then
                    for _, t in ipairs(o.tickets) do
                        assert.is_nil(state[t.id], "ticket " .. t.id .. " in two live orders")
                        state[t.id] = o.status
                        held[t.set] = (held[t.set] or 0) + 1
                    end
                end
            end
            retry(function()
                local stream = assert(client:events{ ids = { EVENT } })
                local sets = {}
                for e in stream do
                    for _, s in ipairs(e.sets or {}) do sets[#sets + 1] = s end
                end
                if stream:error() then return nil end
                assert.are.equal(3, #sets)
                for _, s in ipairs(sets) do
                    assert.are.equal(s.amount - (held[s.id] or 0), s.amount_vacant or 0, s.id)
                end
                return true
            end)
            retry(function()
                local stream = assert(client:seats{ event = EVENT })
                local got = {}
                for seat in stream do got[#got + 1] = seat end
                if stream:error() then return nil end
                for _, seat in ipairs(got) do
                    local want = state[seat.ticket] == "done" and "SOLD"
                                 or state[seat.ticket] == "executed" and "RESERVED" or "VACANT"
                    assert.are.equal(want, seat.status, seat.ticket)
                end
                return true
            end)
            client:close()
            local log = stop(sb)
            -- every order is one that was answered or whose answer was dropped
            local lost = tonumber(log:match("faults injected: orders%.create drop_after (%d+)\n"))
            assert.are.equal(#made + lost, #list)
            -- and each create or change reached the sandbox once: a line
            -- for each one it answered or whose answer it dropped, and one
            -- for each drop_before
            local arrived = { POST = 0, PATCH = 0 }
            local function count(method, path)
                if method == "POST" and path == ORDERS or method == "PATCH" then
                    arrived[method] = arrived[method] + 1
                end
            end
            for method, path in log:gmatch("tc%-sandbox: (%u+) (%S+) %d") do count(method, path) end
            for method, path in log:gmatch("tc%-sandbox: fault drop_before (%u+) (%S+)\n") do
                count(method, path)
            end
            assert.are.same(sent, arrived)
            for _, kind in ipairs{ "drop_after", "drop_before", "503", "slow", "unavailable" } do
                assert.is_true(has(log, "tc-sandbox: fault " .. kind .. " "), kind)
            end
        end)
    end)

    describe("gRPC", function()
        it("unavailable on grpc.Seats: some seats, then a transport error", function()
            local sb = start("grpc.Seats:unavailable=1,grpc.Events:unavailable=1")
            local client = assert(tc.new{ key = sb.key, api = sb.api, simple = sb.simple })
            local seats = assert(client:seats{ event = EVENT })
            local got = {}
            local seat, err = seats()
            while seat do
                got[#got + 1] = seat
                seat, err = seats()
            end
            -- the first half of the 100 seats of A2, in catalogue order
            assert.are.equal(50, #got)
            for _, s in ipairs(got) do assert.are.equal(A2, s.set) end
            assert.is_table(err)
            assert.are.equal("transport", err.kind)
            assert.are.equal("UNAVAILABLE", err.code)
            assert.are.same({ "Unavailable (injected fault)" }, err.messages)
            -- a for loop ends quietly; the stream still says it was cut short
            local n = 0
            local again = assert(client:seats{ event = EVENT })
            for _ in again do n = n + 1 end
            assert.are.equal(50, n)
            assert.are.equal("transport", again:error().kind)
            -- a listing of one message ends at once
            local events = assert(client:events{ ids = { EVENT } })
            local first, e2 = events()
            assert.is_nil(first)
            assert.are.equal("transport", e2.kind)
            -- other methods are not touched
            n = 0
            for _ in assert(client:countries{}) do n = n + 1 end
            assert.is_true(n > 0)
            client:close()
            local log = stop(sb)
            assert.is_true(has(log, "tc-sandbox: fault unavailable gRPC /v3.Simple/Seats\n"))
            assert.is_true(has(log, "tc-sandbox: faults injected: grpc.Seats unavailable 2\n"))
            assert.is_true(has(log, "tc-sandbox: faults injected: grpc.Events unavailable 1\n"))
        end)

        it("grpc.* covers every catalogue method, and no REST route", function()
            local sb = start("grpc.*:unavailable=1")
            local client = assert(tc.new{ key = sb.key, api = sb.api, simple = sb.simple })
            for _, method in ipairs{ "artists", "categories", "cities", "countries", "events",
                                     "maps", "meta_events", "tags", "venues" } do
                local stream = assert(client[method](client, {}))
                for _ in stream do end
                assert.are.equal("transport", stream:error().kind, method)
            end
            client:close()
            assert.are.equal(200, (request(sb, "GET", ORDERS)))
            stop(sb)
        end)
    end)

    describe("determinism", function()
        -- The numbers (1..100) of the requests that met the fault.
        local function faulted(sb, interleave)
            local http = fresh(sb)
            local hits = {}
            for i = 1, 100 do
                local status = assert(http:request("GET", ORDERS .. "/" .. UNKNOWN))
                assert.is_true(status == 404 or status == 503, tostring(status))
                if status == 503 then hits[#hits + 1] = i end
                if interleave and i % 7 == 0 then
                    assert.are.equal(200, (http:request("GET", ORDERS)))
                end
            end
            http:close()
            return hits
        end

        it("the same --seed and SPEC fault the same requests", function()
            local spec = "orders.get:503=0.3,orders.list:503=0"
            local a, b, c = start(spec, 42), start(spec, 42), start(spec, 43)
            local hits_a = faulted(a)
            -- other routes in between do not move orders.get's sequence
            local hits_b = faulted(b, true)
            local hits_c = faulted(c)
            assert.are.same(hits_a, hits_b)
            assert.is_true(#hits_a >= 15 and #hits_a <= 45, tostring(#hits_a))
            assert.are_not.same(hits_a, hits_c)
            local log = stop(a)
            assert.is_true(has(log, ("tc-sandbox: faults injected: %d in all\n"):format(#hits_a)))
            stop(b)
            stop(c)
        end)

        it("faults draw apart from order ids: the same seed makes the same ids", function()
            local plain = start(nil, 7)
            local with_faults = start("orders.get:503=0.5", 7)
            local _, t1 = request(plain, "POST", ORDERS, create_body())
            local _, t2 = request(with_faults, "POST", ORDERS, create_body())
            assert.are.equal(cjson.decode(t1).data.id, cjson.decode(t2).data.id)
            local log = stop(plain)
            assert.is_false(has(log, "faults injected"))
            stop(with_faults)
        end)
    end)

    describe("the command line", function()
        local function run(args)
            local f = assert(io.popen(shell_quote(BIN) .. " --http 127.0.0.1:0 --grpc 127.0.0.1:0 "
                                      .. args .. " 2>&1; echo \"rc=$?\"", "r"))
            local out = f:read("a")
            f:close()
            return out:match("^(.-)rc=(%d+)\n$")
        end

        it("documents --faults in --help", function()
            local out, rc = run("--help")
            assert.are.equal("0", rc)
            for _, word in ipairs{ "--faults SPEC", "drop_before", "drop_after", "slow=P@MS",
                                   "unavailable", "orders.create", "grpc.*" } do
                assert.is_truthy(out:find(word, 1, true), word)
            end
        end)

        it("bad SPECs give one message and exit 2", function()
            for _, spec in ipairs{
                "", ",", "orders.create:500=1,", "orders.create", "orders.create:500",
                "orders.crate:500=1", "orders:500=1", "grpc.Nothing:unavailable=1",
                "orders.create:404=1", "orders.create:DROP_AFTER=1", "orders.create:500=1.5",
                "orders.create:500=-0.1", "orders.create:500=.5", "orders.create:500=1e-1",
                "orders.create:500=0.1234567891", "orders.create:500= 0.1",
                "orders.create:slow=0.5", "orders.create:slow=0.5@0", "orders.create:slow=0.5@60001",
                "orders.create:slow=0.5@x", "orders.create:500=0.5@10", "*:unavailable=1",
                "orders.get:unavailable=1", "grpc.Seats:503=1", "grpc.*:drop_after=1",
            } do
                local out, rc = run("--faults " .. shell_quote(spec))
                assert.are.equal("2", rc, spec)
                assert.matches("^tc%-sandbox: %-%-faults[^\n]+\n$", out, nil, spec)
            end
            local out, rc = run("--faults orders.get:503=1 --faults orders.list:503=1")
            assert.are.equal("2", rc)
            assert.matches("^tc%-sandbox: [^\n]*%-%-faults given twice", out)
        end)

        it("start{ faults = BAD } fails to start", function()
            local sb, err = sandbox.start{ bin = BIN, faults = "nowhere:500=1", log = "/dev/null" }
            assert.is_nil(sb)
            assert.matches("did not start", err)
        end)
    end)
end)
