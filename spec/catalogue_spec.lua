-- The catalogue methods (tc-simple gRPC) against tc-sandbox over real sockets.
--
--   TC_SANDBOX=build/<dir>/tc-sandbox lua5.4 /usr/bin/busted \
--     --lpath='lua/?.lua;lua/?/init.lua' --cpath='build/<dir>/lua5.4/?.so' spec/catalogue_spec.lua

local sandbox = require "ticketscloud.sandbox"
local core = require "ticketscloud.core"
local tc = require "ticketscloud"

-- Fixtures of examples/catalog.json (the order example, spec §5.8).
local SLIPKNOT = "5d7134962110d30a34e95b96"
local SPLIN = "5d31fbdd27649b0dff076117"
local NUT_PUBLIC = "5dcbd3a1b2c3d4e5f6a7b8d0"
local NUT_STAND_BY = "5dcbd3a1b2c3d4e5f6a7b8d1"
local NUT_META = "5dcbd3a1b2c3d4e5f6a7b8c9"
local ORG_RASP = "5d1a2b3c4d5e6f7081920a1b"
local SET_A2 = "5d71353b2110d30a34e97e31"     -- seated, 100 tickets, 5 rows of 20
local SECTOR_A2 = "5a8dd58e6e55b2064c67c144"
local SET_FAN = "5d7135112110d30a34e97e2d"    -- not seated
local TICKET_A2_1 = "5d7134962110d30a34e95cdd" -- row 1, seat 1
local MAP_STADIUM = "5a8dd58e6e55b2064c67c150"
local MAP_THEATRE = "5c2e1d3e9adc660001b0a011"
local VENUE_STADIUM = "5a8dd58e6e55b2064c67c140"
local VENUE_THEATRE = "5c2e1d3e9adc660001b0a002"

local ALL_EVENTS = 7
local BIG_SEATS = 100000

