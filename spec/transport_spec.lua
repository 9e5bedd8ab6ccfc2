-- transport_spec: the REST transport on a bad network, over real sockets.
-- A request is sent once: libcurl may not send it again on its own when a
-- kept-alive connection dies without an answer, unless the service cannot
-- have acted on it. Every transport error says, in err.sent, whether the
-- request can have reached the service. And the key is scrubbed from every
-- error text: REST errors at any depth, gRPC status messages.

local cjson = require "cjson"
local core = require "ticketscloud.core"
local faulty = require "helpers.faulty"
local tc = require "ticketscloud"

local ORDERS = "/v2/resources/orders"
local EVENT = "5d7134962110d30a34e95b96" -- Slipknot
local FAN = "5d7135112110d30a34e97e2d"   -- "Фан зона", unseated
local UNKNOWN = "000000000000000000000000"

-- Helper programs run without the sanitizer runtime a SAN=1 run preloads.
local PLAIN_ENV = "env -u LD_PRELOAD -u ASAN_OPTIONS -u LSAN_OPTIONS -u UBSAN_OPTIONS "
local CANNED = PLAIN_ENV .. "lua5.4 spec/helpers/canned_http.lua "
local ECHO_GRPC = PLAIN_ENV .. "/usr/bin/python3 spec/helpers/echo_grpc.py"

local function quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local BODY = cjson.encode{ event = EVENT, random = { [FAN] = 1 } }

local start, stop = faulty.start, faulty.stop

-- The orders the sandbox holds, read on a connection of its own (orders.list
-- has no faults in these tests).
local function count_orders(sb)
    local http = assert(core.http{ api = sb.api, key = sb.key })
    local status, text = http:request("GET", ORDERS .. "?page_size=200")
    http:close()
    assert.are.equal(200, status, text)
    return #cjson.decode(text).data
end

-- How many requests of a route met a fault, from the sandbox's log.
local function faulted(log, route, fault)
    return tonumber(log:match("faults injected: " .. route:gsub("%.", "%%.") .. " " .. fault
                              .. " (%d+)\n") or 0)
end

