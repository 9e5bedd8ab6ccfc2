#!/usr/bin/env lua5.4
-- gen-catalog.lua: writes a big tc-sandbox catalog for benchmarks.
--
--   lua5.4 tools/gen-catalog.lua --seats 100000 > /tmp/big.json
--   tc-sandbox --catalog /tmp/big.json
--
-- One arena event holds --seats seated tickets (set "Арена", sectors of
-- --rows x --per-row seats, plus the map entry with every seat's
-- coordinates), an unseated set with --stock tickets, and --events more
-- small events so that listings are long too. Ids are deterministic: the
-- same options always give the same file. The format is docs/sandbox-catalog.md.

local cjson = require "cjson"

local USAGE = [[
Usage: lua5.4 tools/gen-catalog.lua [--seats N] [--per-row N] [--rows N]
                                    [--stock N] [--events N] [--out FILE]
  --seats N    seated tickets in the arena event (default 100000)
  --per-row N  seats per row (default 50)
  --rows N     rows per sector (default 40)
  --stock N    unseated tickets in the arena's dance floor set (default 10000)
  --events N   additional small events (default 20)
  --out FILE   write there instead of stdout
]]

local opts = { seats = 100000, ["per-row"] = 50, rows = 40, stock = 10000, events = 20 }
do
    local i = 1
    while i <= #arg do
        local name = arg[i]:match("^%-%-(.+)$")
        if name == "help" then
            io.stdout:write(USAGE)
            os.exit(0)
        end
        local value = arg[i + 1]
        if not name or value == nil or (name ~= "out" and opts[name] == nil) then
            io.stderr:write("gen-catalog: bad argument '", tostring(arg[i]), "'\n", USAGE)
            os.exit(2)
        end
        if name == "out" then
            opts.out = value
        else
            opts[name] = math.tointeger(tonumber(value))
            if not opts[name] or opts[name] < 0 then
                io.stderr:write("gen-catalog: --", name, " wants a whole number\n")
                os.exit(2)
            end
        end
        i = i + 2
    end
    if opts["per-row"] < 1 or opts.rows < 1 then
        io.stderr:write("gen-catalog: --per-row and --rows must be at least 1\n")
        os.exit(2)
    end
end

-- Ids: 24 lower-case hex digits, a kind tag then a counter, never reused.
local counters = {}
local function id(kind)
    counters[kind] = (counters[kind] or 0) + 1
    return string.format("%08x%016x", kind, counters[kind])
end
local K_PARTNER, K_VENUE, K_MAP, K_SECTOR, K_EVENT, K_SET, K_TICKET, K_RULE, K_MISC =
    0x6a000001, 0x6a000002, 0x6a000003, 0x6a000004, 0x6a000005, 0x6a000006, 0x6a000007,
    0x6a000008, 0x6a000009

local ORG, DISTRIBUTOR = id(K_PARTNER), id(K_PARTNER)
local VENUE, MAP = id(K_VENUE), id(K_MAP)
local CATEGORY, TAG, ARTIST = id(K_MISC), id(K_MISC), id(K_MISC)

local function pct(units) return { units = units, nanos = 0 } end
local function rule(price) return { id = id(K_RULE), simple = { price = price } } end

local catalog = {
    distributor = DISTRIBUTOR,
    partners = { { id = ORG, name = "Big Arena Promo" }, { id = DISTRIBUTOR, name = "Benchmark Agent" } },
    countries = { { id = "RU", name = "Россия", currency = "RUB", iso = "RU", iso3 = "RUS",
                    iso_numeric = 643 } },
    cities = { { id = 524901, name = "Москва", country = "RU", timezone = "Europe/Moscow",
                 coordinates = { longitude = 37.6156, latitude = 55.7522 }, population = 12506468 } },
    venues = { { id = VENUE, name = "Big Arena", city = 524901, address = "Арена, 1" } },
    artists = { { id = ARTIST, name = "Benchmark Band" } },
    categories = { { id = CATEGORY, name = "Концерты" } },
    tags = { { id = TAG, category = CATEGORY, name = "Рок" } },
    maps = {},
    events = {},
}

