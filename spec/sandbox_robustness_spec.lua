-- tc-sandbox under random and malformed REST input (fixed seed): it never
-- crashes or answers 500, every answer has the documented shape, and
-- afterwards the inventory invariant holds: per set vacant + reserved +
-- sold = total (as gRPC Events and Seats show it), a ticket is in at most
-- one live order, and every order's amounts add up in whole kopecks.
--
-- Delayed PATCHes (X-Sandbox-Delay) run alongside from curl, so some
-- changes meet 409 and, with --expire 1, some orders expire while a change
-- of theirs sleeps.

local cjson = require "cjson.safe"
local http = require "socket.http"
local ltn12 = require "ltn12"
local socket = require "socket"
local sandbox = require "ticketscloud.sandbox"
local tc = require "ticketscloud"

local BIN = os.getenv("TC_SANDBOX") or "build/tc-sandbox"
local KEY = sandbox.DEFAULT_KEY
local SEED = 20240501
local REQUESTS = 300

local function read_file(path)
    local f = assert(io.open(path, "rb"))
    local s = f:read("a")
    f:close()
    return s
end

local CAT = assert(cjson.decode(read_file("examples/catalog.json")))

-- What the catalog offers: ids to aim at and the size of every set.
local EVENTS, SETS, SEATS, CODES, SIZE, SEATED_EVENTS = {}, {}, {}, {}, {}, {}
for _, e in ipairs(CAT.events) do
    EVENTS[#EVENTS + 1] = e.id
    for _, s in ipairs(e.sets or {}) do
        SETS[#SETS + 1] = s.id
        SIZE[s.id] = #(s.tickets or {}) + (s.stock and s.stock.count or 0)
        for _, t in ipairs(s.tickets or {}) do SEATS[#SEATS + 1] = t.id end
        if s.with_seats then SEATED_EVENTS[e.id] = true end
    end
    for _, p in ipairs(e.promocodes or {}) do CODES[#CODES + 1] = p.code end
end

local function shell_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- ---- random JSON text ------------------------------------------------------

local rnd = math.random
local function pick(list) return list[rnd(#list)] end
local function chance(p) return rnd() < p end

local function hex24()
    local t = {}
    for i = 1, 24 do
        local k = rnd(16)
        t[i] = ("0123456789abcdef"):sub(k, k)
    end
    return table.concat(t)
end

local ODD_STRINGS = {
    "", " ", "x", "done", "cancelled", "executed", "expired", "paid", "DONE", "null",
    "я", "Фан зона", "😀", "\u{FFFF}", "a\nb\tc", "\"quoted\"", "%s%n%x", "\\",
    ("я"):rep(300), ("x"):rep(70000), "0", "-1", "1e999", "\xff\xfe", "a\0b",
}
local NUMBERS = {
    "0", "1", "-1", "2", "3", "5", "100000", "100001", "9223372036854775807",
    "-9223372036854775808", "9223372036854775808", "18446744073709551616", "1.5", "-0",
    "1e999", "1e-999", "0.0", "3e2", "-100000",
}

local function jstring(s) return assert(cjson.encode(s)) end
local function id_of(list) return chance(0.9) and pick(list) or hex24() end
local function odd_string() return chance(0.3) and hex24() or pick(ODD_STRINGS) end

local value
local function array(n, item)
    local t = {}
    for i = 1, n do t[i] = item() end
    return "[" .. table.concat(t, ",") .. "]"
end
local function object(n, key, item)
    local t = {}
    for i = 1, n do t[i] = jstring(key()) .. ":" .. item() end
    return "{" .. table.concat(t, ",") .. "}"
end
function value(depth)
    depth = depth or 0
    local k = rnd(depth > 2 and 5 or 7)
    if k == 1 then return "null" end
    if k == 2 then return pick{ "true", "false" } end
    if k == 3 then return pick(NUMBERS) end
    if k <= 5 then return jstring(odd_string()) end
    if k == 6 then return array(rnd(0, 3), function() return value(depth + 1) end) end
    return object(rnd(0, 3), odd_string, function() return value(depth + 1) end)
end

-- Mostly plausible, sometimes anything at all.
local function maybe(gen) return function() return chance(0.9) and gen() or value() end end

local seen_tickets = {}
local function ticket_id()
    if #seen_tickets > 0 and chance(0.5) then return pick(seen_tickets) end
    return id_of(SEATS)
end

local FIELDS = {
    event = maybe(function() return jstring(id_of(EVENTS)) end),
    tickets = maybe(function()
        return array(rnd(0, 6), function() return chance(0.9) and jstring(ticket_id()) or value() end)
    end),
    random = maybe(function()
        return object(rnd(0, 3), function() return id_of(SETS) end, function()
            return chance(0.7) and tostring(rnd(0, 4)) or pick(NUMBERS)
        end)
    end),
    all_or_nothing = maybe(function() return pick{ "true", "false" } end),
    settings = maybe(function()
        local s = {}
        if chance(0.6) then
            s[#s + 1] = '"customer":' .. object(rnd(0, 4), function()
                return pick{ "name", "email", "phone", "lang", odd_string() }
            end, function()
                return jstring(pick{ "Иван", "a@b.c", "+79991234576", "ru", "en", odd_string() })
            end)
        end
        for _, flag in ipairs{ "send_tickets", "invitation", "courier", "smart_tickets" } do
            if chance(0.2) then s[#s + 1] = '"' .. flag .. '":' .. pick{ "true", "false", value() } end
        end
        return "{" .. table.concat(s, ",") .. "}"
    end),
    vendor_data = maybe(function()
        local s = {}
        if chance(0.6) then s[#s + 1] = '"order_id":' .. jstring(odd_string()) end
        if chance(0.6) then
            s[#s + 1] = '"raw":' .. object(chance(0.1) and 21 or rnd(0, 4), odd_string, value)
        end
        return "{" .. table.concat(s, ",") .. "}"
    end),
    promocodes = maybe(function()
        return array(rnd(0, 3), function()
            local c = pick(CODES)
            return jstring(chance(0.7) and (chance(0.5) and c:upper() or c) or odd_string())
        end)
    end),
    status = maybe(function() return jstring(pick{ "done", "cancelled", "done", odd_string() }) end),
    expired_after = function() return jstring("2030-01-01 00:00:00") end,
}
local FIELD_P = { event = 0.8, tickets = 0.3, random = 0.4, all_or_nothing = 0.15, settings = 0.2,
                  vendor_data = 0.15, promocodes = 0.15, status = 0.1, expired_after = 0.02 }
local FIELD_ORDER = { "event", "tickets", "random", "all_or_nothing", "settings", "vendor_data",
                      "promocodes", "status", "expired_after" }

local MALFORMED = {
    "", "{", "[]", "null", "42", '"x"', '{"event":', '{"a":1,"a":2}', '{"event":"x"}garbage',
    "\xff\xfe{}", ('['):rep(5000) .. (']'):rep(5000), '{"vendor_data":{"raw":{"k":' ..
    ('['):rep(3000) .. (']'):rep(3000) .. '}}}', '{"random":{"x":18446744073709551616}}',
    '{"tickets":["' .. ("a"):rep(200000) .. '"]}',
}

local function body()
    if chance(0.06) then return pick(MALFORMED) end
    local parts = {}
    for _, k in ipairs(FIELD_ORDER) do
        if chance(FIELD_P[k]) then parts[#parts + 1] = '"' .. k .. '":' .. FIELDS[k]() end
    end
    if chance(0.05) then parts[#parts + 1] = jstring(odd_string()) .. ":" .. value() end
    return "{" .. table.concat(parts, ",") .. "}"
end

local function url_encode(s)
    return (s:gsub("[^%w%-%._~]", function(c) return ("%%%02X"):format(c:byte()) end))
end

local QUERY_VALUES = { "1", "0", "2", "200", "201", "-1", "x", "", "true", "false", "maybe",
                       "done,cancelled", "executed", "expired,in_progress", "paid", ",,",
                       "2000-01-01T00:00:00,2100-01-01T00:00:00", "2000-01-01,", ",2100-01-01",
                       "yesterday", "99999999999999999999", "\xff", ("done,"):rep(80) }
local function query()
    local q = {}
    for _ = 1, rnd(0, 4) do
        local k = pick{ "page", "page_size", "status", "events", "created_at", "only_with_customer",
                        odd_string() }
        local v = k == "events" and chance(0.6) and (id_of(EVENTS) .. "," .. id_of(EVENTS))
                  or pick(QUERY_VALUES)
        q[#q + 1] = url_encode(k) .. "=" .. url_encode(v)
    end
    return #q > 0 and "?" .. table.concat(q, "&") or ""
end

-- ---- requests and what their answers must look like ------------------------

local function request(sb, method, path, text, headers)
    local out, h = {}, { authorization = "key " .. KEY }
    for k, v in pairs(headers or {}) do h[k] = v end
    local src
    if text then
        h["content-type"] = "application/json"
        h["content-length"] = tostring(#text)
        src = ltn12.source.string(text)
    end
    local ok, status = http.request{ url = sb.api .. path, method = method, headers = h,
                                     source = src, sink = ltn12.sink.table(out) }
    assert(ok, ("%s %s: %s"):format(method, path, tostring(status)))
    local raw = table.concat(out)
    return status, raw
end

local function kopecks(s, where)
    local sign, units, cents = tostring(s):match("^(%-?)(%d+)%.(%d%d)$")
    assert(units, where .. ": not money: " .. tostring(s))
    local n = tonumber(units) * 100 + tonumber(cents)
    return sign == "-" and -n or n
end

-- An order's amounts agree in whole kopecks (spec §7.6).
local function check_amounts(o)
    local where = "order " .. o.id
    local sum = { price = 0, discount = 0, nominal = 0, extra = 0, full = 0 }
    for _, t in ipairs(o.tickets) do
        local a = {}
        for k in pairs(sum) do
            a[k] = kopecks(t[k], where)
            assert(a[k] >= 0, where .. ": negative " .. k)
            sum[k] = sum[k] + a[k]
        end
        assert(a.nominal == a.price - a.discount, where .. ": nominal")
        assert(a.full == a.nominal + a.extra, where .. ": full")
    end
    for k, v in pairs(sum) do assert(kopecks(o.values[k], where) == v, where .. ": values." .. k) end
    for id, sv in pairs(o.values.sets_values) do
        assert(kopecks(sv.nominal, where) == kopecks(sv.price, where) - kopecks(sv.discount, where),
               where .. ": sets_values " .. id)
    end
    if o.status == "done" then
        assert(o.code and #o.code == 8, where .. ": code")
        for _, t in ipairs(o.tickets) do assert(tostring(t.barcode):match("^%d+$"), where) end
    end
end

local STATUSES = { executed = true, done = true, cancelled = true, expired = true }

-- Checks one answer; returns the order of a 200 order answer.
local function check_answer(what, status, raw)
    assert(status ~= 500, what .. ": 500 " .. raw:sub(1, 300))
    local allowed = { [200] = true, [400] = true, [404] = true, [405] = true, [409] = true,
                      [413] = true, [414] = true }
    assert(allowed[status], what .. ": status " .. tostring(status))
    if status == 200 and raw == "" then return nil end
    local b = cjson.decode(raw)
    assert(type(b) == "table", what .. ": not JSON: " .. raw:sub(1, 300))
    if status ~= 200 then
        if b.error then -- promocodes/check's own shape (spec §3.2)
            assert(b.error == "HTTPBadRequest" and type(b.reason) == "string", what)
        else
            assert(type(b.errors) == "table" and #b.errors > 0, what .. ": no errors: " .. raw)
            for _, e in ipairs(b.errors) do assert(type(e) == "string", what .. ": " .. raw) end
        end
        return nil
    end
    if type(b.data) == "table" and b.data.id then
        assert(STATUSES[b.data.status], what .. ": status " .. tostring(b.data.status))
        check_amounts(b.data)
        if b.errors then -- promocodes that could not be applied: {code, msg}
            for _, e in ipairs(b.errors) do
                assert(type(e.code) == "string" and type(e.msg) == "string", what)
            end
        end
        return b.data
    end
    return nil
end

-- Small valid changes that curl sends with a delay while the main loop runs.
local DELAYED = {
    '{"random": {"5d7135112110d30a34e97e2d": 2}}',
    '{"random": {"5d71353b2110d30a34e97e31": 1, "5d713505255895db3c30b0c5": 2}}',
    '{"tickets": ["5d7134962110d30a34e95cfe", "5d7134962110d30a34e95cfd"]}',
    '{"status": "done"}', '{"status": "cancelled"}', '{}',
}

local function start_delayed(sb, ids)
    local procs = {}
    for w = 1, 3 do
        local cmds = {}
        for _ = 1, 4 do
            cmds[#cmds + 1] = "curl -s -o /dev/null --max-time 20 -w '%{http_code} ' -X PATCH -H "
                .. shell_quote("Authorization: key " .. KEY) .. " -H "
                .. shell_quote("X-Sandbox-Delay: " .. rnd(0, 600)) .. " -d "
                .. shell_quote(pick(DELAYED)) .. " "
                .. shell_quote(sb.api .. "/v2/resources/orders/" .. pick(ids))
        end
        procs[w] = assert(io.popen("env -u LD_PRELOAD sh -c " ..
                                   shell_quote(table.concat(cmds, "; ") .. "; echo"), "r"))
    end
    return procs
end

local function finish_delayed(procs)
    for _, p in ipairs(procs) do
        local out = p:read("a")
        p:close()
        for code in out:gmatch("%d+") do
            assert.is_truthy(({ ["200"] = 1, ["400"] = 1, ["409"] = 1 })[code], "delayed PATCH: " .. out)
        end
    end
end

-- n random requests; returns how many answers of each status there were.
local function fuzz(sb, n)
    local ids, counts = {}, {}
    seen_tickets = {}
    local function note(order)
        if not order then return end
        ids[#ids + 1] = order.id
        for _, t in ipairs(order.tickets) do seen_tickets[#seen_tickets + 1] = t.id end
    end
    local delayed
    for i = 1, n do
        if i == 20 and #ids > 0 then delayed = start_delayed(sb, ids) end
        local k = rnd(100)
        local method, path, text, headers
        if k <= 35 then
            method, path, text = "POST", "/v2/resources/orders", body()
        elseif k <= 72 then
            local id = (#ids > 0 and chance(0.9)) and pick(ids) or odd_string()
            method, path, text = "PATCH", "/v2/resources/orders/" .. url_encode(id), body()
            if chance(0.1) then
                headers = { ["x-sandbox-delay"] = pick{ "0", "1", "5", "-1", "x", "10001",
                                                        "99999999999999999999" } }
            end
        elseif k <= 80 then
            local id = (#ids > 0 and chance(0.8)) and pick(ids) or odd_string()
            method, path = "GET", "/v2/resources/orders/" .. url_encode(id)
        elseif k <= 92 then
            method, path = "GET", "/v2/resources/orders" .. query()
        elseif k <= 96 then
            method, path = "POST", "/v2/services/promocodes/check"
            text = object(rnd(0, 2), function() return pick{ "event", "code", odd_string() } end,
                          function() return jstring(chance(0.5) and pick(CODES) or id_of(EVENTS)) end)
        else
            method = pick{ "GET", "PUT", "DELETE", "PATCH", "POST", "OPTIONS" }
            path = pick{ "/", "/v2", "/v2/resources/orders/export", "/v2/resources/orders/a/b",
                         "/v2/resources/orders/" .. ("x"):rep(3000), "/%FF" }
            text = chance(0.5) and body() or nil
        end
        local status, raw = request(sb, method, path, text, headers)
        counts[status] = (counts[status] or 0) + 1
        local order = check_answer(method .. " " .. path:sub(1, 80), status, raw)
        if method == "POST" and path == "/v2/resources/orders" then note(order) end
    end
    if delayed then finish_delayed(delayed) end
    return counts
end

-- ---- the invariant -----------------------------------------------------------

local function all_orders(sb)
    local orders, page = {}, 1
    repeat
        local status, raw = request(sb, "GET", "/v2/resources/orders?page_size=200&page=" .. page)
        assert.are.equal(200, status)
        local b = assert(cjson.decode(raw))
        for _, o in ipairs(b.data) do orders[#orders + 1] = o end
        page = page + 1
    until #b.data == 0
    return orders
end

local function check_invariant(sb)
    local state, held = {}, {}
    for _, o in ipairs(all_orders(sb)) do
        check_amounts(o)
        if o.status == "executed" or o.status == "done" then
            for _, t in ipairs(o.tickets) do
                assert(state[t.id] == nil, "ticket " .. t.id .. " in two live orders")
                state[t.id] = o.status
                held[t.set] = (held[t.set] or 0) + 1
            end
        end
    end
    local client = assert(tc.new{ key = sb.key, api = sb.api, simple = sb.simple })
    local sets = 0
    for e in assert(client:events()) do
        for _, s in ipairs(e.sets or {}) do
            sets = sets + 1
            assert.are.equal(SIZE[s.id], s.amount, s.id)
            assert.are.equal(s.amount - (held[s.id] or 0), s.amount_vacant or 0, s.id)
        end
        if SEATED_EVENTS[e.id] then
            for seat in assert(client:seats{ event = e.id }) do
                local want = state[seat.ticket] == "done" and "SOLD"
                             or state[seat.ticket] == "executed" and "RESERVED" or "VACANT"
                assert.are.equal(want, seat.status, seat.ticket)
            end
        end
    end
    client:close()
    assert.are.equal(#SETS, sets)
end

describe("tc-sandbox under random and malformed REST input", function()
    local function run(opts, settle)
        local log = os.tmpname()
        opts.bin, opts.log, opts.seed = BIN, log, 1
        local sb = assert(sandbox.start(opts))
        local ok, err = pcall(function()
            local counts = fuzz(sb, REQUESTS)
            -- every kind of answer came up
            assert.is_true((counts[200] or 0) > 50)
            assert.is_true((counts[400] or 0) > 50)
            assert.is_true((counts[404] or 0) > 0)
            if settle then socket.sleep(settle) end
            check_invariant(sb)
        end)
        local stopped = sb:stop()
        local text = read_file(log)
        os.remove(log)
        assert(ok, err)
        assert(stopped, "tc-sandbox did not exit cleanly:\n" .. text:sub(-3000))
    end

    it("keeps the invariant with reservations held (--expire 900)", function()
        math.randomseed(SEED)
        run({ expire = 900 })
    end)

    it("keeps the invariant while orders expire under changes (--expire 1)", function()
        math.randomseed(SEED + 1)
        run({ expire = 1 }, 1.2)
    end)
end)