describe("the REST transport", function()
    after_each(faulty.stop_all)

    describe("on a reused connection that dies without an answer", function()
        it("does not send a POST again: one order per POST, and err.sent", function()
            -- Seed 6: the first POST of orders.create meets no fault, the
            -- second drop_after (the log below checks it).
            local sb = start("orders.create:drop_after=0.5", 6)
            local http = assert(core.http{ api = sb.api, key = sb.key, timeout = 5 })
            local status, text = http:request("POST", ORDERS, BODY)
            assert.are.equal(200, status, text)
            assert.are.equal(1, http:stats().connects)
            assert.are.equal(1, count_orders(sb))

            -- On the kept-alive connection: applied, then the answer dropped.
            local err
            status, err = http:request("POST", ORDERS, BODY)
            assert.is_nil(status)
            assert.are.equal("transport", err.kind)
            assert.is_true(err.sent)
            assert.matches("may have reached the service, so it was not sent again",
                           tostring(err), 1, true)
            assert.are.equal(2, count_orders(sb))

            -- The object goes on, on a new connection.
            status = http:request("GET", ORDERS .. "?page_size=1")
            assert.are.equal(200, status)
            http:close()
            local log = stop(sb)
            assert.are.equal(1, faulted(log, "orders.create", "drop_after"))
        end)

        it("does not send a POST again that met drop_before: nothing made, err.sent", function()
            local sb = start("orders.create:drop_before=1")
            local http = assert(core.http{ api = sb.api, key = sb.key, timeout = 5 })
            assert.are.equal(200, (http:request("GET", ORDERS .. "?page_size=1")))
            local status, err = http:request("POST", ORDERS, BODY)
            assert.is_nil(status)
            assert.are.equal("transport", err.kind)
            -- The whole request went out; the service dropped it unapplied,
            -- which the client cannot tell from a dropped answer.
            assert.is_true(err.sent)
            http:close()
            assert.are.equal(0, count_orders(sb))
            local log = stop(sb)
            assert.are.equal(1, faulted(log, "orders.create", "drop_before"))
        end)

        it("does not send a PATCH or a POST without a body again", function()
            local sb = start("orders.create:drop_after=1,orders.patch:drop_after=1")
            local http = assert(core.http{ api = sb.api, key = sb.key, timeout = 5 })
            for _, r in ipairs{ { "POST", ORDERS }, { "PATCH", ORDERS .. "/" .. UNKNOWN, "{}" },
                                { "PATCH", ORDERS .. "/" .. UNKNOWN } } do
                assert.are.equal(200, (http:request("GET", ORDERS .. "?page_size=1")))
                local status, err = http:request(r[1], r[2], r[3])
                assert.is_nil(status)
                assert.are.equal("transport", err.kind)
                assert.is_true(err.sent)
            end
            http:close()
            local log = stop(sb)
            assert.are.equal(1, faulted(log, "orders.create", "drop_after"))
            assert.are.equal(2, faulted(log, "orders.patch", "drop_after"))
        end)

        it("lets libcurl send a GET again, on a new connection", function()
            local sb = start("orders.get:drop_after=1")
            local http = assert(core.http{ api = sb.api, key = sb.key, timeout = 5 })
            assert.are.equal(200, (http:request("GET", ORDERS .. "?page_size=1")))
            local status, err = http:request("GET", ORDERS .. "/" .. UNKNOWN)
            assert.is_nil(status)
            assert.are.equal("transport", err.kind)
            assert.is_true(err.sent)
            http:close()
            local log = stop(sb)
            assert.are.equal(2, faulted(log, "orders.get", "drop_after"))
        end)
    end)

    it("keeps one connection alive over requests with and without a body", function()
        local sb = start(nil)
        local http = assert(core.http{ api = sb.api, key = sb.key, timeout = 5 })
        local status, text = http:request("POST", ORDERS, BODY)
        assert.are.equal(200, status, text)
        local id = cjson.decode(text).data.id
        for _ = 1, 3 do
            assert.are.equal(200, (http:request("GET", ORDERS .. "/" .. id)))
            status, text = http:request("PATCH", ORDERS .. "/" .. id,
                                        cjson.encode{ customer = { email = "ann@example.com" } })
            assert.are.equal(200, status, text)
        end
        assert.are.equal(404, (http:request("GET", ORDERS .. "/" .. UNKNOWN)))
        assert.are.same({ requests = 8, connects = 1 }, http:stats())
        http:close()
        stop(sb)
    end)

    describe("err.sent", function()
        it("is false when nothing reached a server: refused, no such host, TLS", function()
            -- Nothing listens on port 1.
            local http = assert(core.http{ api = "http://127.0.0.1:1", key = "k", timeout = 5 })
            for _, method in ipairs{ "GET", "POST" } do
                local status, err = http:request(method, ORDERS, BODY)
                assert.is_nil(status)
                assert.are.equal("transport", err.kind)
                assert.is_false(err.sent, method)
            end
            http:close()

            -- .invalid never resolves (RFC 2606)
            http = assert(core.http{ api = "https://nowhere.invalid", key = "k", timeout = 5 })
            local status, err = http:request("POST", ORDERS, BODY)
            assert.is_nil(status)
            assert.is_truthy(err.kind == "transport" or err.kind == "timeout")
            assert.is_false(err.sent)
            http:close()

            -- TLS to a plain HTTP listener: the handshake fails
            local sb = start(nil)
            http = assert(core.http{ api = sb.api:gsub("^http:", "https:"), key = sb.key,
                                     timeout = 5 })
            status, err = http:request("POST", ORDERS, BODY)
            assert.is_nil(status)
            assert.are.equal("transport", err.kind)
            assert.is_false(err.sent)
            http:close()
            assert.are.equal(0, count_orders(sb))
            stop(sb)
        end)

        it("is true when the request went out and no answer came in time", function()
            local sb = start("orders.create:slow=1@1500")
            local http = assert(core.http{ api = sb.api, key = sb.key, timeout = 0.5 })
            local status, err = http:request("POST", ORDERS, BODY)
            assert.is_nil(status)
            assert.are.equal("timeout", err.kind)
            assert.is_true(err.sent)
            http:close()
            assert.are.equal(1, count_orders(sb))
            stop(sb)
        end)

        it("reaches the caller of the client's methods", function()
            local c = assert(tc.new{ key = "0123456789abcdef", api = "http://127.0.0.1:1" })
            local order, err = c:create_order{ event = EVENT, random = { [FAN] = 1 } }
            assert.is_nil(order)
            assert.are.equal("transport", err.kind)
            assert.is_false(err.sent)
            c:close()
        end)
    end)
end)

