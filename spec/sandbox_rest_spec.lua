-- tc-sandbox REST: the v2 orders API over real sockets (LuaSocket and curl).
--
-- Every test talks to a real tc-sandbox process started from
-- $TC_SANDBOX (see lua/ticketscloud/sandbox.lua). The fixtures are those of
-- examples/catalog.json: the order example of the API docs (spec §5.8) and
-- a few more events for promocodes, deals and promotions.

local cjson = require "cjson.safe"
local http = require "socket.http"
local ltn12 = require "ltn12"
local socket = require "socket"
local sandbox = require "ticketscloud.sandbox"

local BIN = os.getenv("TC_SANDBOX") or "build/tc-sandbox"
local KEY = sandbox.DEFAULT_KEY

-- Fixtures (spec §5.8 and examples/catalog.json).
local EVENT = "5d7134962110d30a34e95b96"
local ORG = "5ba10ea90c43fc000b0fc786"
local FAN = "5d7135112110d30a34e97e2d"     -- "Фан зона", 5600.00, unseated
local A2 = "5d71353b2110d30a34e97e31"      -- "A2", 990.00, seated
local VIP = "5d713505255895db3c30b0c5"     -- 6666.00, 30 tickets
local PYX = "5d7135113f18da51a186ad16"     -- Фан зона, PYX 168475
local SEAT = "5d7134962110d30a34e95cfe"    -- A2 row 2 seat 14, EOY 135830
local SEAT2 = "5d7134962110d30a34e95cfd"   -- A2 row 2 seat 13
local SECTOR = "5a8dd58e6e55b2064c67c144"
local SPLIN = "5d31fbdd27649b0dff076117"   -- 4 % extra
local SPLIN_SET = "5d31fbfa27649b0dff07611b"
local STANDUP = "5db2d8504d9134a8c7ec2cf5" -- 5.5 % extra, fix promocodes
local PARTER = "5db2d8504d9134a8c7ec2d01"  -- 1000.00
local BALCONY = "5d664830e4c685ae48bd2d3d" -- 500.00
local KISH = "5d765a4a221988d7da985875"    -- 4 % extra, percentage promocodes
local BIG = "5d765a59221988d7da985879"     -- "Билетище", 1099.00
local DANCE = "5d765a59221988d7da98587a"   -- 5 tickets only
local BALLET = "5dcbd3a1b2c3d4e5f6a7b8d0"  -- has a promotion
local NODEAL = "5e0a1b2c3d4e5f6071829304"  -- no deal with the distributor
local NOT_ENOUGH = "Not enough money, \u{441}ontact to TicketsCloud manager"

