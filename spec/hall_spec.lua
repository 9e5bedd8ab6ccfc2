-- hall_spec: the picture of the demo hall (seating.svg) against a real
-- sandbox: after orders sell and hold seats, the SVG's seats of each status
-- are those the Seats method lists, every sector of the example catalog's
-- maps is drawn in the hall, and docs/hall.svg is what `make hall` draws.
local tc = require "ticketscloud"
local seating = require "ticketscloud.seating"
local sandbox = require "ticketscloud.sandbox"

local SLIPKNOT = "5d7134962110d30a34e95b96"
local NUTCRACKER = "5dcbd3a1b2c3d4e5f6a7b8d0"
local FAN_ZONE = "5a8dd58e6e55b2064c67c145"
local SEAT = "5d7134962110d30a34e95cfe"   -- the order example's seat, row 2 seat 14

local function all(stream)
    local t = {}
    for item in stream do t[#t + 1] = item end
    assert(not stream:error(), tostring(stream:error()))
    return t
end

-- The seat circles of an SVG by status, the selected ones apart.
local function circles(svg)
    local counts = {}
    for status, rest in svg:gmatch('<circle class="seat (%a+)([^"]*)"') do
        counts[status] = (counts[status] or 0) + 1
        if rest == " selected" then counts.selected = (counts.selected or 0) + 1 end
    end
    return counts
end

local LUA = arg and arg[-1] or "lua5.4" -- the interpreter running the specs

local function quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local STATUS = { VACANT = "vacant", RESERVED = "reserved", SOLD = "sold" }

describe("the demo hall", function()
    local sb, client

    setup(function()
        sb = assert(sandbox.start{ log = "/dev/null" })
        client = assert(tc.new{ key = sb.key, api = sb.api, simple = sb.simple })
    end)

    teardown(function()
        client:close()
        assert.is_true(sb:stop())
    end)

    local function hall(id)
        local event = assert(all(assert(client:events{ ids = { id } }))[1])
        local map = assert(all(assert(client:maps{ ids = { event.map } }))[1])
        return event, map, all(assert(client:seats{ event = id }))
    end

    it("draws as many seats of each status as Seats lists", function()
        local event, map, seats = hall(SLIPKNOT)
        -- Sell the best block of three; hold a pair and the order example's seat.
        local best = assert(seating.adjacent(seats, 3, { map = map, event = event }))[1]
        assert.equal(297000, best.price)
        local sold = assert(client:create_order{ tickets = best.tickets })
        assert(sold:finish())
        local pair = assert(seating.adjacent(seats, 2, { map = map, near = { x = 130, y = 550 } }))[1]
        assert.same({ "1", "2" }, pair.numbers)
        assert(client:create_order{ tickets = { pair.tickets[1], pair.tickets[2], SEAT } })

        event, map, seats = hall(SLIPKNOT)
        local want = {}
        for _, s in ipairs(seats) do
            want[STATUS[s.status]] = (want[STATUS[s.status]] or 0) + 1
        end
        assert.same({ vacant = 94, reserved = 3, sold = 3 }, want)
        local next_best = assert(seating.adjacent(seats, 2, { map = map, event = event }))[1]
        local svg = seating.svg(map, seats, { event = event, selected = next_best.tickets })
        local got = circles(svg)
        assert.equal(2, got.selected)
        got.selected = nil
        assert.same(want, got)
        -- The legend says the same, the selected ones apart.
        assert.matches('data%-status="vacant" data%-count="' .. (want.vacant - 2) .. '"', svg)
        assert.matches('data%-status="sold" data%-count="3"', svg)
        -- The standing zone's free count is the event's.
        local free
        for _, set in ipairs(event.sets) do
            if set.sector == FAN_ZONE then free = set.amount_vacant end
        end
        assert.matches('data%-sector="' .. FAN_ZONE .. '" data%-free="' .. free .. '"', svg)
        assert.matches("A2 · 990.00 · " .. want.vacant .. " free", svg, 1, true)
    end)

    it("places every sector of the example catalog's maps in the hall", function()
        for _, id in ipairs{ SLIPKNOT, NUTCRACKER } do
            local event, map, seats = hall(id)
            local svg = seating.svg(map, seats, { event = event })
            for _, sector in ipairs(map.sectors) do
                assert.matches('class="sector[^"]*" data%-sector="' .. sector.id .. '"', svg)
            end
            assert.is_nil(svg:find("zone below", 1, true), id)
            assert.is_nil(svg:find("not on the map", 1, true), id)
            assert.matches('class="landmark"', svg)
        end
    end)

    it("is an SVG rsvg-convert reads, when it is installed", function()
        local p = io.popen("command -v rsvg-convert")
        local found = p:read("a")
        p:close()
        if found == "" then return end
        local event, map, seats = hall(SLIPKNOT)
        local path = os.tmpname()
        local f = assert(io.open(path, "w"))
        f:write(seating.svg(map, seats, { event = event }))
        f:close()
        p = io.popen("env -u LD_PRELOAD rsvg-convert -f png " .. path .. " 2>&1")
        local png = p:read("a")
        p:close()
        os.remove(path)
        assert.equal("\137PNG", png:sub(1, 4))
    end)

    it("docs/hall.svg is what make hall draws now (tools/hall.lua with tc)", function()
        local tmp = os.tmpname()
        local path = tmp .. ".svg"
        local p = io.popen(("env LUA_PATH=%s LUA_CPATH=%s timeout 120 %s tools/hall.lua %s 2>&1")
            :format(quote(package.path), quote(package.cpath), LUA, quote(path)))
        local out = p:read("a")
        p:close()
        local f = io.open(path, "r")
        local drawn = f and f:read("a")
        if f then f:close() end
        os.remove(path)
        os.remove(tmp)
        assert.matches("^wrote ", out)
        local committed = assert(io.open("docs/hall.svg", "r"))
        assert.is_true(drawn == committed:read("a"),
                       "docs/hall.svg is not what tools/hall.lua draws: run make hall")
        committed:close()
        -- The picture shows each status, the selection and the standing zones.
        for _, class in ipairs{ "seat vacant", "seat reserved", "seat sold", " selected" } do
            assert.truthy(drawn:find(class, 1, true), class)
        end
        assert.matches("Фан зона", drawn, 1, true)
    end)
end)