describe("the key in error texts", function()
    local KEY = "tc-spec-key-0123456789abcdef"

    -- Answers one request with status and the JSON text body; returns the
    -- client's error for a create_order.
    local function canned_error(status, body)
        local p = io.popen(CANNED .. status .. " " .. quote(body))
        local port = p:read("*l"):match("port (%d+)")
        local c = assert(tc.new{ key = KEY, api = "http://127.0.0.1:" .. port })
        local order, err = c:create_order{ event = EVENT }
        p:read("a")
        p:close()
        c:close()
        assert.is_nil(order)
        return err
    end

    it("is scrubbed from { code, msg } objects and nested lists of a REST error", function()
        local err = canned_error(400, cjson.encode{ errors = {
            { code = "bad_key", msg = "key " .. KEY .. " refused" },
            { "nested", { "deeper " .. KEY, { KEY .. KEY } } },
            "plain " .. KEY,
        } })
        assert.are.equal("api", err.kind)
        assert.are.same({
            { code = "bad_key", msg = "key <key> refused" },
            { "nested", { "deeper <key>", { "<key><key>" } } },
            "plain <key>",
        }, err.messages)
        local text = tostring(err)
        assert.is_nil(text:find(KEY, 1, true), text)
        assert.matches("key <key> refused", text, 1, true)
    end)

    it("is scrubbed from the promocode check's reason", function()
        local err = canned_error(400, cjson.encode{ reason = "no promocode for " .. KEY })
        assert.are.same({ "no promocode for <key>" }, err.messages)
    end)

    it("is scrubbed from a gRPC status message, before a long one is cut", function()
        local p = io.popen(ECHO_GRPC)
        local port = assert(p:read("*l"):match("port (%d+)"))
        local c = assert(tc.new{ key = KEY, simple = "http://127.0.0.1:" .. port })
        local stream = assert(c:events{})
        local event, err = stream()
        p:read("a")
        p:close()
        assert.is_nil(event)
        assert.are.equal("auth", err.kind)
        assert.are.equal("UNAUTHENTICATED", err.code)
        local text = err.messages[1]
        assert.matches("^key <key> refused; x+<key> again y+$", text)
        assert.is_true(#text <= 240)
        -- no part of the key either, where the server's text was cut
        assert.is_nil(text:find(KEY:sub(1, 6), 1, true), text)
        assert.is_nil(tostring(stream:error()):find(KEY:sub(1, 6), 1, true))
        c:close()
    end)
end)

describe("core.scrub", function()
    local KEY = "s3cr3t-key"

    it("replaces the secret in strings and tables' strings at any depth", function()
        local err = core.error{ kind = "api", messages = {
            "a " .. KEY .. " b " .. KEY,
            { code = KEY, msg = "m" .. KEY, n = 1 },
            { { { { KEY } } } },
        } }
        assert.are.equal(err, core.scrub(err, KEY))
        assert.are.same({ "a <key> b <key>", { code = "<key>", msg = "m<key>", n = 1 },
                          { { { { "<key>" } } } } }, err.messages)
    end)

    it("leaves what it cannot be: a short secret, no messages, no table", function()
        local err = { kind = "api", messages = { "short key" } }
        assert.are.same({ "short key" }, core.scrub(err, "key").messages)
        assert.are.same({ kind = "api" }, core.scrub({ kind = "api" }, KEY))
        assert.are.equal("text " .. KEY, core.scrub("text " .. KEY, KEY))
        assert.is_nil(core.scrub(nil, KEY))
        assert.has_error(function() core.scrub({}, nil) end)
    end)

    it("leaves no secret that the replacement spells anew, nor in a number", function()
        local odd = "ab<key>c"
        local err = { messages = { "ab" .. odd .. "c" .. "ab" .. odd .. "c" } }
        assert.are.same({ "<key><key>" }, core.scrub(err, odd).messages)
        err = { messages = { 123456789012, { 99123456789012 } } }
        core.scrub(err, "12345678")
        assert.is_nil(tostring(err.messages[1]):find("12345678", 1, true))
        assert.is_nil(tostring(err.messages[2][1]):find("12345678", 1, true))
    end)

    it("ends on cycles and stops at its depth bound", function()
        local loop = { "x " .. KEY }
        loop[2] = loop
        local deep = { KEY }
        for _ = 1, 40 do deep = { deep } end
        local err = { messages = { loop, deep } }
        core.scrub(err, KEY)
        assert.are.equal("x <key>", loop[1])
        local t = err.messages[2]
        while type(t[1]) == "table" do t = t[1] end
        assert.are.equal(KEY, t[1]) -- 42 levels down: past the bound, where no text shows
    end)
end)