-- The arena: seats fill sector after sector, row after row.
local per_sector = opts.rows * opts["per-row"]
local sectors, map_seats, tickets = {}, {}, {}
local sector
for n = 0, opts.seats - 1 do
    local s = n // per_sector
    if n % per_sector == 0 then
        sector = id(K_SECTOR)
        sectors[#sectors + 1] = { id = sector, name = "Сектор " .. (s + 1), with_seats = true }
    end
    local in_sector = n % per_sector
    local row = in_sector // opts["per-row"] + 1
    local seat = in_sector % opts["per-row"] + 1
    tickets[#tickets + 1] = { id = id(K_TICKET), serial = "ARN", number = n + 1,
                              seat = { sector = sector, row = tostring(row), number = tostring(seat) } }
    map_seats[#map_seats + 1] = { sector = sector, row = tostring(row), number = tostring(seat),
                                  point = { x = (s % 10) * 1000 + seat * 18,
                                            y = (s // 10) * 1000 + row * 22, r = 8 } }
end
local FLOOR = id(K_SECTOR)
sectors[#sectors + 1] = { id = FLOOR, name = "Танцпол", with_seats = false }
-- (lua-cjson writes an empty table as {}, so an empty list is left out.)
catalog.maps[1] = { id = MAP, name = "Big Arena", venue = VENUE, sectors = sectors,
                    seats = #map_seats > 0 and map_seats or nil,
                    svg = { default = "<svg xmlns=\"http://www.w3.org/2000/svg\"/>" } }

local arena_sets = {}
if opts.seats > 0 then
    arena_sets[#arena_sets + 1] = { id = id(K_SET), name = "Арена", pos = 0, with_seats = true,
                                    rules = { rule(250000) }, tickets = tickets }
end
arena_sets[#arena_sets + 1] = { id = id(K_SET), name = "Танцпол", pos = 1, sector = FLOOR, with_seats = false,
                                rules = { rule(400000) },
                                stock = { count = opts.stock, serial = "DNC", first_number = 1 } }
catalog.events[1] = {
    id = id(K_EVENT), name = "Benchmark Arena Show", status = "PUBLIC", org = ORG, venue = VENUE, map = MAP,
    lifetime = { start = "2030-07-01T17:00:00Z", finish = "2030-07-01T21:00:00Z" },
    category = CATEGORY, tags = { TAG }, artists = { ARTIST }, age_rating = "12",
    deal = { id = id(K_MISC), org = pct(90), agent = pct(5), extra = pct(10) },
    timezone = "Europe/Moscow", sets = arena_sets,
}

for e = 1, opts.events do
    catalog.events[#catalog.events + 1] = {
        id = id(K_EVENT), name = "Small show " .. e, status = e % 5 == 0 and "STAND_BY" or "PUBLIC",
        org = ORG, venue = VENUE,
        lifetime = { start = string.format("2030-08-%02dT17:00:00Z", e % 28 + 1),
                     finish = string.format("2030-08-%02dT20:00:00Z", e % 28 + 1) },
        category = CATEGORY, tags = { TAG }, age_rating = "0",
        deal = { id = id(K_MISC), org = pct(90), agent = pct(5), extra = pct(4) },
        timezone = "Europe/Moscow",
        sets = { { id = id(K_SET), name = "Входной", pos = 0, with_seats = false,
                   rules = { rule(100000 + e * 100) },
                   stock = { count = 100, serial = "SML", first_number = 1 } } },
    }
end

local text = cjson.encode(catalog)
if opts.out then
    local f = assert(io.open(opts.out, "w"))
    f:write(text, "\n")
    f:close()
else
    io.stdout:write(text, "\n")
end
