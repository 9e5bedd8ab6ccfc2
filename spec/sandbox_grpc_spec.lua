-- tc-sandbox's gRPC listener (tc-simple v3), over real sockets.
--
-- The calls go through spec/interop/client.py, a client generated at test
-- time from proto/ with grpc_tools: what it receives is what any client
-- built from the public tc-simple protos receives. Expectations are worked
-- out from examples/catalog.json, the catalog the sandbox serves.
--
-- Live inventory is changed through the REST API (LuaSocket), as a user of
-- the sandbox would.

local cjson = require "cjson"
local http = require "socket.http"
local ltn12 = require "ltn12"
local sandbox = require "ticketscloud.sandbox"

local PYTHON = "/usr/bin/python3"
local CLIENT = "spec/interop/client.py"
-- The client is not ours: it runs without the sanitizer runtime that a
-- sanitizer test run preloads into this process and its children.
local PLAIN_ENV = "env -u LD_PRELOAD -u ASAN_OPTIONS -u LSAN_OPTIONS -u UBSAN_OPTIONS "
local CATALOG = "examples/catalog.json"
local EXPIRE = 4 -- seconds an executed order holds its tickets
-- A small call beside heavy ones: 500 ms, and a heavy call itself 5 s; 4
-- times that in the sanitizer step of tools/test (it sets ASAN_OPTIONS),
-- where the sandbox runs several times slower. Both are far below what
-- they were before filters were hashed (12 s for a small call).
local SLOWER = os.getenv("ASAN_OPTIONS") and 4 or 1
local SMALL_BOUND_MS = 500 * SLOWER
local HEAVY_BOUND_S = 5 * SLOWER

local SLIPKNOT = "5d7134962110d30a34e95b96"      -- seated set A2 and two stock sets
local SLIPKNOT_A2 = "5d71353b2110d30a34e97e31"
local SLIPKNOT_FAN = "5d7135112110d30a34e97e2d"  -- "Фан зона", not seated
local NUTCRACKER_META = "5dcbd3a1b2c3d4e5f6a7b8c9"
local UNKNOWN_ID = "000000000000000000000000"

local function read_file(path)
    local f = assert(io.open(path, "rb"))
    local s = f:read("a")
    f:close()
    return s
end

local function write_file(path, s)
    local f = assert(io.open(path, "wb"))
    f:write(s)
    f:close()
end

local function quote(s)
    return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local CAT = cjson.decode(read_file(CATALOG))

-- Where the client's generated code lives for this run (never in the tree).
local GEN = os.tmpname()
os.remove(GEN)

