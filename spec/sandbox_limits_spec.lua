-- tc-sandbox's REST listener under slow and abusive clients, over real
-- sockets: connections that trickle a request byte by byte hold no thread,
-- so a normal request is answered at once beside 600 of them; each address
-- may hold a bounded number of connections; a head that does not arrive in
-- time gets a 408; framing the sandbox cannot read exactly, heads that are
-- not HTTP/1.x and heads over its limits get the API's JSON error at once
-- and a closed connection (the first request of a connection is checked by
-- src/sandbox/gate.c before libmicrohttpd sees it).
--
-- The clients bind to addresses of the loopback range (127.0.0.2, ...) to
-- stand for several client addresses; the normal requests come from
-- 127.0.0.1. The time bound of a normal request is 100 ms, 400 ms in the
-- sanitizer step of tools/test (it sets ASAN_OPTIONS), where everything
-- runs several times slower.

local cjson = require "cjson.safe"
local sandbox = require "ticketscloud.sandbox"
local socket = require "socket"

local BIN = os.getenv("TC_SANDBOX") or "build/tc-sandbox"
local BOUND = os.getenv("ASAN_OPTIONS") and 0.4 or 0.1
local TRICKLERS = 600
local HEAD_TIMEOUT = 5     -- seconds, docs/sandbox.md
local PER_ADDRESS = 256

local function port_of(sb) return tonumber(sb.api:match(":(%d+)$")) end

-- A connection from the given loopback address (default 127.0.0.1).
local function connect(sb, from)
    local s = assert(socket.tcp())
    if from then assert(s:bind(from, 0)) end
    s:settimeout(5)
    assert(s:connect("127.0.0.1", port_of(sb)))
    return s
end