-- One HTTP request. Returns status, decoded JSON body (or nil), raw body.
local function request(sb, method, path, body, headers)
    local out = {}
    local h = { ["authorization"] = "key " .. (sb.key or KEY) }
    for k, v in pairs(headers or {}) do h[k] = v or nil end
    if headers and headers.authorization == false then h.authorization = nil end
    local src
    if body ~= nil then
        if type(body) ~= "string" then body = assert(cjson.encode(body)) end
        h["content-type"] = "application/json"
        h["content-length"] = tostring(#body)
        src = ltn12.source.string(body)
    end
    local ok, status = http.request{
        url = sb.api .. path, method = method, headers = h, source = src,
        sink = ltn12.sink.table(out),
    }
    assert(ok, status)
    local raw = table.concat(out)
    return status, cjson.decode(raw), raw
end

local function post(sb, body, headers) return request(sb, "POST", "/v2/resources/orders", body, headers) end
local function patch(sb, id, body, headers)
    return request(sb, "PATCH", "/v2/resources/orders/" .. id, body, headers)
end
local function get(sb, id) return request(sb, "GET", "/v2/resources/orders/" .. id) end

local function shell_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- Runs a shell command line for reading. The sanitizer run preloads
-- libasan into this process; helpers like curl must not inherit that (curl
-- hangs at exit under it), so the preload is dropped for them.
local function popen(cmd)
    return assert(io.popen("env -u LD_PRELOAD sh -c " .. shell_quote(cmd), "r"))
end

-- A 400 with exactly this message in the `errors` list.
local function assert_error(status, body, code, msg)
    assert.are.equal(code, status)
    assert.is_table(body)
    assert.is_table(body.errors)
    if msg then assert.are.same({ msg }, body.errors) end
end

local function ticket_ids(order)
    local ids = {}
    for i, t in ipairs(order.tickets) do ids[i] = t.id end
    return ids
end

local function start(opts)
    opts = opts or {}
    opts.bin = opts.bin or BIN
    return assert(sandbox.start(opts))
end

local function keys_of(t)
    local ks = {}
    for k in pairs(t) do ks[#ks + 1] = k end
    table.sort(ks)
    return ks
end

describe("tc-sandbox REST", function()
    local sb

    lazy_setup(function() sb = start{ seed = 7 } end)
    lazy_teardown(function() assert.is_true(sb:stop()) end)

    describe("the order example, path A (random first, spec §5.8)", function()
        local id, created, expires

        it("2a creates the order with one random Фан зона ticket", function()
            local status, body = post(sb, { event = EVENT, random = { [FAN] = 1 } })
            assert.are.equal(200, status)
            local o = body.data
            id, created, expires = o.id, o.created_at, o.expired_after
            assert.matches("^[0-9a-f]+$", o.id)
            assert.are.equal(24, #o.id)
            assert.are.equal("executed", o.status)
            assert.are.equal(EVENT, o.event)
            assert.are.equal(ORG, o.org)
            assert.are.equal(ORG, o.vendor)
            assert.are.equal("api", o.origin)
            assert.is_number(o.number)
            assert.matches("^%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d$", o.created_at)
            assert.is_nil(o.done_at)
            assert.is_nil(o.code)
            assert.are.same({}, o.promocodes)
            assert.are.same({}, o.vendor_data)
            assert.is_false(o.settings.send_tickets)
            assert.are.equal(1, #o.tickets)
            local t = o.tickets[1]
            assert.are.equal(PYX, t.id)
            assert.are.equal(FAN, t.set)
            assert.are.equal("PYX", t.serial)
            assert.are.equal(168475, t.number)
            assert.is_nil(t.seat)
            assert.are.equal("reserved", t.status)
            assert.are.equal(cjson.null, t.barcode)
            assert.are.same({ "5600.00", "0.00", "5600.00", "560.00", "6160.00" },
                            { t.price, t.discount, t.nominal, t.extra, t.full })
            local v = o.values
            assert.are.same({ "5600.00", "0.00", "5600.00", "560.00", "6160.00" },
                            { v.price, v.discount, v.nominal, v.extra, v.full })
            assert.are.same({}, v.viral_promocodes)
            assert.are.same({ id = VIP, price = "6666.00", discount = "0.00", nominal = "6666.00",
                              promocode = cjson.null }, v.sets_values[VIP])
            local all = { A2, VIP, FAN }
            table.sort(all)
            assert.are.same(all, keys_of(v.sets_values))
            local ev = body.refs.events[EVENT]
            assert.are.same({ text = "Slipknot", desc = "ref" }, ev.title)
            assert.are.equal("public", ev.status)
            assert.are.equal("Europe/Moscow", ev.timezone)
            assert.are.same({ start = "2020-06-12 15:00:00", finish = "2020-06-12 18:00:00" },
                            ev.lifetime)
            assert.are.equal(ORG, ev.org)
            assert.are.equal(16, ev.age_rating)
            assert.are.same({ [ORG] = { id = ORG, name = "Тест VK Pay" } }, body.refs.partners)
            assert.are.same({}, body.refs.promocodes)
            assert.are.same({ [FAN] = { id = FAN, name = "Фан зона", price = "5600.00",
                                        with_seats = false } }, body.refs.sets)
            local venue = body.refs.venues[ev.venue]
            assert.are.equal(520555, venue.city._id)
            assert.are.equal("Europe/Moscow", venue.city.timezone)
            assert.are.equal("RU", venue.country._id)
            assert.is_string(venue.city.name.default)
        end)

        it("lives --expire seconds (default 900)", function()
            local function secs(s)
                local y, mo, d, h, mi, se = s:match("(%d+)-(%d+)-(%d+) (%d+):(%d+):(%d+)")
                return os.time{ year = y, month = mo, day = d, hour = h, min = mi, sec = se }
            end
            assert.are.equal(900, secs(expires) - secs(created))
        end)

        it("3a adds the seated ticket by listing every wanted ticket", function()
            local status, body = patch(sb, id, { tickets = { PYX, SEAT } })
            assert.are.equal(200, status)
            local o = body.data
            assert.are.equal("executed", o.status)
            assert.are.equal(created, o.created_at)
            assert.are.equal(expires, o.expired_after)
            assert.are.same({ PYX, SEAT }, ticket_ids(o))
            local t = o.tickets[2]
            assert.are.equal(A2, t.set)
            assert.are.equal("EOY", t.serial)
            assert.are.equal(135830, t.number)
            assert.are.same({ row = "2", number = "14", sector = SECTOR }, t.seat)
            assert.are.same({ "990.00", "0.00", "990.00", "99.00", "1089.00" },
                            { t.price, t.discount, t.nominal, t.extra, t.full })
            assert.are.equal("6160.00", o.tickets[1].full)
            local v = o.values
            assert.are.same({ "6590.00", "0.00", "6590.00", "659.00", "7249.00" },
                            { v.price, v.discount, v.nominal, v.extra, v.full })
            assert.are.same({ [FAN] = { id = FAN, name = "Фан зона", price = "5600.00", with_seats = false },
                              [A2] = { id = A2, name = "A2", price = "990.00", with_seats = true } },
                            body.refs.sets)
        end)

        it("GET /v2/resources/orders/:id reads it back unchanged", function()
            local status, body = get(sb, id)
            assert.are.equal(200, status)
            assert.are.same({ PYX, SEAT }, ticket_ids(body.data))
            assert.are.equal("7249.00", body.data.values.full)
        end)

        it("4 completes it: barcodes, code, done_at, amounts unchanged", function()
            local status, body = patch(sb, id, { status = "done" })
            assert.are.equal(200, status)
            local o = body.data
            assert.are.equal("done", o.status)
            assert.matches("^[a-z0-9]+$", o.code)
            assert.are.equal(8, #o.code)
            assert.matches("^%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d$", o.done_at)
            assert.are.equal(created, o.created_at)
            assert.are.equal(expires, o.expired_after)
            assert.are.same({ PYX, SEAT }, ticket_ids(o))
            for _, t in ipairs(o.tickets) do
                assert.are.equal("reserved", t.status)
                assert.matches("^%d+$", t.barcode)
                assert.are.equal(17, #t.barcode)
            end
            assert.are_not.equal(o.tickets[1].barcode, o.tickets[2].barcode)
            local v = o.values
            assert.are.same({ "6590.00", "0.00", "6590.00", "659.00", "7249.00" },
                            { v.price, v.discount, v.nominal, v.extra, v.full })
            assert.are.equal(2, #keys_of(body.refs.sets))
        end)

        it("refuses any change of a done order", function()
            local status, body = patch(sb, id, { tickets = { PYX } })
            assert_error(status, body, 400, "Not allow to update order in status done")
            status, body = patch(sb, id, { status = "cancelled" })
            assert_error(status, body, 400, "Order " .. id .. " is not cancellable")
            status, body = patch(sb, id, { status = "done" })
            assert_error(status, body, 400, "Not allow to update order in status done")
            -- and its tickets are sold: nobody else gets them
            status, body = post(sb, { tickets = { SEAT } })
            assert.are.equal(200, status)
            assert.are.same({}, body.data.tickets)
        end)
    end)

    describe("the order example, path B (seated first, spec §5.8)", function()
        local sb2, id

        lazy_setup(function() sb2 = start() end)
        lazy_teardown(function() assert.is_true(sb2:stop()) end)

        it("2b creates the order from the seated ticket; the event is inferred", function()
            local status, body = post(sb2, { tickets = { SEAT } })
            assert.are.equal(200, status)
            local o = body.data
            id = o.id
            assert.are.equal(EVENT, o.event)
            assert.are.equal("executed", o.status)
            assert.are.same({ SEAT }, ticket_ids(o))
            assert.are.same({ row = "2", number = "14", sector = SECTOR }, o.tickets[1].seat)
            local v = o.values
            assert.are.same({ "990.00", "0.00", "990.00", "99.00", "1089.00" },
                            { v.price, v.discount, v.nominal, v.extra, v.full })
            assert.are.same({ A2 }, keys_of(body.refs.sets))
        end)

        it("3b tops up with random naming both sets and keeps the same seat", function()
            local status, body = patch(sb2, id, { random = { [A2] = 1, [FAN] = 1 } })
            assert.are.equal(200, status)
            local o = body.data
            assert.are.same({ SEAT, PYX }, ticket_ids(o))
            assert.is_nil(o.tickets[2].seat)
            assert.are.same({ "5600.00", "560.00", "6160.00" },
                            { o.tickets[2].price, o.tickets[2].extra, o.tickets[2].full })
            local v = o.values
            assert.are.same({ "6590.00", "0.00", "6590.00", "659.00", "7249.00" },
                            { v.price, v.discount, v.nominal, v.extra, v.full })
            assert.are.same({ FAN, A2 }, keys_of(body.refs.sets))
        end)

        it("random without the seated set releases the seat (count 0)", function()
            local _, body = patch(sb2, id, { random = { [FAN] = 1 } })
            assert.are.same({ PYX }, ticket_ids(body.data))
            local status, other = post(sb2, { tickets = { SEAT } })
            assert.are.equal(200, status)
            assert.are.same({ SEAT }, ticket_ids(other.data))
        end)

        it("4 completes it", function()
            local status, body = patch(sb2, id, { status = "done" })
            assert.are.equal(200, status)
            assert.are.equal("done", body.data.status)
            assert.are.equal("6160.00", body.data.values.full)
        end)
    end)

    describe("reservation (spec §5)", function()
        it("an order with only an event is empty with every set in sets_values", function()
            local status, body = post(sb, { event = SPLIN })
            assert.are.equal(200, status)
            local v = body.data.values
            assert.are.same({}, body.data.tickets)
            assert.are.same({ "0.00", "0.00", "0.00", "0.00", "0.00" },
                            { v.price, v.discount, v.nominal, v.extra, v.full })
            assert.are.equal("150.00", v.sets_values[SPLIN_SET].price)
            assert.are.equal("1050.00", v.sets_values["5d31fbfa8a75c12c9d64de13"].price)
            assert.are.same({}, body.refs.sets)
        end)

        it("prices with the event's deal extra (4 %)", function()
            local _, body = post(sb, { event = SPLIN, random = { [SPLIN_SET] = 2 } })
            local t = body.data.tickets[1]
            assert.are.same({ "150.00", "6.00", "156.00" }, { t.price, t.extra, t.full })
            assert.are.equal("312.00", body.data.values.full)
            assert.are.equal(SPLIN, body.data.event)
        end)

        it("infers the event from the sets of random", function()
            local status, body = post(sb, { random = { [SPLIN_SET] = 1 } })
            assert.are.equal(200, status)
            assert.are.equal(SPLIN, body.data.event)
            assert.are.equal(1, #body.data.tickets)
        end)

        it("random picks the lowest free numbers and releases LIFO", function()
            local _, body = post(sb, { event = STANDUP, random = { [PARTER] = 3 } })
            local o = body.data
            local numbers = {}
            for i, t in ipairs(o.tickets) do numbers[i] = t.number end
            assert.are.same({ 1, 2, 3 }, numbers)
            local _, b2 = patch(sb, o.id, { random = { [PARTER] = 2 } })
            assert.are.same({ o.tickets[1].id, o.tickets[2].id }, ticket_ids(b2.data))
            -- the released one is free again
            local _, b3 = post(sb, { event = STANDUP, random = { [PARTER] = 1 } })
            assert.are.equal(3, b3.data.tickets[1].number)
            patch(sb, b3.data.id, { status = "cancelled" })
            patch(sb, o.id, { status = "cancelled" })
        end)

        it("ignores unknown sets in random and duplicate ids in tickets", function()
            local _, body = post(sb, { event = EVENT,
                                       random = { [FAN] = 1, ["000000000000000000000000"] = 3 } })
            assert.are.equal(1, #body.data.tickets)
            local _, b2 = post(sb, { tickets = { SEAT2, SEAT2 } })
            assert.are.same({ SEAT2 }, ticket_ids(b2.data))
            patch(sb, b2.data.id, { status = "cancelled" })
            patch(sb, body.data.id, { status = "cancelled" })
        end)

        it("skips taken tickets silently without all_or_nothing", function()
            local _, holder = post(sb, { tickets = { SEAT2 } })
            local free = "5d7134962110d30a34e95cfc"
            local status, body = post(sb, { event = EVENT, tickets = { free, SEAT2 } })
            assert.are.equal(200, status)
            assert.are.same({ free }, ticket_ids(body.data))
            patch(sb, body.data.id, { status = "cancelled" })
            patch(sb, holder.data.id, { status = "cancelled" })
        end)

        it("all_or_nothing leaves the order exactly as it was", function()
            local _, holder = post(sb, { tickets = { SEAT2 } })
            local free = "5d7134962110d30a34e95cfc"
            local _, mine = post(sb, { tickets = { free } })
            local status, body = patch(sb, mine.data.id,
                                       { tickets = { SEAT2 }, all_or_nothing = true })
            assert.are.equal(200, status)
            assert.is_nil(body.errors)
            assert.are.same({ free }, ticket_ids(body.data)) -- the release did not happen
            -- random: 31 of a set of 30
            status, body = patch(sb, mine.data.id, { random = { [VIP] = 31 }, all_or_nothing = true })
            assert.are.equal(200, status)
            assert.are.same({ free }, ticket_ids(body.data))
            -- without the flag: what is free is taken, what is not is skipped
            local _, other = post(sb, { event = KISH, random = { [DANCE] = 6 } })
            assert.are.equal(5, #other.data.tickets)
            patch(sb, other.data.id, { status = "cancelled" })
            patch(sb, mine.data.id, { status = "cancelled" })
            patch(sb, holder.data.id, { status = "cancelled" })
        end)

        it("cancelled releases the tickets", function()
            local _, a = post(sb, { tickets = { SEAT2 } })
            local status, c = patch(sb, a.data.id, { status = "cancelled" })
            assert.are.equal(200, status)
            assert.are.equal("cancelled", c.data.status)
            local _, b = post(sb, { tickets = { SEAT2 } })
            assert.are.same({ SEAT2 }, ticket_ids(b.data))
            status, c = patch(sb, a.data.id, { status = "cancelled" })
            assert_error(status, c, 400, "Order " .. a.data.id .. " is not cancellable")
            status, c = patch(sb, a.data.id, { settings = { send_tickets = true } })
            assert_error(status, c, 400, "Not allow to update order in status cancelled")
            patch(sb, b.data.id, { status = "cancelled" })
        end)
    end)

    describe("documented errors (spec §3.5, §8)", function()
        local id
        lazy_setup(function()
            local _, body = post(sb, { event = EVENT })
            id = body.data.id
        end)

        it("Only one of tickets or random can be set", function()
            local s, b = post(sb, { event = EVENT, tickets = { SEAT2 }, random = { [FAN] = 1 } })
            assert_error(s, b, 400, "Only one of tickets or random can be set")
            s, b = patch(sb, id, '{"tickets": [], "random": {}}')
            assert_error(s, b, 400, "Only one of tickets or random can be set")
        end)

        it("'tickets' or 'random' must be", function()
            local s, b = post(sb, {})
            assert_error(s, b, 400, "'tickets' or 'random' must be")
            s, b = post(sb, { random = { ["000000000000000000000000"] = 1 } })
            assert_error(s, b, 400, "'tickets' or 'random' must be")
            s, b = patch(sb, id, { all_or_nothing = true })
            assert_error(s, b, 400, "'tickets' or 'random' must be")
        end)

        it("Event <id> not found", function()
            local s, b = post(sb, { event = "000000000000000000000000" })
            assert_error(s, b, 400, "Event 000000000000000000000000 not found")
        end)

        it("Deal not found", function()
            local s, b = post(sb, { event = NODEAL })
            assert_error(s, b, 400, "Deal not found")
        end)

        it("ticket (id = <id>) does not belong to current event", function()
            local s, b = patch(sb, id, { tickets = { SEAT2, "0123456789abcdef01234567" } })
            assert_error(s, b, 400, "ticket (id = 0123456789abcdef01234567) does not belong to current event")
            -- a real ticket of another event
            local other = "5c2e1d3e9adc660001b00000"
            s, b = patch(sb, id, { tickets = { other } })
            assert_error(s, b, 400, "ticket (id = " .. other .. ") does not belong to current event")
            s, b = post(sb, { tickets = { "ffffffffffffffffffffffff" } })
            assert_error(s, b, 400, "ticket (id = ffffffffffffffffffffffff) does not belong to current event")
            s, b = post(sb, { event = EVENT, tickets = { other } })
            assert_error(s, b, 400, "ticket (id = " .. other .. ") does not belong to current event")
            -- nothing was reserved by the refused request
            local _, o = get(sb, id)
            assert.are.same({}, o.data.tickets)
        end)

        it("expired_after is not changable", function()
            local s, b = patch(sb, id, { expired_after = "2030-01-01 00:00:00" })
            assert_error(s, b, 400, "expired_after is not changable")
            s, b = post(sb, { event = EVENT, expired_after = "2030-01-01 00:00:00" })
            assert_error(s, b, 400, "expired_after is not changable")
        end)

        it("invitations, courier and smart tickets", function()
            local s, b = patch(sb, id, { settings = { invitation = true } })
            assert_error(s, b, 400, "only org can send invitations")
            s, b = patch(sb, id, { settings = { courier = true } })
            assert_error(s, b, 400, "Courier must set only with salespoint")
            s, b = patch(sb, id, { settings = { smart_tickets = false } })
            assert_error(s, b, 400, "Kryptonite integrations is disabled")
            s = patch(sb, id, { settings = { invitation = false, courier = false } })
            assert.are.equal(200, s)
        end)

        it("Cant use promocode when event have promotion", function()
            local _, o = post(sb, { event = BALLET })
            local s, b = patch(sb, o.data.id, { promocodes = { "ballet" } })
            assert_error(s, b, 400, "Cant use promocode when event have promotion")
        end)

        it("there is no tickets in order", function()
            local s, b = patch(sb, id, { status = "done" })
            assert_error(s, b, 400, "there is no tickets in order")
        end)

        it("Incorrect status <status> for this operation", function()
            local s, b = patch(sb, id, { status = "paid" })
            assert_error(s, b, 400, "Incorrect status paid for this operation")
            s, b = patch(sb, id, { status = "executed" })
            assert_error(s, b, 400, "Incorrect status executed for this operation")
        end)

        it("a refused done leaves the order as it was (tickets put back)", function()
            local s, b = patch(sb, id, { tickets = { SEAT2 }, status = "done",
                                         settings = { customer = { name = "X" } } })
            assert.are.equal(200, s)
            assert.are.equal("done", b.data.status)
            local _, o2 = post(sb, { event = EVENT })
            s = patch(sb, o2.data.id, { tickets = { "ffffffffffffffffffffffff" }, status = "done" })
            assert.are.equal(400, s)
            local _, again = get(sb, o2.data.id)
            assert.are.equal("executed", again.data.status)
        end)

        it("404 Order <id> not found", function()
            local s, b = get(sb, "0000000000000000000000ff")
            assert_error(s, b, 404, "Order 0000000000000000000000ff not found")
            s, b = patch(sb, "0000000000000000000000ff", { status = "done" })
            assert_error(s, b, 404, "Order 0000000000000000000000ff not found")
            s, b = get(sb, "not-an-id")
            assert_error(s, b, 404, "Order not-an-id not found")
        end)
    end)

    describe("customer, send_tickets, vendor_data", function()
        local id
        lazy_setup(function()
            local _, body = post(sb, { event = SPLIN })
            id = body.data.id
        end)

        it("stores settings.customer and send_tickets", function()
            local c = { name = "Иван", email = "ivan@example.com", phone = "+79991234576", lang = "ru" }
            local s, b = patch(sb, id, { settings = { customer = c, send_tickets = true } })
            assert.are.equal(200, s)
            assert.are.same(c, b.data.settings.customer)
            assert.is_true(b.data.settings.send_tickets)
            s, b = patch(sb, id, { settings = { customer = { email = "new@example.com" } } })
            assert.are.equal(200, s)
            assert.are.same({ email = "new@example.com" }, b.data.settings.customer)
            s = patch(sb, id, { settings = { customer = { lang = "de" } } })
            assert.are.equal(400, s)
            s = patch(sb, id, { settings = { customer = { email = 5 } } })
            assert.are.equal(400, s)
        end)

        it("stores vendor_data with bool and number values (spec §3.4.3)", function()
            local vd = { order_id = "shop-42",
                         raw = { enable_call_to_customer = true, call_counter = 3, note = "x" } }
            local s, b = patch(sb, id, { vendor_data = vd })
            assert.are.equal(200, s)
            assert.are.same(vd, b.data.vendor_data)
        end)

        it("enforces the vendor_data limits", function()
            local function refused(vd)
                local s, b = patch(sb, id, { vendor_data = vd })
                assert.are.equal(400, s)
                assert.is_string(b.errors[1])
            end
            refused({ order_id = string.rep("x", 65) })
            refused({ order_id = 42 })
            local raw = {}
            for i = 1, 21 do raw["k" .. i] = "v" end
            refused({ raw = raw })
            refused({ raw = { [string.rep("k", 41)] = "v" } })
            refused({ raw = { k = string.rep("v", 129) } })
            refused({ raw = { k = { nested = true } } })
            refused({ raw = "text" })
            refused({ other = 1 })
            -- the limits count characters, not bytes
            local long = { [string.rep("ж", 40)] = string.rep("ж", 128) }
            local s = patch(sb, id, { vendor_data = { order_id = string.rep("ж", 64), raw = long } })
            assert.are.equal(200, s)
            local _, b = get(sb, id)
            assert.are.equal(string.rep("ж", 64), b.data.vendor_data.order_id)
        end)
    end)

    describe("promocodes", function()
        it("fix: per ticket, on every set, extra on the nominal", function()
            local _, o = post(sb, { event = STANDUP, random = { [PARTER] = 1 } })
            local s, b = patch(sb, o.data.id, { promocodes = { "PROMO100" } })
            assert.are.equal(200, s)
            assert.is_nil(b.errors)
            local t = b.data.tickets[1]
            -- 1000.00 - 100.00 = 900.00; 5.5 % of 900.00 = 49.50
            assert.are.same({ "1000.00", "100.00", "900.00", "49.50", "949.50" },
                            { t.price, t.discount, t.nominal, t.extra, t.full })
            local promo = "5bacf64ea0eb2f000c451600"
            assert.are.same({ promo }, b.data.promocodes)
            assert.are.same({ id = BALCONY, price = "500.00", discount = "100.00", nominal = "400.00",
                              promocode = promo }, b.data.values.sets_values[BALCONY])
            assert.are.same({ id = promo, code = "promo100", discount = { fix = "100.00" },
                              lifetime = cjson.null, viral = false }, b.refs.promocodes[promo])
            assert.are.equal("949.50", b.data.values.full)
            patch(sb, o.data.id, { status = "cancelled" })
        end)

        it("fix is capped at the price and honours tickets_count.max", function()
            local _, o = post(sb, { event = STANDUP, random = { [BALCONY] = 2 } })
            local _, b = patch(sb, o.data.id, { promocodes = { "big" } })
            local t = b.data.tickets[1]
            assert.are.same({ "500.00", "500.00", "0.00", "0.00", "0.00" },
                            { t.price, t.discount, t.nominal, t.extra, t.full })
            _, b = patch(sb, o.data.id, { random = { [BALCONY] = 3 } })
            assert.are.equal("0.00", b.data.tickets[1].discount) -- 3 > max 2
            assert.are.equal(cjson.null, b.data.values.sets_values[BALCONY].promocode)
            patch(sb, o.data.id, { status = "cancelled" })
        end)

        it("percentage: restricted set, minimum count, exact kopecks", function()
            local _, o = post(sb, { event = KISH, random = { [BIG] = 1 } })
            local s, b = patch(sb, o.data.id, { promocodes = { "promo25" } })
            assert.are.equal(200, s)
            assert.are.same({ { code = "promocode_limit_min_tickets",
                                msg = "Need more tickets in order for promocode activation" } }, b.errors)
            assert.are.same({}, b.data.promocodes)
            _, b = patch(sb, o.data.id, { random = { [BIG] = 2, [DANCE] = 1 }, promocodes = { "promo25" } })
            assert.is_nil(b.errors)
            local t = b.data.tickets[1]
            -- 25 % of 1099.00 = 274.75; 4 % of 824.25 = 32.97
            assert.are.same({ "1099.00", "274.75", "824.25", "32.97", "857.22" },
                            { t.price, t.discount, t.nominal, t.extra, t.full })
            -- and the Танцпол ticket has no discount: 2500.00 + 4 % = 2600.00
            assert.are.equal("4314.44", b.data.values.full)
            assert.are.equal(cjson.null, b.data.values.sets_values[DANCE].promocode)
            assert.are.equal("0.00", b.data.values.sets_values[DANCE].discount)
            patch(sb, o.data.id, { status = "cancelled" })
        end)

        it("reports codes that cannot be applied as {code, msg} with status 200", function()
            local _, o = post(sb, { event = KISH, random = { [BIG] = 2 } })
            local s, b = patch(sb, o.data.id, { promocodes = { "nope", "all", "PROMO25", "promo25" } })
            assert.are.equal(200, s)
            assert.are.same({
                { code = "promocode_not_found", msg = "Promocode not found" },
                { code = "promocode_apply_info", msg = "Cant apply promocode by some reason" },
                { code = "promocode_already_used", msg = "Promocode already used" },
            }, b.errors)
            assert.are.same({ "5d765a4a221988d7da985891" }, b.data.promocodes)
            patch(sb, o.data.id, { status = "cancelled" })
        end)

        it("POST /v2/services/promocodes/check", function()
            local CHECK = "/v2/services/promocodes/check"
            local s, b = request(sb, "POST", CHECK, { event = STANDUP, code = "fix100" })
            assert.are.equal(200, s)
            assert.are.same({ discount = { fix = "100.00" }, sets = {}, tickets_count = {} }, b.data)
            assert.are.same({ sets = {} }, b.refs)
            s, b = request(sb, "POST", CHECK, { event = KISH, code = "all" })
            assert.are.equal(200, s)
            assert.are.same({ percentage = "25%" }, b.data.discount)
            assert.are.same({ start = "2019-10-30 21:00:00", finish = "2019-11-30 20:59:00" },
                            b.data.lifetime)
            assert.are.same({ BIG }, b.data.sets)
            assert.are.same({ min = 2 }, b.data.tickets_count)
            assert.are.same({ id = BIG, name = "Билетище", price = "1099.00" }, b.refs.sets[BIG])
            s, b = request(sb, "POST", CHECK, { event = KISH, code = "not_exists" })
            assert.are.equal(400, s)
            assert.are.same({ error = "HTTPBadRequest", reason = "Promocode not found" }, b)
            s, b = request(sb, "POST", CHECK, { event = "000000000000000000000000", code = "x" })
            assert_error(s, b, 400, "Event 000000000000000000000000 not found")
            s, b = request(sb, "POST", CHECK, { code = "x" })
            assert_error(s, b, 400)
        end)
    end)

    describe("GET /v2/resources/orders", function()
        local sb3, ids = nil, {}
        lazy_setup(function()
            sb3 = start()
            for i = 1, 3 do
                local _, b = post(sb3, { event = SPLIN, random = { [SPLIN_SET] = 1 } })
                ids[i] = b.data.id
            end
            local _, b = post(sb3, { event = EVENT, random = { [FAN] = 1 } })
            ids[4] = b.data.id
            patch(sb3, ids[1], { status = "done" })
            patch(sb3, ids[2], { status = "cancelled", settings = { customer = { name = "A" } } })
        end)
        lazy_teardown(function() assert.is_true(sb3:stop()) end)

        local function list(query)
            local s, b = request(sb3, "GET", "/v2/resources/orders" .. (query or ""))
            assert.are.equal(200, s)
            local got = {}
            for i, o in ipairs(b.data) do got[i] = o.id end
            return got, b
        end

        it("lists every order, newest first, with pagination and refs", function()
            local got, b = list()
            assert.are.same({ ids[4], ids[3], ids[2], ids[1] }, got)
            assert.are.same({ page = 1, page_size = 50, total = 4 }, b.pagination)
            assert.is_table(b.refs.events[SPLIN])
            assert.is_table(b.refs.events[EVENT])
        end)

        it("filters by status, events, customer and created_at", function()
            assert.are.same({ ids[2], ids[1] }, (list("?status=done,cancelled")))
            assert.are.same({ ids[2], ids[1] }, (list("?status=done&status=cancelled")))
            assert.are.same({ ids[4] }, (list("?events=" .. EVENT)))
            assert.are.same({ ids[4], ids[3], ids[2], ids[1] }, (list("?events=" .. EVENT .. "," .. SPLIN)))
            assert.are.same({ ids[2] }, (list("?only_with_customer=true")))
            assert.are.same({}, (list("?created_at=2000-07-28T13:00:00,2020-07-28T13:00:00")))
            assert.are.same(4, #list("?created_at=2000-07-28T13:00:00,2100-07-28T13:00:00"))
            assert.are.same({}, (list("?status=in_progress")))
        end)

        it("reads long lists whole and matches an odd event id to nothing", function()
            local many = string.rep("done,", 60) -- 300 bytes
            assert.are.same({ ids[2], ids[1] }, (list("?status=" .. many .. "cancelled")))
            assert.are.same({}, (list("?events=%FF")))
            assert.are.same({ ids[4] }, (list("?events=%FF," .. EVENT)))
        end)

        it("pages", function()
            local got, b = list("?page_size=1&page=2")
            assert.are.same({ ids[3] }, got)
            assert.are.same({ page = 2, page_size = 1, total = 4 }, b.pagination)
            assert.are.same({}, (list("?page=9")))
        end)

        it("refuses bad parameters with 400 and an errors list", function()
            for _, q in ipairs{ "?page=0", "?page_size=201", "?page_size=x", "?status=paid",
                                "?created_at=yesterday", "?only_with_customer=maybe" } do
                local s, b = request(sb3, "GET", "/v2/resources/orders" .. q)
                assert_error(s, b, 400)
            end
            -- bytes that are not UTF-8 are refused too, and shown as '?'
            for q, msg in pairs{
                ["?page=%FF"] = "page must be a whole number from 1, not '?'",
                ["?page_size=1%C3"] = "page_size must be a whole number from 1 to 200, not '1?'",
                ["?status=done,%FF"] = "status: unknown order status '?'",
                ["?only_with_customer=%E0%80"] = "only_with_customer must be true or false, not '??'",
            } do
                local s, b = request(sb3, "GET", "/v2/resources/orders" .. q)
                assert_error(s, b, 400, msg)
            end
        end)

        it("POST /v2/resources/orders/export answers 200 with an empty body", function()
            local s, _, raw = request(sb3, "POST", "/v2/resources/orders/export", { email = "a@b.c" })
            assert.are.equal(200, s)
            assert.are.equal("", raw)
        end)
    end)

    describe("auth", function()
        it("401 without a key, with an unknown key, with another scheme", function()
            for _, h in ipairs{ { authorization = false }, { authorization = "key wrong" },
                                { authorization = "Bearer " .. KEY }, { authorization = KEY } } do
                local s, b, raw = request(sb, "GET", "/v2/resources/orders", nil, h)
                assert_error(s, b, 401)
                assert.is_nil(raw:find(KEY, 1, true))
                s, b = post(sb, { event = EVENT }, h)
                assert_error(s, b, 401)
            end
        end)

        it("accepts every --key and only those", function()
            local sb4 = start{ key = "first-key", args = { "--key", "second-key" } }
            local s = request(sb4, "GET", "/v2/resources/orders")
            assert.are.equal(200, s)
            s = request(sb4, "GET", "/v2/resources/orders", nil, { authorization = "key second-key" })
            assert.are.equal(200, s)
            s = request(sb4, "GET", "/v2/resources/orders", nil, { authorization = "key " .. KEY })
            assert.are.equal(401, s)
            assert.is_true(sb4:stop())
        end)

        it("reads keys from --key-file and $TC_SANDBOX_KEY, never from its command line",
           function()
            local file = os.tmpname()
            local f = assert(io.open(file, "w"))
            f:write("# keys of the sandbox\n\n  file-key-1  \nfile-key-2\r\n")
            f:close()
            local out = popen("echo $$; TC_SANDBOX_KEY=env-key-3 exec " .. shell_quote(BIN)
                              .. " --http 127.0.0.1:0 --grpc 127.0.0.1:0 --key-file "
                              .. shell_quote(file) .. " 2>/dev/null")
            local pid = out:read("l")
            local line = out:read("l")
            local api = line:match("http=(%S+)")
            local sb5 = { api = api }
            for _, k in ipairs{ "file-key-1", "file-key-2", "env-key-3" } do
                local st = request(sb5, "GET", "/v2/resources/orders", nil, { authorization = "key " .. k })
                assert.are.equal(200, st, k)
            end
            local st = request(sb5, "GET", "/v2/resources/orders", nil, { authorization = "key " .. KEY })
            assert.are.equal(401, st)
            os.execute("kill " .. pid)
            out:close()
            os.remove(file)

            -- sandbox.start hands its key over in a file: `ps` does not show it
            local sb6 = start{ key = "never-on-a-command-line" }
            local cmd = assert(io.open("/proc/" .. sb6.pid .. "/cmdline", "rb")):read("a")
            assert.is_truthy(cmd:find("--key-file", 1, true))
            assert.is_nil(cmd:find("never-on-a-command-line", 1, true))
            local st6 = request(sb6, "GET", "/v2/resources/orders")
            assert.are.equal(200, st6)
            assert.is_true(sb6:stop())
        end)
    end)

    describe("bad input", function()
        local id
        lazy_setup(function()
            local _, body = post(sb, { event = EVENT })
            id = body.data.id
        end)

        it("malformed JSON, non-objects and wrong types get 400 with errors", function()
            for _, body in ipairs{ "{", "[]", "42", "\"x\"", "{\"a\":1,\"a\":2}", "",
                                   "{\"tickets\": \"x\"}", "{\"tickets\": [1]}",
                                   "{\"random\": []}", "{\"random\": {\"" .. FAN .. "\": -1}}",
                                   "{\"random\": {\"" .. FAN .. "\": \"1\"}}",
                                   "{\"random\": {\"" .. FAN .. "\": 1.5}}",
                                   "{\"all_or_nothing\": \"yes\", \"tickets\": []}",
                                   "{\"status\": 1}", "{\"settings\": []}", "{\"promocodes\": \"x\"}",
                                   "{\"settings\": {\"send_tickets\": 1}}", "{\"vendor_data\": []}" } do
                local s, b = patch(sb, id, body)
                assert.are.equal(400, s, body)
                assert.is_table(b.errors, body)
                assert.is_string(b.errors[1], body)
            end
            local s, b = post(sb, "{\"event\": 5}")
            assert_error(s, b, 400)
        end)

        it("echoes long and non-UTF-8 input whole and never lets it through", function()
            -- 2-byte characters: a message cut at a fixed size used to split
            -- one, and jansson refused the text: the error was lost (and the
            -- input accepted) or the body was empty
            local long = string.rep("я", 201)
            local s, b = patch(sb, id, { settings = { customer = { [long] = "x" } } })
            assert_error(s, b, 400, "settings.customer." .. long ..
                                    " is not a customer field (name, email, phone, lang)")
            s, b = patch(sb, id, { vendor_data = { raw = { ["k" .. long] = "x" } } })
            assert_error(s, b, 400, "vendor_data.raw key 'k" .. long .. "' is longer than 40 characters")
            s, b = patch(sb, id, { vendor_data = { ["k" .. long] = "x" } })
            assert_error(s, b, 400, "vendor_data.k" .. long .. " is not allowed: only order_id and raw")
            s, b = post(sb, { event = long })
            assert_error(s, b, 400, "Event " .. long .. " not found")
            s, b = patch(sb, id, { status = long })
            assert_error(s, b, 400, "Incorrect status " .. long .. " for this operation")
            s, b = patch(sb, id, { tickets = { long } })
            assert_error(s, b, 400, "ticket (id = " .. long .. ") does not belong to current event")
            local long_id = string.rep("x", 600)
            s, b = get(sb, long_id)
            assert_error(s, b, 404, "Order " .. long_id .. " not found")
            s, b = get(sb, "%FFab%C3")
            assert_error(s, b, 404, "Order ?ab? not found")
            local _, o = get(sb, id)
            assert.is_nil(o.data.settings.customer)
            assert.are.same({}, o.data.vendor_data)
        end)

        it("a body over 1 MiB gets 413", function()
            local big = "{\"vendor_data\": {\"raw\": {\"k\": \"" .. string.rep("x", 1100000) .. "\"}}}"
            local s, b = patch(sb, id, big)
            assert.are.equal(413, s)
            assert.is_table(b.errors)
            -- Sends `bytes` zero bytes through curl: chunked (no Content-Length)
            -- unless announced. Returns the status it got (000: none), the
            -- bytes it sent and its exit status. Every upload is finite and
            -- curl has a deadline.
            local function upload(bytes, announced)
                local how = announced and "-H 'Expect:' --data-binary @-" or "-T -"
                local f = popen("head -c " .. bytes .. " /dev/zero | curl -s -o /dev/null "
                    .. "--max-time 30 -w '%{http_code} %{size_upload}' -X PATCH " .. how .. " "
                    .. "-H " .. shell_quote("Authorization: key " .. KEY) .. " "
                    .. shell_quote(sb.api .. "/v2/resources/orders/" .. id)
                    .. " 2>/dev/null; echo \" $?\"")
                local out = f:read("a")
                f:close()
                local code, sent, rc = out:match("^(%d+) (%d+) (%d+)")
                assert(code, "unexpected curl output: " .. out)
                return code, tonumber(sent), tonumber(rc)
            end
            -- a little over the limit: read to its end, then 413
            local code, sent, rc = upload(3000000)
            assert.are.same({ "413", 0 }, { code, rc })
            assert.is_true(sent >= 3000000) -- with the chunks' framing
            -- far over: the sandbox closes the connection once it dropped
            -- 16 MiB, long before the 50 MB are sent (socket buffers hold a
            -- few MB more), and promptly
            local t0 = socket.gettime()
            code, sent, rc = upload(50000000)
            local took = socket.gettime() - t0
            assert.are_not.equal("200", code)
            assert.is_true(sent < 50000000, "the whole upload was read: " .. sent)
            assert.are_not.equal(0, rc)
            assert.is_true(took < 10, ("the upload was cut off after %.1f s"):format(took))
            -- announced far over the limit: 413 at once, the body is not read
            code, sent = upload(50000000, true)
            assert.are.equal("413", code)
            assert.is_true(sent < 50000000, "the whole upload was read: " .. sent)
            -- still alive and the order unchanged
            local s2, o = get(sb, id)
            assert.are.equal(200, s2)
            assert.are.same({}, o.data.vendor_data)
        end)

        it("unknown routes get 404 and wrong methods 405, with errors", function()
            local s, b = request(sb, "GET", "/v2/resources/nothing")
            assert_error(s, b, 404)
            s, b = request(sb, "DELETE", "/v2/resources/orders/" .. id)
            assert_error(s, b, 405)
            s, b = request(sb, "PUT", "/v2/resources/orders")
            assert_error(s, b, 405)
            s, b = request(sb, "GET", "/v2/services/promocodes/check")
            assert_error(s, b, 405)
        end)

        it("accepts a trailing slash", function()
            local s = request(sb, "GET", "/v2/resources/orders/" .. id .. "/")
            assert.are.equal(200, s)
        end)

        it("matches paths on their decoded bytes, exactly: a NUL or another segment is 404",
           function()
            local _, before = request(sb, "GET", "/v2/resources/orders?page_size=200")
            -- a %00 used to cut the path: POST .../orders/%00junk made an order
            local s, b = request(sb, "POST", "/v2/resources/orders/%00junk", { event = SPLIN })
            assert_error(s, b, 404, "Not found")
            s, b = request(sb, "POST", "/v2/resources/orders%00", { event = SPLIN })
            assert_error(s, b, 404, "Not found")
            -- ... and PATCH .../orders/<id>%00junk changed <id>
            s, b = patch(sb, id .. "%00junk", { vendor_data = { order_id = "nul" } })
            assert_error(s, b, 404, "Not found")
            for _, path in ipairs{ id .. "//", id .. "/x", id .. "%2Fx", "%00", id .. "%00" } do
                s, b = request(sb, "GET", "/v2/resources/orders/" .. path)
                assert_error(s, b, 404, "Not found")
            end
            s, b = request(sb, "GET", "/v2/resources/orders//")
            assert_error(s, b, 404, "Not found")
            local _, after = request(sb, "GET", "/v2/resources/orders?page_size=200")
            assert.are.equal(before.pagination.total, after.pagination.total)
            local _, o = get(sb, id)
            assert.is_nil(o.data.vendor_data.order_id)
            -- escapes of ordinary bytes are decoded: %35 is "5"
            s = request(sb, "GET", "/v2/resources/orders/" .. "%" .. ("%02X"):format(id:byte(1))
                                   .. id:sub(2))
            assert.are.equal(200, s)
        end)

        it("refuses a NUL in a query parameter rather than reading a part of it", function()
            local s, b = request(sb, "GET", "/v2/resources/orders?status=done%00x")
            assert_error(s, b, 400, "query parameter status must not contain a NUL byte (%00)")
        end)
    end)

    describe("409 while another change of the same order is in progress", function()
        it("answers 409 to a second change during X-Sandbox-Delay, then applies the first", function()
            local _, o = post(sb, { event = SPLIN })
            local id = o.data.id
            local slow = popen("curl -s -w '\\n%{http_code}' -X PATCH "
                .. "-H " .. shell_quote("Authorization: key " .. KEY)
                .. " -H 'X-Sandbox-Delay: 1500' -H 'Content-Type: application/json' "
                .. "-d " .. shell_quote(cjson.encode{ random = { [SPLIN_SET] = 2 } }) .. " "
                .. shell_quote(sb.api .. "/v2/resources/orders/" .. id))
            socket.sleep(0.5)
            local s, b = patch(sb, id, { random = { [SPLIN_SET] = 1 } })
            assert_error(s, b, 409)
            s, b = patch(sb, id, { status = "cancelled" })
            assert_error(s, b, 409)
            -- reads are not blocked
            s, b = get(sb, id)
            assert.are.equal(200, s)
            assert.are.same({}, b.data.tickets)
            -- other orders are not blocked
            s = post(sb, { event = SPLIN })
            assert.are.equal(200, s)
            local out = slow:read("a")
            slow:close()
            local json, code = out:match("^(.*)\n(%d+)$")
            assert.are.equal("200", code)
            assert.are.equal(2, #cjson.decode(json).data.tickets)
            s, b = patch(sb, id, { random = { [SPLIN_SET] = 1 } })
            assert.are.equal(200, s)
            assert.are.equal(1, #b.data.tickets)
        end)

        it("refuses a malformed delay", function()
            local _, o = post(sb, { event = SPLIN })
            local s, b = patch(sb, o.data.id, { random = {} }, { ["x-sandbox-delay"] = "10001" })
            assert_error(s, b, 400)
        end)
    end)
end)

describe("tc-sandbox expiry", function()
    local sb
    lazy_setup(function() sb = start{ expire = 1 } end)
    lazy_teardown(function() assert.is_true(sb:stop()) end)

    it("expires an order after --expire seconds and puts its tickets back on sale", function()
        local _, a = post(sb, { tickets = { SEAT } })
        assert.are.same({ SEAT }, ticket_ids(a.data))
        local _, b = post(sb, { tickets = { SEAT } })
        assert.are.same({}, b.data.tickets)
        socket.sleep(2.2)
        local s, o = get(sb, a.data.id)
        assert.are.equal(200, s)
        assert.are.equal("expired", o.data.status)
        s, o = patch(sb, a.data.id, { tickets = { SEAT } })
        assert_error(s, o, 400, "Not allow to update order in status expired")
        s, o = patch(sb, a.data.id, { status = "cancelled" })
        assert_error(s, o, 400, "Order " .. a.data.id .. " is not cancellable")
        local _, c = post(sb, { tickets = { SEAT } })
        assert.are.same({ SEAT }, ticket_ids(c.data))
        local _, l = request(sb, "GET", "/v2/resources/orders?status=expired")
        assert.are.equal(2, l.pagination.total) -- a and the empty b
    end)
end)

describe("tc-sandbox balance", function()
    local sb
    lazy_setup(function() sb = start{ args = { "--balance", "7000.00" } } end)
    lazy_teardown(function() assert.is_true(sb:stop()) end)

    it("done spends the full amount and refuses when short, with the Cyrillic с", function()
        local _, a = post(sb, { event = EVENT, random = { [FAN] = 1 } })
        local s = patch(sb, a.data.id, { status = "done" }) -- 6160.00 of 7000.00
        assert.are.equal(200, s)
        local _, b = post(sb, { event = EVENT, random = { [A2] = 1 } })
        local body
        s, body = patch(sb, b.data.id, { status = "done" }) -- 1089.00 > 840.00
        assert_error(s, body, 400, NOT_ENOUGH)
        assert.is_truthy(body.errors[1]:find("\xd1\x81ontact", 1, true))
        local _, again = get(sb, b.data.id)
        assert.are.equal("executed", again.data.status)
        assert.are.equal(1, #again.data.tickets)
        -- a refused done undoes the rest of the request: tickets, customer
        local _, d = post(sb, { event = EVENT })
        s, body = patch(sb, d.data.id, { tickets = { SEAT2 }, status = "done",
                                         settings = { customer = { name = "Пётр" } } })
        assert_error(s, body, 400, NOT_ENOUGH)
        _, again = get(sb, d.data.id)
        assert.are.same({}, again.data.tickets)
        assert.is_nil(again.data.settings.customer)
        local _, e = post(sb, { tickets = { SEAT2 } })
        assert.are.same({ SEAT2 }, ticket_ids(e.data))
        local _, c = post(sb, { event = SPLIN, random = { [SPLIN_SET] = 5 } }) -- 780.00
        s = patch(sb, c.data.id, { status = "done" })
        assert.are.equal(200, s)
    end)
end)

describe("tc-sandbox under concurrent clients", function()
    local sb
    lazy_setup(function() sb = start() end)
    lazy_teardown(function() assert.is_true(sb:stop()) end)

    it("never puts a ticket in two live orders and keeps vacant + held = total", function()
        local auth = shell_quote("Authorization: key " .. KEY)
        local url = shell_quote(sb.api .. "/v2/resources/orders")
        local procs = {}
        for w = 1, 6 do
            -- each worker creates orders for 3 VIP (30 in all) and 2 A2 seats,
            -- completing or cancelling some of them
            local body = shell_quote(cjson.encode{ event = EVENT, random = { [VIP] = 3, [A2] = 2 } })
            local cmd = "for i in 1 2 3 4 5; do "
                .. "id=$(curl -s -X POST -H " .. auth .. " -d " .. body .. " " .. url
                .. " | sed -n 's/.*\"id\":\"\\([0-9a-f]\\{24\\}\\)\",\"number\".*/\\1/p'); "
                .. "case $i in 2) curl -s -o /dev/null -X PATCH -H " .. auth
                .. " -d '{\"status\":\"cancelled\"}' " .. url .. "/$id;; "
                .. "4) curl -s -o /dev/null -X PATCH -H " .. auth
                .. " -d '{\"status\":\"done\"}' " .. url .. "/$id;; esac; done; echo " .. w
            procs[w] = popen(cmd)
        end
        for w = 1, 6 do
            assert.are.equal(tostring(w), procs[w]:read("l"))
            procs[w]:close()
        end

        -- every order, page by page
        local orders, page = {}, 1
        repeat
            local s, b = request(sb, "GET", "/v2/resources/orders?page_size=7&page=" .. page)
            assert.are.equal(200, s)
            for _, o in ipairs(b.data) do orders[#orders + 1] = o end
            page = page + 1
        until #b.data == 0
        assert.are.equal(30, #orders)

        local holder, held = {}, { [VIP] = 0, [A2] = 0 }
        for _, o in ipairs(orders) do
            if o.status == "executed" or o.status == "done" then
                for _, t in ipairs(o.tickets) do
                    assert.is_nil(holder[t.id], "ticket " .. t.id .. " in two live orders")
                    holder[t.id] = o.id
                    held[t.set] = held[t.set] + 1
                end
            end
        end
        assert.is_true(held[VIP] <= 30)
        assert.is_true(held[VIP] > 0)

        -- what is left is exactly what a greedy order gets: total - held
        local _, rest = post(sb, { event = EVENT, random = { [VIP] = 30, [A2] = 100 } })
        local got = { [VIP] = 0, [A2] = 0 }
        for _, t in ipairs(rest.data.tickets) do
            assert.is_nil(holder[t.id])
            got[t.set] = got[t.set] + 1
        end
        assert.are.equal(30 - held[VIP], got[VIP])
        assert.are.equal(100 - held[A2], got[A2])
    end)
end)

describe("tc-sandbox command line", function()
    local function run(args)
        local f = assert(io.popen(shell_quote(BIN) .. " " .. args .. " 2>&1; echo \"rc=$?\"", "r"))
        local out = f:read("a")
        f:close()
        return out:match("^(.-)rc=(%d+)\n$")
    end

    it("--help documents every option and exits 0", function()
        local out, rc = run("--help")
        assert.are.equal("0", rc)
        for _, o in ipairs{ "--catalog", "--http", "--grpc", "--tls-cert", "--tls-key", "--key",
                            "--key-file", "TC_SANDBOX_KEY",
                            "--expire", "--seed", "--balance", "--help", "X-Sandbox-Delay" } do
            assert.is_truthy(out:find(o, 1, true), o)
        end
    end)

    it("bad options and catalogs give one message and exit 2", function()
        local dir = os.tmpname()
        local function catalog(text)
            local f = assert(io.open(dir, "w"))
            f:write(text)
            f:close()
            return "--http 127.0.0.1:0 --grpc 127.0.0.1:0 --catalog " .. shell_quote(dir)
        end
        for _, args in ipairs{ "--bogus", "--expire 0", "--expire x", "--seed -1", "--balance 1.234",
                               "--http nowhere", "--grpc 127.0.0.1:99999",
                               "--catalog /nonexistent/catalog.json",
                               "extra", "--key", "--key-file /nonexistent",
                               "--key-file /dev/null", "--key-file " .. shell_quote(BIN) } do
            local out, rc = run(args)
            assert.are.equal("2", rc, args)
            assert.matches("^tc%-sandbox: [^\n]+\n$", out, nil, args)
        end
        local head = '{"partners": [{"id": "p", "name": "P"}], "distributor": "p", "events": '
        local set = '{"id": "e", "name": "E", "org": "p", "sets": [{"id": "s", "name": "S", '
        local bad = {
            "{",
            "[]",
            '{"partners": [], "distributor": "x"}',
            head .. "[" .. set .. '"rules": [{"simple": {"price": 100}}], '
                .. '"tickets": [{"id": "aaaaaaaaaaaaaaaaaaaaaaaa", "serial": "A", "number": 1}, '
                .. '{"id": "aaaaaaaaaaaaaaaaaaaaaaaa", "serial": "A", "number": 2}]}]}]}',
            head .. "[" .. set .. '"rules": [{"simple": {"price": -1}}]}]}]}',
            head .. '[{"id": "e", "name": "E", "org": "q"}]}',
        }
        for _, text in ipairs(bad) do
            local out, rc = run(catalog(text))
            assert.are.equal("2", rc, text)
            assert.matches("^tc%-sandbox: catalog [^\n]+\n$", out, nil, text)
        end
        local out, rc = run(catalog(bad[4]))
        assert.are.equal("2", rc)
        assert.is_truthy(out:find("duplicate ticket id aaaaaaaaaaaaaaaaaaaaaaaa", 1, true), out)
        -- an id is 24 hexadecimal digits: 24 letters that are not are refused
        out, rc = run(catalog((bad[4]:gsub("aaaaaaaaaaaaaaaaaaaaaaaa", "zzzzzzzzzzzzzzzzzzzzzzzz", 1))))
        assert.are.equal("2", rc)
        assert.is_truthy(out:find("tickets[0]: 'id' must be 24 hexadecimal digits", 1, true), out)
        os.remove(dir)
    end)

    it("prints the ready line, logs requests without the key, stops with 0 on SIGINT too", function()
        local log = os.tmpname()
        local sb = start{ log = log, key = "secret-key-123" }
        assert.matches("^http://127%.0%.0%.1:%d+$", sb.api)
        assert.matches("^127%.0%.0%.1:%d+$", sb.grpc)
        request(sb, "GET", "/v2/resources/orders?page=1")
        request(sb, "GET", "/v2/resources/orders", nil, { authorization = "key wrong-key-456" })
        assert.is_true(sb:stop())
        local f = assert(io.open(log))
        local text = f:read("a")
        f:close()
        os.remove(log)
        assert.is_truthy(text:find("GET /v2/resources/orders 200", 1, true), text)
        assert.is_truthy(text:find("GET /v2/resources/orders 401", 1, true), text)
        assert.is_nil(text:find("secret-key-123", 1, true))
        assert.is_nil(text:find("wrong-key-456", 1, true))

        -- a delayed change does not hold up shutdown
        local sb3 = start()
        local _, o = post(sb3, { event = SPLIN })
        local slow = popen("curl -s -o /dev/null -w '%{http_code}' -X PATCH "
            .. "-H " .. shell_quote("Authorization: key " .. KEY) .. " -H 'X-Sandbox-Delay: 10000' "
            .. "-d '{}' " .. shell_quote(sb3.api .. "/v2/resources/orders/" .. o.data.id))
        socket.sleep(0.3)
        local t0 = socket.gettime()
        assert.is_true(sb3:stop())
        assert.is_true(socket.gettime() - t0 < 5)
        slow:read("a")
        slow:close()

        local sb2 = start()
        os.execute("kill -INT " .. sb2.pid)
        sb2.proc:read("a")
        local ok, how, code = sb2.proc:close()
        sb2.proc = nil
        assert.is_true(ok, tostring(how) .. " " .. tostring(code))
    end)
end)
