-- core.encode / core.decode: protobuf messages <-> plain Lua tables.
-- Pure functions, so these specs need no server; wire bytes are written out
-- by hand from spec §2.2 so that both directions are checked against the
-- protobuf encoding itself, not only against each other.

local core = require "ticketscloud.core"

local char = string.char

local EVENT = "5d7134962110d30a34e95b96"
local SET = "5d7134962110d30a34e95b97"

-- A length-delimited record: key byte(s), length, payload (payload < 128 bytes).
local function ld(key, payload)
    assert(#payload < 128)
    return key .. char(#payload) .. payload
end

local function hex(s)
    return (s:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end

describe("core.encode", function()
    it("writes proto3 wire bytes, leaving defaults out", function()
        local bytes = assert(core.encode("v3.SeatsRequest", { event = EVENT, status = "VACANT",
                                                              sets = { SET }, row = "" }))
        -- event = 10 (key 52), sets = 11 (5a), status = 13 (68) VACANT = 1; row "" not sent
        assert.equal(hex(ld("\x52", EVENT) .. ld("\x5a", SET) .. "\x68\x01"), hex(bytes))
    end)

    it("sends nothing for an empty request", function()
        assert.equal("", core.encode("v3.EventsRequest", {}))
    end)

    it("takes enums by name or by number", function()
        assert.equal(core.encode("v3.EventsRequest", { status = "PUBLIC" }),
                     core.encode("v3.EventsRequest", { status = 2 }))
        assert.equal("\x20\x02", core.encode("v3.EventsRequest", { status = "PUBLIC" }))
    end)

    it("packs repeated int32 (CitiesRequest.ids)", function()
        assert.equal("\x0a\x03\x01\xac\x02", core.encode("v3.CitiesRequest", { ids = { 1, 300 } }))
    end)

    it("sends a set oneof member even when it is zero", function()
        -- without_meta = 10 (key 50), false: a oneof member has presence
        assert.equal("\x50\x00", core.encode("v3.EventsRequest", { without_meta = false }))
    end)

    it("takes Timestamps as Unix seconds, with a fraction as nanos", function()
        local bytes = core.encode("v3.EventsRequest", { lifetime = { start = { gte = 1700000000 } } })
        local back = core.decode("v3.EventsRequest", bytes)
        assert.equal(1700000000, back.lifetime.start.gte)
        assert.is_true(math.type == nil or math.type(back.lifetime.start.gte) == "integer")
        back = core.decode("v3.EventsRequest",
                           core.encode("v3.EventsRequest",
                                       { lifetime = { finish = { lt = 1700000000.25 } } }))
        assert.equal(1700000000.25, back.lifetime.finish.lt)
        assert.is_nil(back.lifetime.start)
    end)

    it("writes two-byte field keys (Event.sets 30, tickets_amount_vacant 32, updated_at 70)", function()
        local bytes = core.encode("v3.Event", { sets = { { amount = 1 } }, tickets_amount_vacant = 3,
                                               updated_at = 5 })
        assert.equal("f2010238018002" .. "03" .. "b2040208" .. "05", hex(bytes))
    end)

    it("encodes map fields from a table keyed by the map key", function()
        local back = core.decode("v3.Map", core.encode("v3.Map", { svg = { hall = "<svg/>" } }))
        assert.same({ hall = "<svg/>" }, back.svg)
    end)

    it("takes every 64-bit integer exactly, the largest included", function()
        local function population(v)
            return core.decode("v3.City", assert(core.encode("v3.City", { population = v })))
                       .population
        end
        local function discount(v)
            return core.decode("v3.ModPromotionType",
                               assert(core.encode("v3.ModPromotionType", { discount_fix = v })))
                       .discount_fix
        end
        assert.equal(-2 ^ 53, population(-2 ^ 53))
        assert.equal(2 ^ 62, discount(2 ^ 62))
        assert.equal(2 ^ 64 - 2048, discount(2 ^ 64 - 2048)) -- a float above the integers
        if math.type then -- Lua 5.4 integers: the extremes do not pass through a double
            assert.equal(math.maxinteger, population(math.maxinteger))
            assert.equal(math.mininteger, population(math.mininteger))
            assert.equal(math.maxinteger - 1, population(math.maxinteger - 1))
            local max = discount(math.maxinteger)
            assert.equal("integer", math.type(max))
            assert.equal(math.maxinteger, max)
            assert.is_nil((core.encode("v3.ModPromotionType", { discount_fix = math.mininteger })))
        end
    end)

    describe("refuses data that does not fit the message, as kind invalid", function()
        local cases = {
            { "an unknown field", "v3.SeatsRequest", { evnt = EVENT },
              "v3.SeatsRequest.evnt: no such field" },
            { "a number for a string", "v3.SeatsRequest", { event = 5 }, "expected a string" },
            { "a string for a list", "v3.EventsRequest", { ids = EVENT }, "expected a list" },
            { "a map for a list", "v3.EventsRequest", { ids = { a = EVENT } }, "expected a list" },
            { "an unknown enum name", "v3.SeatsRequest", { status = "FREE" }, "not a value of the enum" },
            { "a fraction for an integer", "v3.CitiesRequest", { ids = { 1.5 } }, "32-bit integer" },
            { "an int32 out of range", "v3.CitiesRequest", { ids = { 2 ^ 31 } }, "32-bit integer" },
            { "a negative unsigned", "v3.Event", { tickets_amount = -1 }, "unsigned" },
            { "a string for a bool", "v3.EventsRequest", { without_meta = "yes" }, "expected a boolean" },
            { "two members of one oneof", "v3.EventsRequest", { meta = EVENT, without_meta = true },
              "only one of" },
            { "invalid UTF-8", "v3.SeatsRequest", { row = "\xff\xfe" }, "UTF-8" },
            { "a NUL byte in a string", "v3.SeatsRequest", { row = "1\0" }, "UTF-8" },
            { "a string for a message", "v3.EventsRequest", { lifetime = "now" }, "expected a table" },
            { "a string for a Timestamp", "v3.TimestampFilter", { gte = "2024" }, "Unix seconds" },
            { "a non-string field name", "v3.SeatsRequest", { [1] = "x" }, "field names must be strings" },
        }
        for _, case in ipairs(cases) do
            it(case[1], function()
                local bytes, err = core.encode(case[2], case[3])
                assert.is_nil(bytes)
                assert.equal("invalid", err.kind)
                assert.truthy(tostring(err):find(case[4], 1, true), tostring(err))
            end)
        end

        it("nested too deeply", function()
            local t = {}
            local inner = t
            for _ = 1, 100 do inner.x = {}; inner = inner.x end
            local bytes, err = core.encode("v3.Event", { sets = { { rules = { { lifetime = t } } } } })
            assert.is_nil(bytes)
            assert.equal("invalid", err.kind)
        end)
    end)

    it("raises on caller mistakes: an unknown type, a request that is not a table", function()
        assert.has_error(function() core.encode("v3.Nope", {}) end)
        assert.has_error(function() core.encode("v3.SeatsRequest", "event") end)
        assert.has_error(function() core.encode(nil, {}) end)
    end)
end)

describe("core.decode", function()
    it("fills every scalar field with its proto3 default (spec §2.3)", function()
        local seat = assert(core.decode("v3.Seat", ""))
        assert.equal("VACANT", seat.status) -- VACANT = 0 is never on the wire
        assert.equal("", seat.ticket)
        assert.equal("", seat.row)
        assert.is_nil(seat.ticket_reserved_till) -- a message: absent means nil

        local event = assert(core.decode("v3.Event", ""))
        assert.equal("STAND_BY", event.status)
        assert.equal("NONE", event.smart_tickets)
        assert.equal(false, event.open_date)
        assert.equal(0, event.tickets_amount_vacant)
        assert.same({}, event.sets)
        assert.same({}, event.tags)
        assert.is_nil(event.lifetime)
        assert.is_nil(event.deal)      -- oneof commissions not set
        assert.is_nil(event.org_extra)
        assert.is_nil(event.legal_ru)
    end)

    it("decodes a seat from wire bytes", function()
        local bytes = ld("\x12", "5a8dd58e6e55b2064c67c144") .. ld("\x1a", "3") .. ld("\x22", "12")
            .. ld("\x62", EVENT) .. "\x68\x01" .. ld("\x72", "\x08\x80\xe2\xcf\xaa\x06")
        local seat = assert(core.decode("v3.Seat", bytes))
        assert.equal("5a8dd58e6e55b2064c67c144", seat.sector)
        assert.equal("3", seat.row)
        assert.equal("12", seat.number)
        assert.equal(EVENT, seat.ticket)
        assert.equal("RESERVED", seat.status)
        assert.equal(1700000000, seat.ticket_reserved_till)
    end)

    it("gives Timestamps a fraction only when nanos is not 0", function()
        -- seconds = 1, nanos = 500000000
        local t = core.decode("v3.Lifetime", ld("\x0a", "\x08\x01\x10\x80\xca\xb5\xee\x01"))
        assert.equal(1.5, t.start)
        assert.is_nil(t.finish)
    end)

    it("shows only the set member of a oneof; the last one on the wire wins", function()
        local deal = ld("\x8a\x01", ld("\x0a", "deal"))
        local org_extra = ld("\x92\x01", "\x08\x05")
        local e = core.decode("v3.Event", deal)
        assert.equal("deal", e.deal.id)
        assert.is_nil(e.org_extra)
        e = core.decode("v3.Event", deal .. org_extra)
        assert.is_nil(e.deal)
        assert.same({ units = 5, nanos = 0 }, e.org_extra)
    end)

    it("tells an unset optional from a zero one (LegalRu.nds, vat_rate)", function()
        local legal = core.decode("v3.Event.LegalRu", "")
        assert.is_nil(legal.nds)
        assert.is_nil(legal.vat_rate)
        assert.equal("LTD", legal.type)
        legal = core.decode("v3.Event.LegalRu", "\x50\x00\x58\x00")
        assert.equal(false, legal.nds)
        assert.equal("VAT_0", legal.vat_rate)
        -- taxes oneof: LTD_USN (0) is sent when the member is set
        assert.equal("LTD_USN", core.decode("v3.Event.LegalRu", "\x40\x00").ltd)
    end)

    it("keeps enum values it does not know as numbers (open enums)", function()
        assert.equal(7, core.decode("v3.Seat", "\x68\x07").status)
    end)

    it("accepts repeated int32 packed and unpacked", function()
        assert.same({ 1, 300 }, core.decode("v3.CitiesRequest", "\x0a\x03\x01\xac\x02").ids)
        assert.same({ 1, 300 }, core.decode("v3.CitiesRequest", "\x08\x01\x08\xac\x02").ids)
    end)

    it("skips fields it does not know", function()
        local tag = core.decode("v3.Tag", ld("\x0a", "t1") .. "\xf8\x06\x05" .. ld("\x1a", "Rock"))
        assert.equal("t1", tag.id)
        assert.equal("Rock", tag.name)
    end)

    it("decodes fixed32 Percentage.nanos as unsigned, 64-bit integers exactly", function()
        local p = core.decode("v3.Percentage", "\x15\x00\x00\x00\x80")
        assert.equal(2147483648, p.nanos)
        local city = core.decode("v3.City", "\x30\xe4\xaa\xfb\x05") -- population 12506468
        assert.equal(12506468, city.population)
        local big = core.decode("v3.ModPromotionType", "\x20" .. ("\xff"):rep(9) .. "\x01")
        assert.equal(2 ^ 64 - 1, big.discount_fix) -- above the integers: a float
    end)

    it("turns map fields into tables", function()
        local entry = ld("\x0a", "main") .. ld("\x12", "<svg/>")
        local m = core.decode("v3.Map", ld("\x3a", entry))
        assert.same({ main = "<svg/>" }, m.svg)
    end)

    it("round-trips a full event", function()
        local event = {
            id = EVENT, name = "Концерт", status = "PUBLIC", tags = { "t1", "t2" },
            lifetime = { start = 1700000000, finish = 1700010000 },
            deal = { id = "d", extra = { units = 4, nanos = 500000000 } },
            sets = { { id = SET, name = "Фан зона", with_seats = true, amount = 10, amount_vacant = 9,
                       rules = { { id = "r", simple = { price = 560000 } } } } },
            legal_ru = { type = "IP", ogrnip = "123", ip = "IP_NPD", nds = true },
            mods = { { id = "m", type = "PROMOTION", promotion = { discount_fix = 100 } } },
            smart_tickets = "ANY", updated_at = 1700000001,
        }
        local back = assert(core.decode("v3.Event", assert(core.encode("v3.Event", event))))
        assert.equal("Концерт", back.name)
        assert.equal("PUBLIC", back.status)
        assert.same({ "t1", "t2" }, back.tags)
        assert.same({ start = 1700000000, finish = 1700010000 }, back.lifetime)
        assert.same({ units = 4, nanos = 500000000 }, back.deal.extra)
        assert.is_nil(back.deal.org)
        assert.equal(560000, back.sets[1].rules[1].simple.price)
        assert.equal("SIMPLE", back.sets[1].rules[1].type)
        assert.equal("IP_NPD", back.legal_ru.ip)
        assert.is_nil(back.legal_ru.ltd)
        assert.equal("123", back.legal_ru.ogrnip)
        assert.is_nil(back.legal_ru.ogrn)
        assert.equal(true, back.legal_ru.nds)
        assert.equal(100, back.mods[1].promotion.discount_fix)
        assert.equal("ANY", back.smart_tickets)
        assert.equal(1700000001, back.updated_at)
    end)

    it("returns nil, err (invalid) for bytes that are not the message", function()
        local t, err = core.decode("v3.Seat", "\x12\x50abc") -- length past the end
        assert.is_nil(t)
        assert.equal("invalid", err.kind)
        assert.truthy(tostring(err):find("malformed v3.Seat", 1, true))
        t, err = core.decode("v3.Seat", "\xff")
        assert.is_nil(t)
        assert.equal("invalid", err.kind)
    end)

    it("raises on caller mistakes", function()
        assert.has_error(function() core.decode("Seat", "") end)
        assert.has_error(function() core.decode("v3.Seat", {}) end)
    end)
end)

-- The decoder reads the wire format itself; these are the cases a protobuf
-- encoder rarely makes but a parser must take (the ASan build also checks
-- every decoded message against protobuf-c's unpack).
describe("core.decode of the wire format", function()
    local function seat(bytes)
        return assert(core.decode("v3.Seat", bytes))
    end

    it("skips unknown fields of every wire type", function()
        local unknown = "\x08\x96\x01"                -- field 1, varint 150
                        .. "\x79" .. ("\1"):rep(8)      -- field 15, 64-bit
                        .. ld("\x82\x01", "skipped")    -- field 16, length-delimited
                        .. "\x8d\x01" .. ("\2"):rep(4) -- field 17, 32-bit
        local s = seat(unknown .. ld("\x1a", "7") .. unknown)
        assert.equal("7", s.row)
        assert.equal("VACANT", s.status)
    end)

    it("refuses groups, undefined wire types, values cut short and wrong types", function()
        for _, bytes in ipairs{
            "\x0b\x0c",                          -- field 1, a group
            "\x0e\x00",                          -- field 1, wire type 6
            "\x18\x07",                          -- row, a string, as a varint
            "\x68" .. ("\xff"):rep(10) .. "\x01", -- an 11-byte varint
            "\x79\1\2\3",                        -- a 64-bit value cut short
            "\x72\x02\x08",                      -- a Timestamp past the end
            "\x72\x01\x08",                      -- a Timestamp whose seconds are cut short
        } do
            local t, err = core.decode("v3.Seat", bytes)
            assert.is_nil(t, hex(bytes))
            assert.equal("invalid", err.kind)
        end
    end)

    it("keeps the last of a field sent twice, merges a message and replaces a oneof member",
       function()
        assert.equal("2", seat(ld("\x1a", "1") .. ld("\x1a", "2")).row)
        local start, finish = ld("\x0a", "\x08\x01"), ld("\x12", "\x08\x02")
        local event = assert(core.decode("v3.Event", ld("\x4a", start) .. ld("\x4a", finish)))
        assert.same({ start = 1, finish = 2 }, event.lifetime)
        local legal = assert(core.decode("v3.Event.LegalRu",
                                         ld("\x32", "1027700000000") .. ld("\x3a", "304500000000000")))
        assert.is_nil(legal.ogrn)
        assert.equal("304500000000000", legal.ogrnip)
    end)

    it("reads repeated numbers packed and one by one, in order", function()
        local packed = ld("\x0a", "\x01\x96\x01\x03") -- 1, 150, 3
        local request = assert(core.decode("v3.CitiesRequest", packed .. "\x08\x04\x08\x05"))
        assert.same({ 1, 150, 3, 4, 5 }, request.ids)
        assert.same({}, assert(core.decode("v3.CitiesRequest", "")).ids)
    end)

    it("reads a negative int32 from ten bytes and keeps an unknown enum number", function()
        local p = assert(core.decode("v3.Percentage", "\x08" .. ("\xff"):rep(9) .. "\x01"))
        assert.equal(-1, p.units)
        assert.equal(7, seat("\x68\x07").status)
    end)

    it("gives map entries the key and value they were sent, or their defaults", function()
        local m = assert(core.decode("v3.Map", ld("\x3a", ld("\x12", "<svg/>")) ..
                                               ld("\x3a", ld("\x0a", "hall"))))
        assert.same({ [""] = "<svg/>", hall = "" }, m.svg)
    end)

    -- Damaged copies of real messages: every one decodes to a table or to nil, err, never
    -- raises; in the ASan build each is also unpacked by protobuf-c, and any message the
    -- two read differently (or one refuses and the other not) aborts the run.
    it("reads damaged messages as protobuf-c does, or refuses them", function()
        local samples = {
            { "v3.Seat", { event = EVENT, set = SET, ticket = EVENT, sector = SET, row = "12",
                           number = "7", status = "RESERVED", ticket_reserved_till = 1900000000 } },
            { "v3.Event", { id = EVENT, name = "Концерт", status = "PUBLIC", tags = { "t1", "t2" },
                            lifetime = { start = 1700000000, finish = 1700010000.5 },
                            deal = { id = "d", extra = { units = 4, nanos = 500000000 } },
                            sets = { { id = SET, name = "Фан зона", with_seats = true, amount = 10,
                                       rules = { { id = "r", simple = { price = 560000 } } } } },
                            legal_ru = { type = "IP", ogrnip = "123", ip = "IP_NPD", nds = true } } },
            { "v3.Map", { svg = { main = "<svg/>", small = "<svg width='1'/>" } } },
            { "v3.CitiesRequest", { ids = { 1, 150, 70000, -3 }, name = "Мос" } },
            { "v3.Venue", { id = EVENT, name = "Зал", city = -5, with_mosbilet = true,
                            coordinates = { longitude = 37.6, latitude = -55.75 } } },
        }
        local state = 20261202 -- a fixed linear congruential sequence: the same cases each run
        local function rnd(n)
            state = (state * 1103515245 + 12345) % 2147483648
            return math.floor(state / 65536) % n + 1 -- the high bits: the low ones cycle
        end
        local decoded, refused = 0, 0
        for _, sample in ipairs(samples) do
            local bytes = assert(core.encode(sample[1], sample[2]))
            for _ = 1, 500 do
                local b, at = bytes, rnd(#bytes)
                local how = rnd(4)
                if how == 1 then     -- a byte changed
                    b = b:sub(1, at - 1) .. char(rnd(256) - 1) .. b:sub(at + 1)
                elseif how == 2 then -- cut short
                    b = b:sub(1, at - 1)
                elseif how == 3 then -- a byte inserted
                    b = b:sub(1, at - 1) .. char(rnd(256) - 1) .. b:sub(at)
                else                 -- a piece repeated
                    local to = at + rnd(8)
                    b = b:sub(1, to) .. b:sub(at, to) .. b:sub(to + 1)
                end
                local ok, t, err = pcall(core.decode, sample[1], b)
                assert(ok, t)
                if t then
                    assert.equal("table", type(t))
                    decoded = decoded + 1
                else
                    assert.equal("invalid", err.kind)
                    refused = refused + 1
                end
            end
        end
        assert.is_true(decoded > 250 and refused > 250, decoded .. " decoded, " .. refused .. " refused")
    end)

    it("gives each message its own values whatever the one before held", function()
        local a = seat(ld("\x12", "A") .. ld("\x1a", "10") .. ld("\x52", EVENT))
        local b = seat(ld("\x12", "B") .. ld("\x1a", "10") .. ld("\x52", EVENT))
        local c = seat(ld("\x12", "A"))
        assert.same({ "A", "10", EVENT }, { a.sector, a.row, a.event })
        assert.same({ "B", "10", EVENT }, { b.sector, b.row, b.event })
        assert.same({ "A", "", "" }, { c.sector, c.row, c.event })
        assert.equal("1\0002", seat(ld("\x1a", "1\0002")).row)
    end)
end)

-- A packed listing, as stream:read_all returns one: each message after its
-- length as a varint.
describe("core.decode_at", function()
    local seat1 = assert(core.encode("v3.Seat", { ticket = EVENT, row = "1", number = "7" }))
    local seat2 = assert(core.encode("v3.Seat", { ticket = SET, status = "SOLD" }))
    local big = assert(core.encode("v3.Seat", { row = string.rep("r", 300) })) -- a 2-byte length
    local listing = char(#seat1) .. seat1 .. char(#seat2) .. seat2 ..
                    char(#big % 128 + 128, math.floor(#big / 128)) .. big .. "\0" -- an empty message

    it("reads each message and where the next starts, then nil at the end", function()
        local got, pos = {}, 1
        while true do
            local seat, nxt = core.decode_at("v3.Seat", listing, pos)
            if seat == nil then
                assert.is_nil(nxt)
                break
            end
            got[#got + 1] = seat
            pos = nxt
        end
        assert.equal(#listing + 1, pos)
        assert.equal(4, #got)
        assert.same({ EVENT, "1", "7", "VACANT" }, { got[1].ticket, got[1].row, got[1].number,
                                                     got[1].status })
        assert.same({ SET, "SOLD" }, { got[2].ticket, got[2].status })
        assert.equal(300, #got[3].row)
        assert.same(core.decode("v3.Seat", ""), got[4])
        assert.is_nil(core.decode_at("v3.Seat", "", 1))
        assert.is_nil(core.decode_at("v3.Seat", listing, #listing + 5))
    end)

    it("returns nil, err (invalid) for a listing cut short or bytes that are not a message", function()
        for _, case in ipairs{
            { listing:sub(1, #seat1), "truncated v3.Seat listing at byte 1" },  -- length past the end
            { "\x80", "truncated v3.Seat listing at byte 1" },                   -- a length cut short
            { string.rep("\x80", 11) .. "\1", "truncated v3.Seat listing at byte 1" }, -- 11-byte length
            { "\3\x12\x50a", "malformed v3.Seat message at byte 1" },
        } do
            local seat, err = core.decode_at("v3.Seat", case[1], 1)
            assert.is_nil(seat)
            assert.equal("invalid", err.kind)
            assert.equal(case[2], err.messages[1])
        end
        local _, err = core.decode_at("v3.Seat", listing .. "\5ab", #listing + 1)
        assert.equal("truncated v3.Seat listing at byte " .. (#listing + 1), err.messages[1])
    end)

    it("raises on caller mistakes", function()
        assert.has_error(function() core.decode_at("Seat", listing, 1) end)
        assert.has_error(function() core.decode_at("v3.Seat", {}, 1) end)
        assert.has_error(function() core.decode_at("v3.Seat", listing, 0) end)
        assert.has_error(function() core.decode_at("v3.Seat", listing) end)
    end)
end)