-- Reads until the server closes (or timeout seconds pass): the bytes, and
-- whether the connection was closed.
local function read_all(s, timeout)
    s:settimeout(timeout)
    local parts = {}
    while true do
        local data, err, partial = s:receive(4096)
        if data then parts[#parts + 1] = data end
        if partial and #partial > 0 then parts[#parts + 1] = partial end
        if err == "closed" then return table.concat(parts), true end
        if err then return table.concat(parts), false end
    end
end

-- Status and decoded JSON body of a raw HTTP answer.
local function parse(raw)
    local status = tonumber(raw:match("^HTTP/1%.%d (%d%d%d)"))
    local body = raw:match("\r\n\r\n(.*)$")
    return status, body and cjson.decode(body), raw:match("^(.-)\r\n\r\n") or ""
end

-- One normal request on a connection of its own: status, seconds taken.
local function timed_get(sb, from)
    local t0 = socket.gettime()
    local s = connect(sb, from)
    assert(s:send("GET /v2/resources/orders?page_size=1 HTTP/1.1\r\nHost: sandbox\r\n" ..
                  "Authorization: key " .. sb.key .. "\r\nConnection: close\r\n\r\n"))
    local raw = read_all(s, 5)
    s:close()
    return parse(raw), socket.gettime() - t0
end

-- A raw request that must be refused at once: status, body, head, closed.
local function refused(sb, text)
    local s = connect(sb)
    s:send(text) -- the answer may come, and the connection close, before all is sent
    local t0 = socket.gettime()
    local raw, closed = read_all(s, 3)
    s:close()
    local status, body, head = parse(raw)
    return status, body, head, closed, socket.gettime() - t0
end

describe("tc-sandbox REST under slow and abusive clients", function()
    local sb, log

    setup(function()
        log = os.tmpname()
        sb = assert(sandbox.start{ bin = BIN, log = log })
    end)

    teardown(function()
        local stopped = sb:stop()
        os.remove(log)
        assert.is_true(stopped)
    end)

    it("answers a normal request at once beside 600 trickling connections, " ..
       "and gives each trickler a 408 when its head is late", function()
        -- 200 from each of three addresses: within the per-address limit,
        -- so every one of them is held.
        local tricklers = {}
        for i = 1, TRICKLERS do
            local s = connect(sb, "127.0.0." .. (2 + (i - 1) % 3))
            assert(s:send("P"))
            tricklers[i] = s
        end
        local started = socket.gettime()
        local worst = 0
        for round = 1, 20 do
            local status, t = timed_get(sb)
            assert.are.equal(200, status)
            worst = math.max(worst, t)
            -- one more byte from every trickler, now and then
            if round % 5 == 0 then
                for _, s in ipairs(tricklers) do assert(s:send("O")) end
            end
            socket.sleep(0.05)
        end
        assert.is_true(worst < BOUND, ("a normal request took %.0f ms"):format(worst * 1000))

        -- the head deadline: every trickler is answered 408 and closed
        local wait = HEAD_TIMEOUT + 1.5 - (socket.gettime() - started)
        if wait > 0 then socket.sleep(wait) end
        for i, s in ipairs(tricklers) do
            local raw, closed = read_all(s, 2)
            s:close()
            local status, body = parse(raw)
            assert.are.equal(408, status, "trickler " .. i .. ": " .. raw)
            assert.are.same({ "the request head did not arrive within 5 s" }, body.errors)
            assert.is_true(closed)
        end
        local status = timed_get(sb)
        assert.are.equal(200, status)
    end)

    it("holds at most 256 waiting connections from one address; others are served meanwhile",
       function()
        local held, dropped, conns = 0, 0, {}
        for i = 1, PER_ADDRESS + 44 do conns[i] = connect(sb, "127.0.0.9") end
        socket.sleep(0.3)
        for _, s in ipairs(conns) do
            -- a connection over the limit gets a 503 at once, and is closed
            local raw, closed = read_all(s, 0.01)
            if closed then
                local status, body = parse(raw)
                assert.are.equal(503, status)
                assert.are.same({ "too many connections wait for their first request; " ..
                                  "try again later" }, body.errors)
                dropped = dropped + 1
            else
                assert.are.equal("", raw)
                held = held + 1
            end
        end
        assert.are.equal(PER_ADDRESS, held)
        assert.are.equal(44, dropped)
        local status, t = timed_get(sb, "127.0.0.10")
        assert.are.equal(200, status)
        assert.is_true(t < BOUND)
        for _, s in ipairs(conns) do s:close() end
    end)

    it("refuses framing it cannot read exactly with a JSON 400 at once, and closes", function()
        local post = "POST /v2/resources/orders HTTP/1.1\r\nHost: x\r\n"
        local cases = {
            { post .. "Transfer-Encoding: gzip\r\n\r\nabc",
              "Transfer-Encoding must be chunked (or send Content-Length instead)" },
            { post .. "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabc",
              "a request may have Content-Length or Transfer-Encoding, not both" },
            -- libmicrohttpd's own answer to these was a page sent with its head twice
            { post .. "Content-Length: 12x\r\n\r\nabc", "Content-Length must be a number of bytes" },
            { post .. "Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
              "Content-Length is given twice, with two values" },
            -- these waited for a line end that never came
            { "GET /v2/resources/orders HTTP/1.1\rHost: x\r\r",
              "a CR in the request head must be followed by LF" },
            { "\22\3\1\2\0\1" .. ("\0"):rep(100),
              "this listener speaks plain HTTP; a TLS handshake is not a request" },
            -- and these got libmicrohttpd's pages
            { "GET /v2/resources/orders\r\n\r\n", "the request line must be METHOD TARGET HTTP/1.1" },
            { "GET /v2/resources/orders HTTP/1.1\r\nHost: x\r\n folded: y\r\n\r\n",
              "a header field may not be folded onto the next line" },
            { "GET /v2/resources/orders HTTP/1.1\r\nNoColon\r\n\r\n",
              "a header field must be NAME: VALUE" },
            { "GET /v2/resources/orders HTTP/1.1\r\nX-A: a\0b\r\n\r\n",
              "the request head holds a control character" },
        }
        for _, case in ipairs(cases) do
            local status, body, head, closed, took = refused(sb, case[1])
            assert.are.equal(400, status, case[2])
            assert.are.same({ case[2] }, body.errors)
            assert.matches("\r\nConnection: close", head, 1, true)
            assert.is_true(closed)
            assert.is_true(took < 1)
        end
        local status, body = refused(sb, "GET / HTTP/2.0\r\n\r\n")
        assert.are.equal(505, status)
        assert.are.same({ "only HTTP/1.0 and HTTP/1.1 are spoken here" }, body.errors)
        status, body = refused(sb, post .. "Content-Length: 99999999999999999999999\r\n\r\n")
        assert.are.equal(413, status)
        assert.are.same({ "request body is larger than 1 MiB" }, body.errors)
    end)

    it("answers a target or head over its limit with the API's error", function()
        for _, n in ipairs{ 9000, 70000 } do
            local status, body, _, closed = refused(sb, "GET /" .. ("a"):rep(n) ..
                                                    " HTTP/1.1\r\nHost: x\r\n\r\n")
            assert.are.equal(414, status)
            assert.are.same({ "the request target is longer than 8 KiB" }, body.errors)
            assert.is_true(closed)
        end
        local too_big = "the request head is larger than 16 KiB or has more than 100 fields"
        for _, n in ipairs{ 20000, 70000 } do
            local status, body = refused(sb, "GET / HTTP/1.1\r\nHost: x\r\nX-A: " ..
                                             ("a"):rep(n) .. "\r\n\r\n")
            assert.are.equal(431, status)
            assert.are.same({ too_big }, body.errors)
        end
        local fields = {}
        for i = 1, 150 do fields[i] = "X-" .. i .. ": y\r\n" end
        local status, body = refused(sb, "GET / HTTP/1.1\r\nHost: x\r\n" ..
                                         table.concat(fields) .. "\r\n")
        assert.are.equal(431, status)
        assert.are.same({ too_big }, body.errors)
    end)

    it("gives a connection that sends half a head, or nothing, a 408 once its time is up",
       function()
        local half = connect(sb)
        assert(half:send("GET /v2/resources/orders HTTP/1.1\r\nHost: x\r\n"))
        local silent = connect(sb)
        for _, s in ipairs{ half, silent } do
            local raw, closed = read_all(s, HEAD_TIMEOUT + 2)
            s:close()
            local status, body = parse(raw)
            assert.are.equal(408, status)
            assert.are.same({ "the request head did not arrive within 5 s" }, body.errors)
            assert.is_true(closed)
        end
    end)

    it("checks a kept-alive connection's later requests too, in libmicrohttpd's way", function()
        -- the first request passes the gate; the second meets libmicrohttpd,
        -- which refuses what it cannot parse with its own page (docs/sandbox.md)
        local s = connect(sb)
        assert(s:send("GET /v2/resources/orders?page_size=1 HTTP/1.1\r\nHost: x\r\n" ..
                      "Authorization: key " .. sb.key .. "\r\n\r\n" ..
                      "GET /v2/resources/orders HTTP/1.1\r\nHost: x\r\nX-A: " ..
                      ("a"):rep(20000) .. "\r\n\r\n"))
        local raw, closed = read_all(s, 3)
        s:close()
        assert.matches("^HTTP/1%.1 200 ", raw)
        -- the second: within libmicrohttpd's buffer, so still the API's 431
        assert.matches("}HTTP/1%.1 431 .-\r\n\r\n{\"errors\"", raw)
        assert.is_true(closed)
    end)
end)