local function client_argv(sb, method, request, opts)
    opts = opts or {}
    local argv = { PYTHON, "-u", CLIENT, "--gen", GEN, "--target", sb.grpc, "--method", method,
                   "--request", cjson.encode(request or {}) }
    local key = opts.key
    if key == nil then key = sb.key end
    if key then
        argv[#argv + 1] = "--metadata"
        argv[#argv + 1] = "authorization=" .. key
    end
    for _, md in ipairs(opts.metadata or {}) do
        argv[#argv + 1] = "--metadata"
        argv[#argv + 1] = md
    end
    if opts.gzip then argv[#argv + 1] = "--gzip" end
    if opts.parallel then
        argv[#argv + 1] = "--parallel"
        argv[#argv + 1] = tostring(opts.parallel)
    end
    for i = 1, #argv do argv[i] = quote(argv[i]) end
    return PLAIN_ENV .. table.concat(argv, " ")
end

-- Parses the client's output: JSON lines, then "status CODE details".
local function parse_output(out)
    local messages, status, details = {}, nil, nil
    for line in out:gmatch("[^\n]+") do
        local code, rest = line:match("^status (%u[%u_]*) ?(.*)$")
        if code then
            status, details = code, rest
        elseif line:sub(1, 1) == "{" then
            messages[#messages + 1] = cjson.decode(line)
        else
            error("unexpected client output: " .. line)
        end
    end
    assert(status, "the client printed no status:\n" .. out)
    return messages, status, details
end

-- One server-streaming call: returns the messages, the status name and its
-- details.
local function call(sb, method, request, opts)
    local p = assert(io.popen(client_argv(sb, method, request, opts) .. " 2>&1"))
    local out = p:read("a")
    p:close()
    return parse_output(out)
end

-- A call that must succeed: returns its messages.
local function stream(sb, method, request, opts)
    local messages, status, details = call(sb, method, request, opts)
    assert.are.equal("OK", status, details)
    return messages
end

local function ids_of(list, field)
    field = field or "id"
    local ids = {}
    for i, item in ipairs(list) do ids[i] = item[field] end
    return ids
end

-- Catalog entities in catalog order that pass keep().
local function select(list, keep)
    local out = {}
    for _, item in ipairs(list) do
        if keep(item) then out[#out + 1] = item end
    end
    return out
end

local function set_of(list)
    local s = {}
    for _, v in ipairs(list) do s[v] = true end
    return s
end

-- Seated tickets of an event in catalog order, as the store walks them.
local function catalog_seats(event_id)
    local seats = {}
    for _, ev in ipairs(CAT.events) do
        if ev.id == event_id then
            for _, set in ipairs(ev.sets) do
                for _, t in ipairs(set.tickets or {}) do
                    if t.seat then
                        seats[#seats + 1] = { ticket = t.id, set = set.id, sector = t.seat.sector,
                                              row = t.seat.row, number = t.seat.number }
                    end
                end
            end
        end
    end
    return seats
end

local function set_size(set)
    return #(set.tickets or {}) + (set.stock and set.stock.count or 0)
end

local function find(list, id)
    for _, item in ipairs(list) do
        if item.id == id then return item end
    end
end

-- The catalog JSON and the client's JSON (proto3 JSON of what came over
-- the wire) agree: every non-default catalog value arrived, 64-bit numbers
-- as strings, and nothing else arrived. Fields with presence (oneof members,
-- `optional`) are sent even when zero, so their zero is not skipped.
local PRESENCE = set_of { "deal", "org_extra", "legal_ru", "ogrn", "ogrnip", "ltd", "ip", "nds",
                          "vat_rate", "simple", "promotion", "discount_percentage",
                          "discount_fix", "levels_percentage", "levels_fix",
                          "levels_count_percentage", "levels_count_fix" }
-- Enum values numbered 0 in the v3 messages the catalog uses.
local ZERO_ENUM = set_of { "STAND_BY", "NONE", "LTD", "SIMPLE", "UNKNOWN", "VACANT" }

local function is_default(key, v)
    if PRESENCE[key] then return false end
    return v == false or v == 0 or v == "" or ZERO_ENUM[v] or
        (type(v) == "table" and next(v) == nil and key ~= "media")
end

local function same_json(expected, got, path)
    if type(expected) == "table" then
        assert(type(got) == "table", path .. ": expected a table, got " .. tostring(got))
        for k, v in pairs(expected) do
            if not is_default(k, v) then same_json(v, got[k], path .. "." .. tostring(k)) end
        end
        for k in pairs(got) do
            assert(expected[k] ~= nil, path .. "." .. tostring(k) .. ": not in the catalog")
        end
    elseif type(expected) == "number" then
        assert(tonumber(got) == expected,
               path .. ": expected " .. tostring(expected) .. ", got " .. tostring(got))
    else
        assert(expected == got, path .. ": expected " .. tostring(expected) .. ", got " ..
               tostring(got))
    end
end

-- The catalog event as the wire shows it on a fresh sandbox: sandbox-only
-- keys gone, live counters filled in.
local function expected_event(ev)
    local e = cjson.decode(cjson.encode(ev))
    e.timezone, e.promocodes = nil, nil
    local total = 0
    for _, set in ipairs(e.sets) do
        set.amount = set_size(set)
        set.amount_vacant = set.amount
        total = total + set.amount
        set.tickets, set.stock = nil, nil
    end
    e.tickets_amount, e.tickets_amount_vacant = total, total
    return e
end

-- REST, as any user of the sandbox would call it.
local function rest(sb, method, path, body)
    local chunks = {}
    local payload = body and cjson.encode(body) or nil
    local _, code = http.request {
        url = sb.api .. path,
        method = method,
        headers = {
            ["Authorization"] = "key " .. sb.key,
            ["Content-Type"] = payload and "application/json" or nil,
            ["Content-Length"] = payload and tostring(#payload) or nil,
        },
        source = payload and ltn12.source.string(payload) or nil,
        sink = ltn12.sink.table(chunks),
    }
    local text = table.concat(chunks)
    local ok, decoded = pcall(cjson.decode, text)
    return code, ok and decoded or text
end

local function sleep(seconds)
    os.execute("sleep " .. tostring(seconds))
end

-- Generates the client once before the sandboxes start.
lazy_setup(function()
    local ok = os.execute(PLAIN_ENV .. quote(PYTHON) .. " " .. quote(CLIENT) .. " --gen " ..
                          quote(GEN))
    assert(ok, "cannot generate the interop client from proto/")
end)

lazy_teardown(function()
    os.execute("rm -rf " .. quote(GEN))
end)

describe("tc-sandbox gRPC", function()
    local sb

    lazy_setup(function()
        sb = assert(sandbox.start { expire = EXPIRE, catalog = CATALOG })
    end)

    lazy_teardown(function()
        if sb then assert.is_true(sb:stop()) end
    end)

    describe("streams the catalog", function()
        local REFERENCE = {
            Artists = "artists", Categories = "categories", Cities = "cities",
            Countries = "countries", Maps = "maps", MetaEvents = "meta_events",
            Tags = "tags", Venues = "venues",
        }

        for method, key in pairs(REFERENCE) do
            it(method .. ": every " .. key .. " entity, in order, field for field", function()
                assert.is_true(#CAT[key] > 0)
                local got = stream(sb, method)
                assert.are.same(ids_of(CAT[key]), ids_of(got))
                for i, entity in ipairs(CAT[key]) do
                    same_json(entity, got[i], method .. "[" .. i .. "]")
                end
            end)
        end

        it("Events: every event with sets, rules, deal, legal data and live counters", function()
            local got = stream(sb, "Events")
            assert.are.same(ids_of(CAT.events), ids_of(got))
            for i, ev in ipairs(CAT.events) do
                same_json(expected_event(ev), got[i], "Events[" .. i .. "]")
            end
        end)

        it("Events: wire values of the order example's event", function()
            local ev = stream(sb, "Events", { ids = { "5d31fbdd27649b0dff076117" } })[1]
            assert.are.equal("Сплин", ev.name)
            assert.are.equal("PUBLIC", ev.status)
            assert.are.same({ units = 4 }, ev.deal.extra)
            assert.are.equal("5d31fbfa27649b0dff07611b", ev.sets[1].id)
            assert.are.equal(500, ev.sets[1].amount)
            -- uint64 money in minor units; proto3 JSON prints 64-bit as strings
            assert.is_string(ev.sets[1].rules[1].simple.price)
            assert.are.equal(540, ev.tickets_amount)
        end)

        it("Events: a STAND_BY event carries no status and an event without deal no deal",
           function()
            local got = stream(sb, "Events", { ids = { "5dcbd3a1b2c3d4e5f6a7b8d1",
                                                        "5e0a1b2c3d4e5f6071829304" } })
            assert.are.equal(2, #got)
            assert.is_nil(got[1].status)
            assert.is_nil(got[2].deal)
            assert.are.equal("PUBLIC", got[2].status)
        end)

        it("Seats: every seated ticket of the event, vacant ones without a status", function()
            local want = catalog_seats(SLIPKNOT)
            assert.is_true(#want > 0)
            local got = stream(sb, "Seats", { event = SLIPKNOT })
            assert.are.same(ids_of(want, "ticket"), ids_of(got, "ticket"))
            for i, seat in ipairs(got) do
                assert.are.equal(SLIPKNOT, seat.event)
                assert.are.equal(want[i].set, seat.set)
                assert.are.equal(want[i].sector, seat.sector)
                assert.are.equal(want[i].row, seat.row)
                assert.are.equal(want[i].number, seat.number)
                assert.is_nil(seat.status)
                assert.is_nil(seat.ticket_reserved_till)
            end
        end)
    end)

    describe("request filters", function()
        -- Methods whose only filter is `ids`.
        local BY_IDS = {
            Artists = "artists", Categories = "categories", Countries = "countries",
            MetaEvents = "meta_events", Tags = "tags", Venues = "venues",
        }

        for method, key in pairs(BY_IDS) do
            it(method .. ": ids, in catalog order, unknown ids not streamed", function()
                local list = CAT[key]
                local last, first = list[#list].id, list[1].id
                local got = stream(sb, method, { ids = { last, UNKNOWN_ID, first } })
                if first == last then
                    assert.are.same({ first }, ids_of(got))
                else
                    assert.are.same({ first, last }, ids_of(got))
                end
                assert.are.same({}, stream(sb, method, { ids = { UNKNOWN_ID } }))
            end)
        end

        it("Countries: the README's example id", function()
            local got = stream(sb, "Countries", { ids = { "ZM" } })
            assert.are.same({ "ZM" }, ids_of(got))
        end)

        it("Maps: ids and venue, alone and together", function()
            local map = CAT.maps[#CAT.maps]
            assert.are.same({ map.id }, ids_of(stream(sb, "Maps", { ids = { map.id } })))
            local of_venue = select(CAT.maps, function(m) return m.venue == map.venue end)
            assert.are.same(ids_of(of_venue), ids_of(stream(sb, "Maps", { venue = map.venue })))
            assert.are.same({}, stream(sb, "Maps", { venue = UNKNOWN_ID }))
            assert.are.same({}, stream(sb, "Maps", { ids = { CAT.maps[1].id },
                                                      venue = UNKNOWN_ID }))
        end)

        it("Cities: ids (packed int32), country", function()
            local got = stream(sb, "Cities", { ids = { 524901, 909137, 1 } })
            assert.are.same({ 524901, 909137 }, ids_of(got))
            local ru = select(CAT.cities, function(c) return c.country == "RU" end)
            assert.are.same(ids_of(ru), ids_of(stream(sb, "Cities", { country = "RU" })))
            assert.are.same({ 625144 }, ids_of(stream(sb, "Cities", { country = "BY" })))
            assert.are.same({}, stream(sb, "Cities", { country = "XX" }))
        end)

        it("Cities: name matches the whole name, case-insensitively (Cyrillic too)", function()
            assert.are.same({ 524901 }, ids_of(stream(sb, "Cities", { name = "Москва" })))
            assert.are.same({ 524901 }, ids_of(stream(sb, "Cities", { name = "мОСКВА" })))
            assert.are.same({}, stream(sb, "Cities", { name = "Моск" }))
        end)

        it("Cities: suggest matches a part of the name, case-insensitively", function()
            assert.are.same({ 520555 }, ids_of(stream(sb, "Cities", { suggest = "новгор" })))
            assert.are.same({ 498817 }, ids_of(stream(sb, "Cities", { suggest = "САНКТ" })))
            local with_m = select(CAT.cities, function(c)
                return c.name:find("М", 1, true) or c.name:find("м", 1, true)
            end)
            assert.is_true(#with_m >= 2)
            assert.are.same(ids_of(with_m), ids_of(stream(sb, "Cities", { suggest = "м" })))
            assert.are.same({ 625144 }, ids_of(stream(sb, "Cities", { suggest = "м",
                                                                      country = "BY" })))
            assert.are.same({}, stream(sb, "Cities", { suggest = "zzz" }))
        end)

        describe("Events", function()
            local function expect(request, keep)
                local want = ids_of(select(CAT.events, keep))
                assert.are.same(want, ids_of(stream(sb, "Events", request)))
                return want
            end

            it("ids", function()
                local want = expect({ ids = { CAT.events[3].id, UNKNOWN_ID, CAT.events[1].id } },
                                    function(e)
                                        return e.id == CAT.events[1].id or e.id == CAT.events[3].id
                                    end)
                assert.are.equal(2, #want)
            end)

            it("meta, and without_meta", function()
                local grouped = expect({ meta = NUTCRACKER_META },
                                       function(e) return e.meta == NUTCRACKER_META end)
                assert.are.equal(2, #grouped)
                local alone = expect({ without_meta = true },
                                     function(e) return (e.meta or "") == "" end)
                assert.are.equal(#CAT.events - 2, #alone)
                expect({ without_meta = false }, function() return true end)
                expect({ meta = UNKNOWN_ID }, function() return false end)
            end)

            it("org", function()
                local org = "5d1a2b3c4d5e6f7081920a1b"
                local want = expect({ org = org }, function(e) return e.org == org end)
                assert.is_true(#want > 0 and #want < #CAT.events)
            end)

            it("status: EventsRequest.Status numbers are not Event.EventStatus numbers",
               function()
                local standby = expect({ status = "STAND_BY" },
                                       function(e) return (e.status or "STAND_BY") == "STAND_BY" end)
                assert.are.same({ "5dcbd3a1b2c3d4e5f6a7b8d1" }, standby)
                local public = expect({ status = "PUBLIC" },
                                      function(e) return e.status == "PUBLIC" end)
                assert.are.equal(#CAT.events - 1, #public)
                expect({ status = "ANY" }, function() return true end)
            end)

            -- Catalog times are all "YYYY-MM-DDTHH:MM:SSZ": they order as strings.
            it("lifetime: gte, gt, lte, lt on start and finish", function()
                local t = "2030-06-01T00:00:00Z"
                local function start(e) return e.lifetime.start end
                local function finish(e) return e.lifetime.finish end
                local before = expect({ lifetime = { start = { lt = t } } },
                                      function(e) return start(e) < t end)
                local after = expect({ lifetime = { start = { gte = t } } },
                                     function(e) return start(e) >= t end)
                assert.is_true(#before > 0 and #after > 0)
                assert.are.equal(#CAT.events, #before + #after)
                expect({ lifetime = { finish = { lte = t } } }, function(e) return finish(e) <= t end)
                expect({ lifetime = { finish = { gt = t } } }, function(e) return finish(e) > t end)
                expect({ lifetime = { start = { gte = "2030-01-01T00:00:00Z",
                                                lt = "2031-01-01T00:00:00Z" },
                                      finish = { lte = "2030-12-31T00:00:00Z" } } },
                       function(e)
                           return start(e) >= "2030-01-01T00:00:00Z" and
                               start(e) < "2031-01-01T00:00:00Z" and
                               finish(e) <= "2030-12-31T00:00:00Z"
                       end)
            end)

            it("lifetime: the bounds are exact to the second", function()
                local ev = CAT.events[1]
                local s = ev.lifetime.start
                local function has(request)
                    return set_of(ids_of(stream(sb, "Events", request)))[ev.id] == true
                end
                assert.is_true(has({ lifetime = { start = { gte = s } } }))
                assert.is_false(has({ lifetime = { start = { gt = s } } }))
                assert.is_true(has({ lifetime = { start = { lte = s } } }))
                assert.is_false(has({ lifetime = { start = { lt = s } } }))
            end)

            it("all filters together", function()
                expect({ ids = { "5dcbd3a1b2c3d4e5f6a7b8d0", "5dcbd3a1b2c3d4e5f6a7b8d1",
                                 SLIPKNOT },
                         meta = NUTCRACKER_META, status = "PUBLIC",
                         org = "5d1a2b3c4d5e6f7081920a1b" },
                       function(e) return e.id == "5dcbd3a1b2c3d4e5f6a7b8d0" end)
            end)
        end)

        describe("Seats", function()
            local all = catalog_seats(SLIPKNOT)

            local function expect(request, keep)
                request.event = SLIPKNOT
                local want = ids_of(select(all, keep), "ticket")
                assert.are.same(want, ids_of(stream(sb, "Seats", request), "ticket"))
                return want
            end

            it("sector, row, number", function()
                local s = all[1]
                assert.is_true(#expect({ sector = s.sector },
                                       function(x) return x.sector == s.sector end) > 0)
                expect({ row = all[#all].row }, function(x) return x.row == all[#all].row end)
                local n = expect({ number = "5" }, function(x) return x.number == "5" end)
                assert.is_true(#n >= 1)
                assert.are.equal(1, #expect({ sector = s.sector, row = s.row, number = s.number },
                                            function(x) return x.ticket == s.ticket end))
                expect({ sector = UNKNOWN_ID }, function() return false end)
            end)

            it("sets and tickets", function()
                expect({ sets = { SLIPKNOT_A2 } }, function(x) return x.set == SLIPKNOT_A2 end)
                expect({ sets = { SLIPKNOT_FAN } }, function() return false end)
                local pick = { all[7].ticket, UNKNOWN_ID, all[2].ticket }
                assert.are.same({ all[2].ticket, all[7].ticket },
                                expect({ tickets = pick }, function(x)
                                    return x.ticket == all[2].ticket or x.ticket == all[7].ticket
                                end))
            end)

            it("status: every seat of a fresh sandbox is VACANT", function()
                expect({ status = "VACANT" }, function() return true end)
                expect({ status = "RESERVED" }, function() return false end)
                expect({ status = "SOLD" }, function() return false end)
            end)

            it("an unknown event streams nothing", function()
                assert.are.same({}, stream(sb, "Seats", { event = UNKNOWN_ID }))
            end)
        end)
    end)

    describe("errors", function()
        local METHODS = { "Artists", "Categories", "Cities", "Countries", "Events", "Maps",
                          "MetaEvents", "Seats", "Tags", "Venues" }

        it("every method: a missing or wrong key is UNAUTHENTICATED", function()
            for _, method in ipairs(METHODS) do
                local request = method == "Seats" and { event = SLIPKNOT } or {}
                local got, status = call(sb, method, request, { key = false })
                assert.are.equal("UNAUTHENTICATED", status, method)
                assert.are.same({}, got)
                got, status = call(sb, method, request, { key = "0123456789abcdef" })
                assert.are.equal("UNAUTHENTICATED", status, method)
                assert.are.same({}, got)
            end
        end)

        it("the gRPC key is bare: the REST form `key <KEY>` is refused", function()
            local _, status = call(sb, "Tags", {}, { key = "key " .. sb.key })
            assert.are.equal("UNAUTHENTICATED", status)
        end)

        it("Seats without event is INVALID_ARGUMENT", function()
            local got, status = call(sb, "Seats", { sets = { SLIPKNOT_A2 } })
            assert.are.equal("INVALID_ARGUMENT", status)
            assert.are.same({}, got)
        end)

        it("an unknown method, or the v2 path, is UNIMPLEMENTED", function()
            local _, status = call(sb, "/v3.Simple/Healtz")
            assert.are.equal("UNIMPLEMENTED", status)
            _, status = call(sb, "/v2.Simple/Events")
            assert.are.equal("UNIMPLEMENTED", status)
        end)

        it("a gRPC port in use is an error at start, not a shared port", function()
            local log = os.tmpname()
            local other = sandbox.start { args = { "--grpc", sb.grpc }, log = log }
            if other then other:stop() end
            local err = read_file(log)
            os.remove(log)
            assert.is_nil(other)
            assert.matches("cannot listen on " .. sb.grpc:gsub("%p", "%%%0"), err)
            assert.are.equal(#CAT.tags, #stream(sb, "Tags"))
        end)

        it("a compressed request is understood", function()
            local got = stream(sb, "Events", { ids = { SLIPKNOT } }, { gzip = true })
            assert.are.same({ SLIPKNOT }, ids_of(got))
        end)

        it("preferred-language is accepted", function()
            local plain = stream(sb, "Countries")
            local ru = stream(sb, "Countries", {}, { metadata = { "preferred-language=ru" } })
            assert.are.same(plain, ru)
            assert.are.equal(#CAT.countries, #ru)
        end)
    end)

    describe("live inventory", function()
        local seat = catalog_seats(SLIPKNOT)[3]

        local function slipknot()
            return stream(sb, "Events", { ids = { SLIPKNOT } })[1]
        end

        local function set_in(ev, id)
            return find(ev.sets, id)
        end

        local function seat_now(ticket)
            return stream(sb, "Seats", { event = SLIPKNOT, tickets = { ticket } })[1]
        end

        it("a held seat is RESERVED until the order expires, counters follow", function()
            local before = slipknot()
            local a2 = set_in(before, SLIPKNOT_A2)
            assert.are.equal(a2.amount, a2.amount_vacant)

            local t0 = os.time()
            local code, order = rest(sb, "POST", "/v2/resources/orders",
                                     { tickets = { seat.ticket } })
            assert.are.equal(200, code, cjson.encode(order))

            local s = seat_now(seat.ticket)
            assert.are.equal("RESERVED", s.status)
            assert.is_string(s.ticket_reserved_till)
            local y, mo, d, h, mi, se = s.ticket_reserved_till:match(
                "^(%d+)-(%d+)-(%d+)T(%d+):(%d+):(%d+)Z$")
            assert.is_truthy(y)
            local till = os.time { year = y, month = mo, day = d, hour = h, min = mi, sec = se,
                                   isdst = false }
            -- os.time takes local time: turn the UTC fields into a Unix time.
            local utc_offset = os.time() - os.time(os.date("!*t"))
            till = till + utc_offset
            assert.is_true(till >= t0 + EXPIRE - 2 and till <= t0 + EXPIRE + 2,
                           "ticket_reserved_till " .. s.ticket_reserved_till)

            local reserved = stream(sb, "Seats", { event = SLIPKNOT, status = "RESERVED" })
            assert.are.same({ seat.ticket }, ids_of(reserved, "ticket"))
            local vacant = stream(sb, "Seats", { event = SLIPKNOT, status = "VACANT" })
            assert.are.equal(#catalog_seats(SLIPKNOT) - 1, #vacant)

            local after = slipknot()
            assert.are.equal(set_in(before, SLIPKNOT_A2).amount_vacant - 1,
                             set_in(after, SLIPKNOT_A2).amount_vacant)
            assert.are.equal(before.tickets_amount_vacant - 1, after.tickets_amount_vacant)
            assert.are.equal(before.tickets_amount, after.tickets_amount)

            -- The order expires: the seat is vacant again.
            sleep(EXPIRE + 1)
            s = seat_now(seat.ticket)
            assert.is_nil(s.status)
            assert.is_nil(s.ticket_reserved_till)
            assert.are.equal(before.tickets_amount_vacant, slipknot().tickets_amount_vacant)
        end)

        it("random tickets of a set without seats lower its amount_vacant", function()
            local before = set_in(slipknot(), SLIPKNOT_FAN)
            local code, order = rest(sb, "POST", "/v2/resources/orders",
                                     { event = SLIPKNOT, random = { [SLIPKNOT_FAN] = 3 } })
            assert.are.equal(200, code, cjson.encode(order))
            local after = set_in(slipknot(), SLIPKNOT_FAN)
            assert.are.equal(before.amount_vacant - 3, after.amount_vacant)
            assert.are.equal(before.amount, after.amount)
        end)

        it("a seat of a completed order is SOLD, with no reservation deadline", function()
            local sold = catalog_seats(SLIPKNOT)[4]
            local code, order = rest(sb, "POST", "/v2/resources/orders",
                                     { tickets = { sold.ticket } })
            assert.are.equal(200, code, cjson.encode(order))
            local id = order.data and order.data.id
            assert.is_string(id)
            code, order = rest(sb, "PATCH", "/v2/resources/orders/" .. id, {
                settings = { customer = { name = "Иван", email = "ivan@example.com",
                                          phone = "+79991234576", lang = "ru" } },
                status = "done",
            })
            assert.are.equal(200, code, cjson.encode(order))
            local s = seat_now(sold.ticket)
            assert.are.equal("SOLD", s.status)
            assert.is_nil(s.ticket_reserved_till)
            local got = stream(sb, "Seats", { event = SLIPKNOT, status = "SOLD" })
            assert.are.same({ sold.ticket }, ids_of(got, "ticket"))
        end)
    end)
end)

describe("tc-sandbox gRPC with a 100,000-seat event", function()
    local BIG_EVENT = "6a0000000000000000000001"
    local BIG_SET = "6a0000000000000000000002"
    local SEATS = 100000
    local big_catalog = os.tmpname()
    local sb

    -- examples/catalog.json with one more event: a seated set of SEATS tickets.
    local function write_big_catalog()
        local tickets = {}
        for i = 0, SEATS - 1 do
            tickets[#tickets + 1] = string.format(
                '{"id":"%024x","serial":"BIG","number":%d,' ..
                '"seat":{"sector":"6a0000000000000000000009","row":"%d","number":"%d"}}',
                0x6b0000000000 + i, i + 1, i // 100 + 1, i % 100 + 1)
        end
        local event = string.format(
            '{"id":"%s","name":"Big","status":"PUBLIC","org":"%s","venue":"%s",' ..
            '"lifetime":{"start":"2031-01-01T18:00:00Z","finish":"2031-01-01T21:00:00Z"},' ..
            '"timezone":"Europe/Moscow","deal":{"id":"6a0000000000000000000003",' ..
            '"org":{"units":90},"agent":{"units":5},"extra":{"units":10}},' ..
            '"sets":[{"id":"%s","name":"Big","with_seats":true,' ..
            '"rules":[{"id":"6a0000000000000000000004","simple":{"price":100000}}],' ..
            '"tickets":[%s]}]}',
            BIG_EVENT, CAT.events[1].org, CAT.events[1].venue, BIG_SET,
            table.concat(tickets, ","))
        local text = read_file(CATALOG)
        local n
        text, n = text:gsub('("events"%s*:%s*%[)', "%1" .. event:gsub("%%", "%%%%") .. ",", 1)
        assert.are.equal(1, n)
        write_file(big_catalog, text)
    end

    lazy_setup(function()
        write_big_catalog()
        sb = assert(sandbox.start { catalog = big_catalog })
    end)

    lazy_teardown(function()
        if sb then sb:stop() end
        os.remove(big_catalog)
    end)

    it("streams all the seats, and other calls are answered meanwhile", function()
        local out = os.tmpname()
        -- The long stream runs in the background, into a file.
        os.execute(client_argv(sb, "Seats", { event = BIG_EVENT }) .. " > " .. quote(out) ..
                   " 2>&1 &")
        -- Wait until it is streaming.
        local started = false
        for _ = 1, 100 do
            local f = io.open(out, "rb")
            local size = f and f:seek("end") or 0
            if f then f:close() end
            if size > 0 then
                started = true
                break
            end
            sleep(0.1)
        end
        assert.is_true(started, "the Seats stream did not start")

        -- A short call completes while the long stream is still running.
        local got = stream(sb, "Events", { ids = { BIG_EVENT } })
        assert.are.equal(1, #got)
        assert.are.equal(SEATS, got[1].sets[1].amount)
        assert.is_nil(read_file(out):find("\nstatus ", 1, true),
                      "the Seats stream ended before the Events call")

        -- The long stream ends complete.
        local text
        for _ = 1, 600 do
            text = read_file(out)
            if text:find("status ", 1, true) then break end
            sleep(0.1)
        end
        os.remove(out)
        local seats, status = parse_output(text)
        assert.are.equal("OK", status)
        assert.are.equal(SEATS, #seats)
        assert.are.equal("6b0000000000", seats[1].ticket:sub(-12))
        assert.are.equal(tostring(SEATS // 100), seats[SEATS].row)
        assert.are.equal("100", seats[SEATS].number)
    end)

    it("answers small calls at once beside Seats calls with a 2.5 MB ticket filter",
       function()
        -- Every ticket of the event in the filter, and status SOLD (none
        -- is sold): all the work is matching the filter. Matched by
        -- hashing, each such call takes a fraction of a second on a worker
        -- of its own, and the small calls beside them milliseconds. (When
        -- filters were matched by scanning, one such call took minutes and
        -- every other call waited behind it.)
        local ids = os.tmpname()
        local lines = {}
        for i = 0, SEATS - 1 do lines[#lines + 1] = ("%024x"):format(0x6b0000000000 + i) end
        write_file(ids, table.concat(lines, "\n") .. "\n")
        local argv = { PYTHON, "-u", "spec/interop/beside.py", "--gen", GEN, "--target", sb.grpc,
                       "--key", sb.key, "--event", BIG_EVENT, "--tickets", ids }
        for i = 1, #argv do argv[i] = quote(argv[i]) end
        local p = assert(io.popen(PLAIN_ENV .. table.concat(argv, " ") .. " 2>&1"))
        local out = p:read("a")
        p:close()
        os.remove(ids)
        local status, n, heavy = out:match("heavy %d+ (%u+) (%d+) ([%d.]+)")
        assert.are.equal("OK", status, out)
        assert.are.equal(0, tonumber(n), out)
        assert.is_true(tonumber(heavy) < HEAVY_BOUND_S, out)
        local max, during = out:match("small %d+ max ([%d.]+) median [%d.]+ during (%d+)")
        assert.is_truthy(max, out)
        assert.is_true(tonumber(during) > 0, "no small call overlapped a heavy one: " .. out)
        assert.is_true(tonumber(max) < SMALL_BOUND_MS, out)
    end)

    it("many calls at once all complete", function()
        local p = assert(io.popen(client_argv(sb, "Seats", { event = SLIPKNOT },
                                              { parallel = 8 }) .. " 2>&1"))
        local out = p:read("a")
        p:close()
        local done = 0
        for n, status in out:gmatch("messages (%d+) status (%u+)") do
            assert.are.equal("OK", status)
            assert.are.equal(#catalog_seats(SLIPKNOT), tonumber(n))
            done = done + 1
        end
        assert.are.equal(8, done, out)
    end)

    -- A background process holds the first and the last seat of the set in one
    -- order and cancels it, over and over: both change together, under one
    -- store lock. A listing is a snapshot of one moment, so it never shows
    -- them apart, although its filtering and packing run unlocked.
    local TOGGLER = [[
        local http, ltn12, cjson = require "socket.http", require "ltn12", require "cjson"
        local api, key, first, last, stop, count = ...
        local function call(method, path, body)
            local out = {}
            local _, code = http.request{ url = api .. path, method = method,
                headers = { authorization = "key " .. key, ["content-length"] = #body },
                source = ltn12.source.string(body), sink = ltn12.sink.table(out) }
            return code == 200 and cjson.decode(table.concat(out)) or nil
        end
        local n = 0
        while not io.open(stop) do
            local o = call("POST", "/v2/resources/orders", cjson.encode{ tickets = { first, last } })
            if not (o and call("PATCH", "/v2/resources/orders/" .. o.data.id,
                               '{"status": "cancelled"}')) then
                n = -1 -- the orders failed: the test fails
                break
            end
            n = n + 1
        end
        local f = assert(io.open(count, "w"))
        f:write(n)
        f:close()
    ]]

    it("lists the seats of one moment while orders change them", function()
        local tc = require "ticketscloud"
        local first = string.format("%024x", 0x6b0000000000)
        local last = string.format("%024x", 0x6b0000000000 + SEATS - 1)
        local stop, count, script = os.tmpname(), os.tmpname(), os.tmpname()
        os.remove(stop)
        write_file(script, TOGGLER)
        finally(function()
            write_file(stop, "") -- ends the background process, also when the test failed
            for _ = 1, 100 do
                if #read_file(count) > 0 then break end
                sleep(0.1)
            end
            os.remove(stop)
            os.remove(count)
            os.remove(script)
        end)
        os.execute(PLAIN_ENV .. "lua5.4 " .. table.concat({ quote(script), quote(sb.api),
            quote(sb.key), first, last, quote(stop), quote(count) }, " ") .. " &")
        local client = assert(tc.new { key = sb.key, api = sb.api, simple = sb.simple })
        local seen, listings = {}, 0
        repeat -- at least 40 listings, and both states seen (at most 2,000)
            listings = listings + 1
            local got = {}
            for seat in assert(client:seats { event = BIG_EVENT, tickets = { first, last } }) do
                got[#got + 1] = seat
            end
            assert.are.equal(2, #got)
            assert.are.equal(got[1].status, got[2].status)
            assert.are.equal(got[1].ticket_reserved_till, got[2].ticket_reserved_till)
            seen[got[1].status] = true
        until listings >= 2000 or (listings >= 40 and seen.VACANT and seen.RESERVED)
        client:close()
        write_file(stop, "")
        local n
        for _ = 1, 100 do
            n = tonumber(read_file(count))
            if n then break end
            sleep(0.1)
        end
        assert.is_true(n and n > 0, "the orders did not change")
        assert.is_true(seen.VACANT and seen.RESERVED, "the listings never saw both states")
    end)

    it("stops cleanly with a stream in flight", function()
        local out = os.tmpname()
        os.execute(client_argv(sb, "Seats", { event = BIG_EVENT }) .. " > " .. quote(out) ..
                   " 2>&1 &")
        for _ = 1, 100 do
            if #read_file(out) > 0 then break end
            sleep(0.1)
        end
        assert.is_true(#read_file(out) > 0, "the Seats stream did not start")
        local t0 = os.time()
        assert.is_true(sb:stop())
        sb = nil
        assert.is_true(os.time() - t0 <= 5, "stopping took too long")

        local text
        for _ = 1, 300 do
            text = read_file(out)
            if text:find("status ", 1, true) then break end
            sleep(0.1)
        end
        os.remove(out)
        local seats, status = parse_output(text)
        assert.are_not.equal("OK", status)
        assert.is_true(#seats < SEATS)
    end)
end)

-- examples/catalog.json with extra entities put first in their lists.
local function catalog_with(extra)
    local text = read_file(CATALOG)
    for key, json in pairs(extra) do
        local n
        text, n = text:gsub('("' .. key .. '"%s*:%s*%[)', function(open)
            return open .. json .. ","
        end, 1)
        assert(n == 1, "no list " .. key .. " in " .. CATALOG)
    end
    local path = os.tmpname()
    write_file(path, text)
    return path
end

describe("tc-sandbox gRPC reads the catalog's proto3 JSON", function()
    local MAP = "6a00000000000000000000a1"
    local META = "6a00000000000000000000b1"
    local EVENT = "6a00000000000000000000c1"
    local sb, path

    lazy_setup(function()
        path = catalog_with {
            countries = '{"id": "XA", "name": "Тестовия", "isoNumeric": 999, ' ..
                        '"a_future_field": {"x": [1, 2]}}',
            cities = '{"id": 777, "name": "Ёлкино", "country": "XA", ' ..
                     '"population": "9007199254740993", ' ..
                     '"coordinates": {"longitude": "1.5", "latitude": -2}}',
            maps = '{"id": "' .. MAP .. '", "name": "Схема", "venue": "' .. CAT.venues[1].id ..
                   '", "svg": {"main": "<svg/>", "small": "<svg width=\\"1\\"/>"}, ' ..
                   '"sectors": [{"id": "s1", "name": "Партер", "with_seats": true}], ' ..
                   '"seats": [{"sector": "s1", "row": "1", "number": "1", ' ..
                   '"point": {"x": -5, "y": 7, "r": 3}}]}',
            meta_events = '{"id": "' .. META .. '", "name": "Группа", ' ..
                          '"first_start": "2030-12-30T19:00:00.25+03:00", ' ..
                          '"last_finish": "2030-12-31T23:59:59.123456789Z", ' ..
                          '"additional": {"@type": "type.googleapis.com/x.Y"}}',
            events = '{"id": "' .. EVENT .. '", "name": "Без сделки", "status": "PUBLIC", ' ..
                     '"org": "' .. CAT.events[1].org .. '", "venue": "' .. CAT.events[1].venue ..
                     '", "timezone": "Europe/Moscow", ' ..
                     '"lifetime": {"start": "2031-02-01T20:00:00+03:00", ' ..
                     '"finish": "2031-02-01T23:00:00+03:00"}, ' ..
                     '"org_extra": {"units": 4, "nanos": 500000000}, ' ..
                     '"legal_ru": {"type": "IP", "ogrnip": "304500116000157", ' ..
                     '"ip": "IP_NPD", "vat_rate": 0}, ' ..
                     '"smart_tickets": 2, "sets": []}',
        }
        sb = assert(sandbox.start { catalog = path })
    end)

    lazy_teardown(function()
        if sb then assert.is_true(sb:stop()) end
        os.remove(path)
    end)

    it("lowerCamelCase names, unknown keys ignored", function()
        local c = stream(sb, "Countries", { ids = { "XA" } })[1]
        assert.are.same({ id = "XA", name = "Тестовия", iso_numeric = 999 }, c)
    end)

    it("64-bit integers and doubles given as strings, exactly", function()
        local c = stream(sb, "Cities", { ids = { 777 } })[1]
        assert.are.equal(777, c.id)
        assert.are.equal("9007199254740993", c.population)
        assert.are.same({ longitude = 1.5, latitude = -2 }, c.coordinates)
    end)

    it("Cities suggest folds Ё and ё", function()
        assert.are.same({ 777 }, ids_of(stream(sb, "Cities", { suggest = "ЁЛК" })))
        assert.are.same({ 777 }, ids_of(stream(sb, "Cities", { name = "ёлкино" })))
    end)

    it("map<string,string>, nested messages, negative int32", function()
        local m = stream(sb, "Maps", { ids = { MAP } })[1]
        assert.are.same({ main = "<svg/>", small = '<svg width="1"/>' }, m.svg)
        assert.are.same({ { id = "s1", name = "Партер", with_seats = true } }, m.sectors)
        assert.are.same({ x = -5, y = 7, r = 3 }, m.seats[1].point)
    end)

    it("Timestamps with offsets and fractions; Any left unset", function()
        local e = stream(sb, "MetaEvents", { ids = { META } })[1]
        assert.are.equal("2030-12-30T16:00:00.250Z", e.first_start)
        assert.are.equal("2030-12-31T23:59:59.123456789Z", e.last_finish)
        assert.is_nil(e.additional)
    end)

    it("enums by number and by name, oneofs, optional fields sent when zero", function()
        -- smart_tickets and vat_rate are given as numbers, legal_ru.type by name
        local e = stream(sb, "Events", { ids = { EVENT } })[1]
        assert.are.equal("PUBLIC", e.status)
        assert.are.equal("ANY", e.smart_tickets)
        assert.are.equal("2031-02-01T17:00:00Z", e.lifetime.start)
        assert.is_nil(e.deal)
        assert.are.same({ units = 4, nanos = 500000000 }, e.org_extra)
        assert.are.same({ type = "IP", ogrnip = "304500116000157", ip = "IP_NPD",
                          vat_rate = "VAT_0" }, e.legal_ru)
        assert.is_nil(e.sets)
        assert.is_nil(e.tickets_amount)
    end)

    it("the lifetime filter compares instants, whatever the offset was", function()
        local got = stream(sb, "Events", { lifetime = { start = {
            gte = "2031-02-01T17:00:00Z", lte = "2031-02-01T20:00:00+03:00" } } })
        assert.are.same({ EVENT }, ids_of(got))
    end)
end)

describe("tc-sandbox gRPC refuses a catalog entity that does not fit its message", function()
    local BIN = os.getenv("TC_SANDBOX") or "build/tc-sandbox"

    -- A catalog error like those of the loader (docs/sandbox-catalog.md): one
    -- line naming the file and the entry, exit status 2, nothing listening.
    local function refused(extra, pattern)
        local path = catalog_with(extra)
        local p = assert(io.popen("timeout 20 " .. quote(BIN) .. " --catalog " .. quote(path) ..
                                  " --http 127.0.0.1:0 --grpc 127.0.0.1:0 2>&1; echo \"exit $?\""))
        local out = p:read("a")
        p:close()
        os.remove(path)
        local line = out:match("^(tc%-sandbox: [^\n]*)\nexit 2\n$")
        assert.is_string(line, "not refused with one line and status 2:\n" .. out)
        assert.are.equal("tc-sandbox: catalog " .. path .. ": ", line:sub(1, #path + 22))
        assert.matches("^" .. pattern, line:sub(#path + 23))
    end

    it("a string where an integer belongs", function()
        refused({ countries = '{"id": "XB", "iso_numeric": "many"}' },
                'countries%[0%]: iso_numeric: "many" is not an unsigned integer')
    end)

    it("an integer out of range", function()
        refused({ cities = '{"id": 4294967296, "name": "x"}' },
                "cities%[0%]: id: 4294967296 is out of range")
    end)

    it("a date-time that is not RFC 3339", function()
        refused({ meta_events = '{"id": "x", "first_start": "2030-02-30T00:00:00Z"}' },
                "meta_events%[0%]: first_start: expected an RFC 3339 date%-time")
    end)

    it("a string where a bool belongs, deep down", function()
        refused({ maps = '{"id": "x", "sectors": [{"id": "s", "with_seats": "yes"}]}' },
                "maps%[0%]: sectors%[0%]%.with_seats: expected true or false")
    end)

    local function event(fields)
        return '{"id": "6a00000000000000000000d1", "name": "x", "org": "' .. CAT.events[1].org ..
            '", "venue": "' .. CAT.events[1].venue .. '", "timezone": "Europe/Moscow", ' ..
            '"lifetime": {"start": "2031-02-01T20:00:00Z", "finish": "2031-02-01T23:00:00Z"}, ' ..
            '"sets": [], ' .. fields .. '}'
    end

    it("an unknown enum name", function()
        refused({ events = event('"smart_tickets": "SOMETIMES"') },
                'events%[0%]: smart_tickets: "SOMETIMES" is not a value of ' ..
                'v3%.Event%.SmartTicketSetting')
    end)

    it("two members of one oneof", function()
        refused({ events = event('"deal": {"id": "d"}, "org_extra": {"units": 1}') },
                "events%[0%]: .*: more than one member of a oneof")
    end)

    it("one member of a oneof twice, by its name and its lowerCamelCase name", function()
        refused({ events = event('"org_extra": {"units": 1}, "orgExtra": {"units": 2}') },
                "events%[0%]: org_extra: field given twice")
        refused({ events = event('"legal_ru": {"inn": "1"}, "legalRu": {"inn": "2"}') },
                "events%[0%]: legal_ru: field given twice")
    end)
end)

describe("tc-sandbox serves the catalogs of tools/gen-catalog.lua", function()
    it("--seats 0: an arena without seats, its map without a seat list", function()
        local path = os.tmpname()
        assert(os.execute(PLAIN_ENV .. "lua5.4 tools/gen-catalog.lua --seats 0 --stock 5 " ..
                          "--events 1 --out " .. quote(path)))
        local doc = cjson.decode(read_file(path))
        local sb = sandbox.start { catalog = path }
        finally(function()
            if sb then sb:stop() end
            os.remove(path)
        end)
        assert.is_truthy(sb, "the sandbox refused the catalog")
        local maps = stream(sb, "Maps", {})
        assert.are.equal(1, #maps)
        assert.is_nil(maps[1].seats)
        assert.are.same({ "Танцпол" }, ids_of(maps[1].sectors, "name"))
        local events = stream(sb, "Events", {})
        assert.are.same(ids_of(doc.events), ids_of(events))
        local arena = events[1]
        assert.are.equal(1, #arena.sets)
        assert.is_false(arena.sets[1].with_seats or false)
        assert.are.equal(5, arena.sets[1].amount)
        assert.are.same({}, stream(sb, "Seats", { event = arena.id }))
    end)
end)