-- Every message of a stream.
local function all(stream)
    local list = {}
    for item in stream do list[#list + 1] = item end
    return list
end

local function ids(list, field)
    local out = {}
    for i, item in ipairs(list) do out[i] = item[field or "id"] end
    table.sort(out, function(a, b) return tostring(a) < tostring(b) end)
    return out
end

local function sorted(t)
    table.sort(t, function(a, b) return tostring(a) < tostring(b) end)
    return t
end

-- "2024-05-01 10:00:00" (UTC, as REST writes it) -> Unix seconds.
local function utc_seconds(text)
    local y, m, d, H, M, S = text:match("^(%d+)-(%d+)-(%d+) (%d+):(%d+):(%d+)$")
    y, m, d = tonumber(y), tonumber(m), tonumber(d)
    if m <= 2 then y, m = y - 1, m + 12 end -- days from civil, March-based year
    local floor = math.floor
    local days = 365 * y + floor(y / 4) - floor(y / 100) + floor(y / 400)
        + floor((153 * (m - 3) + 2) / 5) + d - 719469
    return days * 86400 + tonumber(H) * 3600 + tonumber(M) * 60 + tonumber(S)
end

-- Every error a spec met, to check afterwards that none shows the key.
local seen_errors = {}
local function keep(err)
    if err then seen_errors[#seen_errors + 1] = err end
    return err
end

describe("tc-simple catalogue", function()
    local sb, client

    lazy_setup(function()
        sb = assert(sandbox.start())
        client = assert(tc.new{ key = sb.key, api = sb.api, simple = sb.simple })
    end)

    lazy_teardown(function()
        if client then client:close() end
        if sb then sb:stop() end
    end)

    describe("events", function()
        it("streams every event for an empty request, with its sets, deal and legal data", function()
            local stream = assert(client:events())
            local events = all(stream)
            assert.is_nil(stream:error())
            assert.equal(ALL_EVENTS, #events)
            local e
            for _, item in ipairs(events) do if item.id == SLIPKNOT then e = item end end
            assert.equal("Slipknot", e.name)
            assert.equal("PUBLIC", e.status)
            assert.same({ start = 1591974000, finish = 1591984800 }, e.lifetime) -- Timestamps
            assert.equal(1588327200, e.updated_at)
            assert.equal("16", e.age_rating)
            assert.same({ units = 10, nanos = 0 }, e.deal.extra)
            assert.is_nil(e.org_extra) -- the other member of the oneof
            assert.equal("LTD_USN", e.legal_ru.ltd)
            assert.is_nil(e.legal_ru.ip)
            assert.equal(false, e.legal_ru.nds)     -- optional, sent as false
            assert.equal("VAT_0", e.legal_ru.vat_rate)
            assert.equal("NONE", e.smart_tickets)
            assert.equal(3, #e.sets)
            local sets = {}
            for _, set in ipairs(e.sets) do sets[set.id] = set end
            assert.equal("Фан зона", sets[SET_FAN].name)
            assert.equal(0, sets[SET_FAN].pos)          -- default, not transmitted
            assert.equal(false, sets[SET_FAN].with_seats)
            assert.equal(560000, sets[SET_FAN].rules[1].simple.price)
            assert.equal("SIMPLE", sets[SET_FAN].rules[1].type)
            assert.equal(true, sets[SET_A2].with_seats)
            assert.equal(100, sets[SET_A2].amount)
            assert.equal(100, sets[SET_A2].amount_vacant)
            assert.equal("", e.meta) -- a standalone event
        end)

        it("shows a stand-by event's status although STAND_BY is never sent (spec §2.3)", function()
            local events = all(assert(client:events{ ids = { NUT_STAND_BY } }))
            assert.equal(1, #events)
            assert.equal("STAND_BY", events[1].status)
        end)

        it("filters by ids, status, meta, without_meta, org and lifetime", function()
            assert.same(sorted{ SLIPKNOT, SPLIN },
                        ids(all(assert(client:events{ ids = { SPLIN, SLIPKNOT } }))))
            local public = all(assert(client:events{ status = "PUBLIC" }))
            assert.equal(ALL_EVENTS - 1, #public)
            for _, e in ipairs(public) do assert.equal("PUBLIC", e.status) end
            assert.same({ NUT_STAND_BY }, ids(all(assert(client:events{ status = "STAND_BY" }))))
            assert.same(sorted{ NUT_PUBLIC, NUT_STAND_BY },
                        ids(all(assert(client:events{ meta = NUT_META }))))
            local standalone = all(assert(client:events{ without_meta = true }))
            assert.equal(ALL_EVENTS - 2, #standalone)
            for _, e in ipairs(standalone) do assert.equal("", e.meta) end
            for _, e in ipairs(all(assert(client:events{ org = ORG_RASP }))) do
                assert.equal(ORG_RASP, e.org)
            end
            -- events starting before 2021: Slipknot (2020) and Сплин (2019)
            assert.same(sorted{ SLIPKNOT, SPLIN },
                        ids(all(assert(client:events{ lifetime = { start = { lt = 1609459200 } } }))))
            assert.same({ SLIPKNOT }, ids(all(assert(client:events{
                lifetime = { start = { gte = 1591974000, lte = 1591974000.5 } } }))))
        end)

        it("streams nothing for an unknown id", function()
            local stream = assert(client:events{ ids = { "000000000000000000000000" } })
            assert.same({}, all(stream))
            assert.is_nil(stream:error())
        end)

        it("shows promotions (mods) with their oneof", function()
            local e = all(assert(client:events{ ids = { NUT_PUBLIC } }))[1]
            assert.equal("PROMOTION", e.mods[1].type)
            assert.same({ units = 10, nanos = 0 }, e.mods[1].promotion.discount_percentage)
            assert.is_nil(e.mods[1].promotion.discount_fix)
        end)
    end)

    describe("seats", function()
        it("lists the seated tickets of an event, vacant ones with status VACANT (spec §2.3)", function()
            local stream = assert(client:seats{ event = SLIPKNOT })
            local seats = all(stream)
            assert.is_nil(stream:error())
            assert.equal(100, #seats)
            for _, seat in ipairs(seats) do
                assert.equal(SLIPKNOT, seat.event)
                assert.equal(SET_A2, seat.set)
                assert.equal(SECTOR_A2, seat.sector)
                assert.equal("VACANT", seat.status)
                assert.is_nil(seat.ticket_reserved_till)
                assert.equal(24, #seat.ticket)
            end
        end)

        it("filters by status, sets, tickets, sector, row and number", function()
            assert.equal(100, #all(assert(client:seats{ event = SLIPKNOT, status = "VACANT" })))
            assert.equal(0, #all(assert(client:seats{ event = SLIPKNOT, status = "SOLD" })))
            assert.equal(100, #all(assert(client:seats{ event = SLIPKNOT, sets = { SET_A2 } })))
            assert.equal(0, #all(assert(client:seats{ event = SLIPKNOT, sets = { SET_FAN } })))
            local one = all(assert(client:seats{ event = SLIPKNOT, tickets = { TICKET_A2_1 } }))
            assert.equal(1, #one)
            assert.same({ "1", "1" }, { one[1].row, one[1].number })
            assert.equal(20, #all(assert(client:seats{ event = SLIPKNOT, sector = SECTOR_A2, row = "2" })))
            local seat = all(assert(client:seats{ event = SLIPKNOT, row = "1", number = "1" }))
            assert.equal(1, #seat)
            assert.equal(TICKET_A2_1, seat[1].ticket)
        end)

        it("shows a held ticket as RESERVED until its order's expiry, a sold one as SOLD", function()
            local order = assert(client:create_order{ event = SLIPKNOT, tickets = { TICKET_A2_1 } })
            local seat = all(assert(client:seats{ event = SLIPKNOT, tickets = { TICKET_A2_1 } }))[1]
            assert.equal("RESERVED", seat.status)
            -- spec §8 row 11: ticket_reserved_till is the order's expired_after (UTC)
            assert.equal(utc_seconds(order.expired_after), seat.ticket_reserved_till)
            local reserved = all(assert(client:seats{ event = SLIPKNOT, status = "RESERVED" }))
            assert.same({ TICKET_A2_1 }, ids(reserved, "ticket"))
            assert.equal(99, #all(assert(client:seats{ event = SLIPKNOT, status = "VACANT" })))

            assert(order:finish())
            seat = all(assert(client:seats{ event = SLIPKNOT, tickets = { TICKET_A2_1 } }))[1]
            assert.equal("SOLD", seat.status)
            assert.is_nil(seat.ticket_reserved_till)
            local sold = all(assert(client:seats{ event = SLIPKNOT, status = "SOLD" }))
            assert.same({ TICKET_A2_1 }, ids(sold, "ticket"))
            local a2
            for _, set in ipairs(all(assert(client:events{ ids = { SLIPKNOT } }))[1].sets) do
                if set.id == SET_A2 then a2 = set end
            end
            assert.equal(99, a2.amount_vacant)
        end)

        it("refuses a request without event before sending it", function()
            local stream, err = client:seats{ status = "VACANT" }
            assert.is_nil(stream)
            assert.equal("invalid", keep(err).kind)
        end)
    end)

    describe("reference data", function()
        it("venues, with coordinates and the with_mosbilet flag", function()
            local venues = all(assert(client:venues()))
            assert.equal(4, #venues)
            local v = all(assert(client:venues{ ids = { VENUE_THEATRE } }))
            assert.equal(1, #v)
            assert.equal(true, v[1].with_mosbilet)
            assert.equal(498817, v[1].city)
            assert.equal("", v[1].description)
            assert.near(30.3484, v[1].coordinates.longitude, 1e-9)
            local stadium = all(assert(client:venues{ ids = { VENUE_STADIUM } }))[1]
            assert.equal(false, stadium.with_mosbilet)
        end)

        it("maps, with sectors, seats and svg drawings; by ids and by venue", function()
            assert.equal(2, #all(assert(client:maps())))
            local m = all(assert(client:maps{ venue = VENUE_THEATRE }))
            assert.equal(1, #m)
            assert.equal(MAP_THEATRE, m[1].id)
            assert.equal(40, #m[1].seats)
            assert.is_number(m[1].seats[1].point.x)
            assert.truthy(m[1].svg.default:find("<svg", 1, true))
            m = all(assert(client:maps{ ids = { MAP_STADIUM } }))
            assert.equal(1, #m)
            assert.equal(3, #m[1].sectors)
            assert.same({}, all(assert(client:maps{ ids = { MAP_STADIUM }, venue = VENUE_THEATRE })))
        end)

        it("meta events, with their first and last dates", function()
            local list = all(assert(client:meta_events()))
            assert.equal(1, #list)
            assert.equal(NUT_META, list[1].id)
            assert.equal(1924876800, list[1].first_start) -- 2030-12-30T16:00:00Z
            assert.equal(1924974000, list[1].last_finish) -- 2030-12-31T19:00:00Z
            assert.same(list, all(assert(client:meta_events{ ids = { NUT_META } })))
        end)

        it("artists, categories and tags", function()
            assert.equal(4, #all(assert(client:artists())))
            local a = all(assert(client:artists{ ids = { "5d70f1a02110d30a34e90002" } }))
            assert.same({ { id = "5d70f1a02110d30a34e90002", name = "Сплин" } }, a)
            assert.equal(3, #all(assert(client:categories())))
            assert.same({ { id = "5a0c4bd21c0d2e0001a0c003", name = "Юмор" } },
                        all(assert(client:categories{ ids = { "5a0c4bd21c0d2e0001a0c003" } })))
            local tags = all(assert(client:tags()))
            assert.equal(4, #tags)
            local metal = all(assert(client:tags{ ids = { "5a0c4bd21c0d2e0001a0d002" } }))[1]
            assert.equal("Метал", metal.name)
            assert.equal(false, metal.generic) -- default, not transmitted
        end)

        it("countries and cities, with their filters", function()
            assert.equal(3, #all(assert(client:countries())))
            local zm = all(assert(client:countries{ ids = { "ZM" } }))
            assert.equal(1, #zm)
            assert.equal(894, zm[1].iso_numeric)
            assert.equal(5, #all(assert(client:cities())))
            assert.same(sorted{ 520555, 524901 }, ids(all(assert(client:cities{ ids = { 520555, 524901 } }))))
            assert.same(sorted{ 520555, 524901, 498817 }, ids(all(assert(client:cities{ country = "RU" }))))
            local moscow = all(assert(client:cities{ name = "Москва" }))
            assert.equal(1, #moscow)
            assert.equal(12506468, moscow[1].population)
            assert.equal("Europe/Moscow", moscow[1].timezone)
            assert.same({ 498817 }, ids(all(assert(client:cities{ suggest = "Петер" }))))
        end)
    end)

    describe("requests are validated before anything is sent", function()
        local cases = {
            { "a malformed id", "events", { ids = { "5d71349621" } } },
            { "an id with punctuation", "seats", { event = "5d7134962110d30a34e95b9!" } },
            { "a control character", "cities", { name = "Моск\nва" } },
            { "an unknown field", "events", { staus = "PUBLIC" } },
            { "an unknown enum name", "seats", { event = SLIPKNOT, status = "FREE" } },
            { "a wrong type", "cities", { ids = { "520555" } } },
            { "both members of a oneof", "events", { meta = NUT_META, without_meta = true } },
        }
        for _, case in ipairs(cases) do
            it(case[1] .. " is kind invalid, and no channel is even made", function()
                local fresh = assert(tc.new{ key = sb.key, api = sb.api, simple = sb.simple })
                local stream, err = fresh[case[2]](fresh, case[3])
                assert.is_nil(stream)
                assert.equal("invalid", keep(err).kind)
                if case[4] ~= "encoded" and not tostring(err):find("v3%.") then
                    assert.is_nil(fresh.channel) -- caught in Lua, before any transport
                end
                fresh:close()
            end)
        end

        it("even with no server there, nothing is sent: invalid, not transport", function()
            local dead = assert(tc.new{ key = sb.key, api = sb.api, simple = "http://127.0.0.1:1" })
            local stream, err = dead:events{ meta = NUT_META, without_meta = true }
            assert.is_nil(stream)
            assert.equal("invalid", keep(err).kind)
            stream, err = dead:events{ ids = { "x" } }
            assert.is_nil(stream)
            assert.equal("invalid", keep(err).kind)
            dead:close()
        end)

        it("raises on a request that is not a table", function()
            assert.has_error(function() client:events("PUBLIC") end)
            assert.has_error(function() client:seats(42) end)
        end)
    end)

    describe("errors", function()
        it("a wrong key is kind auth (UNAUTHENTICATED), and the key is not in the error", function()
            local wrong = "0123456789abcdef0123456789abcdeX"
            local bad = assert(tc.new{ key = wrong, api = sb.api, simple = sb.simple })
            local stream = assert(bad:events())
            local event, err = stream()
            assert.is_nil(event)
            assert.equal("auth", keep(err).kind)
            assert.equal(16, err.status)
            assert.equal("UNAUTHENTICATED", err.code)
            assert.is_nil(tostring(err):find(wrong, 1, true))
            assert.equal(err.kind, stream:error().kind) -- the accessor after a loop
            local again, err2 = stream()                -- stays failed
            assert.is_nil(again)
            assert.equal("auth", err2.kind)
            assert.is_true(stream:close())
            local _, err3 = stream()
            assert.equal("closed", err3.messages[1])
            assert.equal("auth", stream:error().kind)   -- still tells what ended it
            bad:close()
        end)

        it("a server refusal is kind api with the gRPC status and its message", function()
            -- Seats without event, sent through the channel to bypass validation
            local stream = assert(client:events{ ids = { SLIPKNOT } })
            all(stream)
            local raw = assert(client.channel:stream("Seats", {}))
            local seat, err = raw()
            assert.is_nil(seat)
            assert.equal("api", keep(err).kind)
            assert.equal(3, err.status) -- INVALID_ARGUMENT
            assert.equal("event is required", err.messages[1])
        end)

        it("no server is kind transport", function()
            local other = assert(sandbox.start())
            local c = assert(tc.new{ key = other.key, api = other.api, simple = other.simple })
            assert.equal(ALL_EVENTS, #all(assert(c:events())))
            other:stop()
            local stream = assert(c:events())
            assert.same({}, all(stream))
            local err = stream:error()
            assert.equal("transport", keep(err).kind)
            assert.equal(14, err.status) -- UNAVAILABLE
            c:close()
        end)

        it("TLS to a plaintext server fails as transport; an unreadable ca_file is invalid", function()
            local c = assert(tc.new{ key = sb.key, api = sb.api, simple = "https://" .. sb.grpc,
                                         timeout = 5 })
            local stream = assert(c:events())
            assert.same({}, all(stream))
            assert.equal("transport", keep(stream:error()).kind)
            c:close()

            -- the C channel reads ca_file itself (and tc.new may refuse it first)
            local ch, err = core.channel{ simple = sb.grpc, key = sb.key,
                                          ca_file = "/nonexistent/ca.pem" }
            assert.is_nil(ch)
            assert.equal("invalid", keep(err).kind)
            assert.truthy(tostring(err):find("ca_file", 1, true))
            c, err = tc.new{ key = sb.key, api = sb.api, simple = sb.grpc,
                                 ca_file = "/nonexistent/ca.pem" }
            if c then c, err = c:events() end
            assert.is_nil(c)
            assert.equal("invalid", keep(err).kind)

            local bundle = "/etc/ssl/certs/ca-certificates.crt"
            if io.open(bundle) then
                ch = assert(core.channel{ simple = sb.grpc, key = sb.key, ca_file = bundle,
                                          timeout = 5 })
                stream = assert(ch:stream("Tags", {}))
                assert.same({}, all(stream))
                assert.equal("transport", keep(stream:error()).kind)
                ch:close()
            end
        end)

        it("the key never appears in an error or in a tostring", function()
            assert.is_true(#seen_errors >= 10)
            for _, err in ipairs(seen_errors) do
                local text = tostring(err)
                assert.is_nil(text:find(sb.key, 1, true), text)
                for _, m in ipairs(err.messages) do assert.is_nil(tostring(m):find(sb.key, 1, true)) end
            end
            assert.is_nil(tostring(client.channel):find(sb.key, 1, true))
            local stream = assert(client:events())
            assert.is_nil(tostring(stream):find(sb.key, 1, true))
            assert.truthy(tostring(stream):find("^ticketscloud.Stream"))
            stream:close()
        end)
    end)

    describe("transport security policy", function()
        it("parses the simple option into a target and TLS", function()
            assert.same({ "simple.ticketscloud.com:443", true },
                        { core.grpc_target("simple.ticketscloud.com:443") })
            assert.same({ "simple.ticketscloud.com:443", true },
                        { core.grpc_target("https://simple.ticketscloud.com") })
            assert.same({ "127.0.0.1:5000", false }, { core.grpc_target("http://127.0.0.1:5000") })
            assert.same({ "localhost:5000", false }, { core.grpc_target("http://localhost:5000") })
            assert.same({ "[::1]:5000", false }, { core.grpc_target("http://[::1]:5000") })
            assert.same({ "10.1.2.3:5000", false }, { core.grpc_target("10.1.2.3:5000", true) })
            assert.same({ "10.1.2.3:5000", true }, { core.grpc_target("https://10.1.2.3:5000", true) })
        end)

        it("refuses plaintext off loopback unless insecure = true, and nonsense", function()
            for _, bad in ipairs{ "http://10.1.2.3:5000", "http://simple.ticketscloud.com:80",
                                  "ftp://x:1", "", "host:port:1", "a b:1" } do
                local target, err = core.grpc_target(bad)
                assert.is_nil(target, bad)
                assert.equal("invalid", err.kind)
            end
            local c, err = tc.new{ key = "k", simple = "http://192.0.2.1:5000" }
            assert.is_nil(c)
            assert.equal("invalid", err.kind)
        end)
    end)

    describe("streams and channels", function()
        it("reuse one channel for every call of a client", function()
            assert(client:tags())
            local ch = client.channel
            assert.truthy(ch)
            all(assert(client:tags()))
            all(assert(client:countries()))
            assert.equal(ch, client.channel)
        end)

        it("close early, idempotently; a closed stream reports closed", function()
            local stream = assert(client:seats{ event = SLIPKNOT })
            assert.is_table(stream())
            assert.is_true(stream:close())
            assert.is_true(stream:close())
            local seat, err = stream()
            assert.is_nil(seat)
            assert.equal("invalid", keep(err).kind)
            assert.equal("closed", err.messages[1])
            assert.is_nil(stream:error())
            -- the channel is fine afterwards
            assert.equal(100, #all(assert(client:seats{ event = SLIPKNOT })))
        end)

        -- The messages of a packed listing's chunks (stream:read_all).
        local function unpacked(chunks, type_name)
            local out = {}
            for _, chunk in ipairs(chunks) do
                local pos = 1
                while true do
                    local message, nxt = core.decode_at(type_name, chunk, pos)
                    if not message then
                        assert.is_nil(nxt)
                        break
                    end
                    out[#out + 1], pos = message, nxt
                end
                assert.equal(#chunk + 1, pos)
            end
            return out
        end

        it("read the rest at once, undecoded, into a packed listing (read_all)", function()
            local traced = {}
            local c = assert(tc.new{ key = sb.key, api = sb.api, simple = sb.simple,
                                     trace = function(...) traced[#traced + 1] = { ... } end })
            local stream = assert(c:seats{ event = SLIPKNOT })
            local first = assert(stream())
            local chunks, n, type_name = stream:read_all(1024 * 1024)
            assert.same({ 1, 99, "v3.Seat" }, { #chunks, n, type_name })
            assert.is_nil(stream:error())
            local seats = unpacked(chunks, type_name)
            table.insert(seats, 1, first)
            -- traced once, at its end, as a loop would have
            assert.equal(1, #traced)
            assert.same({ "GRPC", "/v3.Simple/Seats" }, { traced[1][1], traced[1][2] })
            assert.equal(0, traced[1][4])
            assert.same(all(assert(c:seats{ event = SLIPKNOT })), seats)
            -- over: nothing more, as a loop would get nil
            assert.same({ {}, 0, "v3.Seat" }, { stream:read_all(10) })
            stream:close()
            local _, err = stream:read_all(10)
            assert.equal("closed", keep(err).messages[1])
            c:close()
        end)

        it("read_all cuts the listing into chunks of whole messages", function()
            local whole = all(assert(client:seats{ event = SLIPKNOT }))
            local chunks, n = assert(client:seats{ event = SLIPKNOT }):read_all(1024 * 1024, 1000)
            assert.equal(100, n)
            assert.is_true(#chunks > 5)
            for _, chunk in ipairs(chunks) do assert.is_true(#chunk <= 1000) end
            assert.same(whole, unpacked(chunks, "v3.Seat"))
            -- a message larger than a chunk is a chunk of its own
            chunks = assert(client:seats{ event = SLIPKNOT }):read_all(1024 * 1024, 10)
            assert.equal(100, #chunks)
            assert.same(whole, unpacked(chunks, "v3.Seat"))
            assert.has_error(function() assert(client:seats{ event = SLIPKNOT }):read_all(100, 0) end)
        end)

        it("read_all past max_bytes closes the stream and returns nothing of it", function()
            local traced = {}
            local c = assert(tc.new{ key = sb.key, api = sb.api, simple = sb.simple,
                                     trace = function(...) traced[#traced + 1] = { ... } end })
            local stream = assert(c:seats{ event = SLIPKNOT })
            local listing, err = stream:read_all(1000)
            assert.is_nil(listing)
            assert.equal("transport", keep(err).kind)
            assert.matches("^the Seats listing is larger than 1000 bytes %(%d+ messages read%)$",
                           err.messages[1])
            -- cancelled as by close(): traced with status nil, then closed
            assert.equal(1, #traced)
            assert.is_nil(traced[1][4])
            local seat
            seat, err = stream()
            assert.is_nil(seat)
            assert.equal("closed", keep(err).messages[1])
            assert.has_error(function() stream:read_all(0) end)
            assert.has_error(function() stream:read_all("many") end)
            -- the channel is fine
            assert.equal(100, #all(assert(c:seats{ event = SLIPKNOT })))
            c:close()
        end)

        it("read_all of a failed stream returns what came, and error() tells why", function()
            local c = assert(tc.new{ key = "wrong-key-0123456789", api = sb.api, simple = sb.simple })
            local stream = assert(c:seats{ event = SLIPKNOT })
            assert.same({ {}, 0, "v3.Seat" }, { stream:read_all(1000) })
            assert.equal("auth", keep(stream:error()).kind)
            c:close()
        end)

        it("keep returning nil at the end", function()
            local stream = assert(client:categories{ ids = { "5a0c4bd21c0d2e0001a0c001" } })
            assert.is_table(stream())
            assert.is_nil(stream())
            assert.is_nil(stream())
            assert.is_nil(stream:error())
            assert.is_true(stream:close())
        end)

        it("many streams can be open at once on one channel", function()
            local a = assert(client:seats{ event = SLIPKNOT })
            local b = assert(client:seats{ event = NUT_PUBLIC })
            local na, nb = 0, 0
            while true do
                local x, y = a(), b()
                if x then na = na + 1 end
                if y then nb = nb + 1 end
                if not x and not y then break end
            end
            assert.same({ 100, 40 }, { na, nb })
        end)

        it("closing the client closes its open streams; use after close is invalid", function()
            local c = assert(tc.new{ key = sb.key, api = sb.api, simple = sb.simple })
            local stream = assert(c:seats{ event = SLIPKNOT })
            assert.is_table(stream())
            c:close()
            c:close()
            local seat, err = stream()
            assert.is_nil(seat)
            assert.equal("closed", keep(err).messages[1])
            local s2, err2 = c:events()
            assert.is_nil(s2)
            assert.equal("invalid", keep(err2).kind)
            assert.is_true(stream:close())
        end)

        it("keep their client alive while they run", function()
            local stream = assert(assert(tc.new{ key = sb.key, api = sb.api, simple = sb.simple })
                :seats{ event = SLIPKNOT })
            -- nothing but the stream refers to the client now
            local n = 0
            for _ in stream do
                n = n + 1
                if n % 10 == 0 then collectgarbage() end
            end
            assert.is_nil(stream:error())
            assert.equal(100, n)
        end)

        it("are collected without being closed", function()
            local c = assert(tc.new{ key = sb.key, api = sb.api, simple = sb.simple })
            for _ = 1, 20 do
                local stream = assert(c:seats{ event = SLIPKNOT })
                stream()
            end
            collectgarbage()
            collectgarbage()
            assert.equal(100, #all(assert(c:seats{ event = SLIPKNOT })))
            c:close()
        end)

        if _VERSION == "Lua 5.4" then
            it("close with <close> on Lua 5.4", function()
                local chunk = assert(load([[
                    local client, ev = ...
                    local stream <close> = assert(client:seats{ event = ev })
                    assert(stream())
                    return stream
                ]]))
                local stream = chunk(client, SLIPKNOT)
                local seat, err = stream()
                assert.is_nil(seat)
                assert.equal("closed", err.messages[1])
            end)
        end
    end)
end)

describe("loading and closing", function()
    -- A fresh interpreter reports its threads and sockets at each step.
    local CHILD = [[
        local function threads()
            for line in io.lines("/proc/self/status") do
                local n = line:match("^Threads:%s*(%d+)")
                if n then return tonumber(n) end
            end
        end
        local function sockets() -- the shell's parent is this interpreter
            local p = io.popen("ls -l /proc/$PPID/fd 2>/dev/null")
            local n = 0
            for line in p:lines() do if line:find("socket:", 1, true) then n = n + 1 end end
            p:close()
            return n
        end
        local simple = ...
        local function report(step) io.write(step, " ", threads(), " ", sockets(), "\n") end
        local tc = require "ticketscloud"
        report("require")
        local c = assert(tc.new{ key = "k", api = "http://127.0.0.1:1", simple = simple })
        report("new")
        local s = assert(c:tags())
        s()
        report("call")
        c:close()
        report("close")
    ]]

    it("opens no socket and starts no thread before the first call; close stops them", function()
        local f = io.open("/proc/self/status")
        if not f then return pending("needs Linux /proc") end
        f:close()
        local sb = assert(sandbox.start())
        local script = os.tmpname()
        f = assert(io.open(script, "w"))
        f:write("require 'ticketscloud'\n", (CHILD:gsub("%.%.%.", "'" .. sb.simple .. "'", 1)))
        f:close()
        -- the interpreter running this spec (the sanitizer run has its own host)
        local lua = arg and arg[-1] or (rawget(_G, "jit") and "luajit" or "lua5.4")
        local p = assert(io.popen(("LUA_PATH=%q LUA_CPATH=%q %s %s 2>/dev/null")
                                  :format("./?.lua;" .. package.path, package.cpath, lua, script)))
        local steps = {}
        for line in p:lines() do
            local step, t, s = line:match("^(%a+) (%d+) (%d+)$")
            if step then steps[step] = { tonumber(t), tonumber(s) } end
        end
        p:close()
        os.remove(script)
        sb:stop()
        assert.same({ 1, 0 }, steps.require)
        assert.same({ 1, 0 }, steps.new)
        assert.is_true(steps.call[1] > 1 and steps.call[2] >= 1)
        assert.same({ 1, 0 }, steps.close)
    end)
end)

describe("a 100,000-seat event", function()
    local sb, client, path
    local big = {} -- the arena event of tools/gen-catalog.lua

    lazy_setup(function()
        path = os.tmpname()
        assert(os.execute(("lua5.4 tools/gen-catalog.lua --seats %d --out %s"):format(BIG_SEATS, path)))
        sb = assert(sandbox.start{ catalog = path })
        client = assert(tc.new{ key = sb.key, api = sb.api, simple = sb.simple, timeout = 60 })
        for event in assert(client:events()) do
            if event.name == "Benchmark Arena Show" then big.EVENT = event.id end
        end
        assert(big.EVENT, "no arena event in the generated catalog")
    end)

    lazy_teardown(function()
        if client then client:close() end
        if sb then sb:stop() end
        if path then os.remove(path) end
    end)

    it("is walked in flat memory, one message at a time", function()
        collectgarbage()
        collectgarbage()
        local base = collectgarbage("count")
        local stream = assert(client:seats{ event = big.EVENT })
        -- What the listing retains is measured after a full collection every
        -- 10,000 seats, so the collector's slack (which grows with whatever
        -- else the process holds) does not count.
        local n, retained = 0, 0
        for seat in stream do
            n = n + 1
            if n % 10000 == 0 then
                collectgarbage()
                retained = math.max(retained, collectgarbage("count") - base)
            end
            if n == 1 or n == BIG_SEATS then assert.equal("VACANT", seat.status) end
        end
        assert.is_nil(stream:error())
        assert.equal(BIG_SEATS, n)
        -- 100,000 seat tables would hold well over 20 MB; the stream holds one at
        -- a time. The bound leaves room for the VM's own tables (the string
        -- table grows with 100,000 distinct ticket ids) after the other specs.
        assert.is_true(retained < 2048, ("retained %.0f KB"):format(retained))
    end)

    it("gives in a loop every seat as its packed listing holds it", function()
        -- After a field's value changes (a seat's ticket id every time, its
        -- row and sector now and then), a stream spares the comparison with
        -- its last value for a few messages: every seat must still come out
        -- whole, as core.decode_at reads it from the same listing.
        local chunks, n = assert(client:seats{ event = big.EVENT }):read_all(64 * 2 ^ 20)
        assert.equal(BIG_SEATS, n)
        local stream = assert(client:seats{ event = big.EVENT })
        local count, rows, sectors, last_row, last_sector = 0, 0, 0, nil, nil
        for _, chunk in ipairs(chunks) do
            local pos = 1
            while pos <= #chunk do
                local want, nxt = core.decode_at("v3.Seat", chunk, pos)
                local got = assert(stream())
                for k, v in pairs(want) do
                    if got[k] ~= v then assert.same(want, got) end
                end
                for k, v in pairs(got) do
                    if want[k] ~= v then assert.same(want, got) end
                end
                if got.row ~= last_row then rows, last_row = rows + 1, got.row end
                if got.sector ~= last_sector then sectors, last_sector = sectors + 1, got.sector end
                count, pos = count + 1, nxt
            end
        end
        assert.is_nil(stream())
        assert.is_nil(stream:error())
        assert.equal(BIG_SEATS, count)
        assert.is_true(rows > 100 and sectors > 10, ("%d rows, %d sectors"):format(rows, sectors))
    end)

    it("a deadline shorter than the listing ends it with kind timeout, not a short listing", function()
        local c = assert(tc.new{ key = sb.key, api = sb.api, simple = sb.simple, timeout = 0.3 })
        local stream = assert(c:seats{ event = big.EVENT })
        -- The deadline counts the loop's time too: pausing 10 ms every 1,000 seats makes the
        -- walk take over a second, however fast the sandbox and the client are.
        local n = 0
        for _ in stream do
            n = n + 1
            if n % 1000 == 0 then core.sleep(0.01) end
        end
        local err = stream:error()
        assert.truthy(err, "the stream must not end silently")
        assert.equal("timeout", err.kind)
        assert.equal(4, err.status) -- DEADLINE_EXCEEDED
        assert.is_true(n < BIG_SEATS)
        c:close()
    end)

    it("a sandbox killed mid-stream is an error, never a silent end", function()
        local stream = assert(client:seats{ event = big.EVENT })
        for _ = 1, 10 do assert.is_table(stream()) end
        sb:kill()
        local n = 0
        for _ in stream do n = n + 1 end
        assert.is_true(n < BIG_SEATS - 10)
        local err = stream:error()
        assert.truthy(err)
        assert.equal("transport", err.kind) -- UNAVAILABLE: the connection is gone
    end)
end)
