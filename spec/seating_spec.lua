-- seating_spec: ticketscloud.seating on hand-made halls, no I/O: natural
-- order, rows, blocks of adjacent seats (gaps, aisles, unnumbered seats,
-- filters, ranking) and the prices of sets.
local seating = require "ticketscloud.seating"
local tc = require "ticketscloud"

local SECTOR = "5a8dd58e6e55b2064c67c144"
local BALCONY = "5a8dd58e6e55b2064c67c199"
local SET = "5d71353b2110d30a34e97e31"
local CHEAP = "5d71353b2110d30a34e97e32"

local serial = 0
-- A seat as client:seats{} gives it: every field filled, status by name.
local function seat(row, number, status, sector, set)
    serial = serial + 1
    return { sector = sector or SECTOR, row = row, number = number, event = "e", set = set or SET,
             ticket = ("%024x"):format(serial), status = status or "VACANT" }
end

-- A row of seats numbered first..last; statuses by number.
local function row_of(row, first, last, statuses, sector, set)
    local t = {}
    for n = first, last do
        t[#t + 1] = seat(row, tostring(n), statuses and statuses[n], sector, set)
    end
    return t
end

local function concat(...)
    local out = {}
    for _, list in ipairs{ ... } do
        for _, v in ipairs(list) do out[#out + 1] = v end
    end
    return out
end

-- Shuffled deterministically, as the service may stream them.
local function shuffled(list)
    local out = {}
    for i = #list, 1, -1 do
        if i % 2 == 1 then out[#out + 1] = list[i] end
    end
    for i = 2, #list, 2 do out[#out + 1] = list[i] end
    return out
end

-- "row:n,n" of each block, in order.
local function describe_blocks(blocks)
    local out = {}
    for _, b in ipairs(blocks) do out[#out + 1] = b.row .. ":" .. table.concat(b.numbers, ",") end
    return out
end

-- A map placing seats: row r at y = 100 * r, seat n at x = 30 * n, plus
-- `extra` added to x from the given number on (an aisle).
local function map_of(seats, aisle_from, extra)
    local m = { id = "m", sectors = { { id = SECTOR, name = "A2", with_seats = true },
                                      { id = BALCONY, name = "Балкон", with_seats = true } },
                seats = {} }
    for _, s in ipairs(seats) do
        local n = tonumber(s.number)
        if n then
            local x = 30 * n + ((aisle_from and n >= aisle_from) and extra or 0)
            m.seats[#m.seats + 1] = { sector = s.sector, row = s.row, number = s.number,
                                      point = { x = x, y = 100 * tonumber(s.row), r = 12 } }
        end
    end
    return m
end

describe("seating.less: natural order of labels", function()
    it("numbers by value, text by bytes, the empty label last", function()
        local labels = { "10", "9", "2", "", "1a", "1", "01", "B", "A", "10b", "10a", "100" }
        table.sort(labels, seating.less)
        assert.same({ "01", "1", "1a", "2", "9", "10", "10a", "10b", "100", "A", "B", "" }, labels)
    end)

    it("is a strict order", function()
        assert.is_false(seating.less("5", "5"))
        assert.is_false(seating.less("", ""))
        assert.is_true(seating.less("1", "01") ~= seating.less("01", "1"))
        assert.has_error(function() seating.less(1, "2") end)
    end)
end)

describe("seating.rows", function()
    it("groups by sector and row, in natural order, unnumbered seats last", function()
        local seats = shuffled(concat(row_of("10", 1, 3), row_of("2", 8, 11), row_of("1", 1, 2),
                                      { seat("1", "") }, row_of("1", 1, 2, nil, BALCONY)))
        local rows = seating.rows(seats)
        local got = {}
        for _, r in ipairs(rows) do
            local numbers = {}
            for _, s in ipairs(r.seats) do numbers[#numbers + 1] = s.number end
            got[#got + 1] = r.sector:sub(-3) .. "/" .. r.row .. ":" .. table.concat(numbers, ",")
        end
        assert.same({ "144/1:1,2,", "144/2:8,9,10,11", "144/10:1,2,3", "199/1:1,2" }, got)
    end)

    it("orders sectors as the map lists them", function()
        local seats = concat(row_of("1", 1, 1), row_of("1", 1, 1, nil, BALCONY))
        local map = { sectors = { { id = BALCONY }, { id = SECTOR } } }
        assert.equal(BALCONY, seating.rows(seats, { map = map })[1].sector)
        assert.equal(SECTOR, seating.rows(seats)[1].sector)
    end)

    it("keeps the seats given, and takes an empty list", function()
        local s = seat("1", "1")
        assert.equal(s, seating.rows({ s })[1].seats[1])
        assert.same({}, seating.rows({}))
    end)
end)

describe("seating.adjacent", function()
    it("finds every run of n vacant seats with numbers that follow each other", function()
        -- Row 1: 1 2 3 4 5 6, with 3 sold; row 2: 1 2 4 5 (no seat 3: a gap).
        local seats = shuffled(concat(row_of("1", 1, 6, { [3] = "SOLD" }),
                                      row_of("2", 1, 2), row_of("2", 4, 5)))
        local blocks = assert(seating.adjacent(seats, 2))
        local got = describe_blocks(blocks)
        table.sort(got)
        assert.same({ "1:1,2", "1:4,5", "1:5,6", "2:1,2", "2:4,5" }, got)
        for _, b in ipairs(blocks) do
            assert.equal(2, #b.tickets)
            assert.equal(b.seats[1].ticket, b.tickets[1])
            assert.equal(SECTOR, b.sector)
        end
        assert.same({ "1:4,5,6" }, describe_blocks(assert(seating.adjacent(seats, 3))))
        assert.same({}, assert(seating.adjacent(seats, 4)))
    end)

    it("reserved and sold seats break a block; rows numbered as strings", function()
        local seats = row_of("12", 8, 12, { [10] = "RESERVED" })
        assert.same({ "12:8,9", "12:11,12" }, describe_blocks(assert(seating.adjacent(seats, 2))))
    end)

    it("without a map ranks the middle of the row first, then the earlier row", function()
        -- Rows 1 and 2 of seats 1..10: the middle is between 5 and 6.
        local seats = shuffled(concat(row_of("2", 1, 10), row_of("1", 1, 10)))
        local blocks = assert(seating.adjacent(seats, 2, { limit = 5 }))
        assert.same({ "1:5,6", "2:5,6", "1:4,5", "1:6,7", "2:4,5" }, describe_blocks(blocks))
        assert.equal(0, blocks[1].distance)
        -- The middle of the row counts every seat of it, sold ones too.
        seats = row_of("1", 1, 10, { [1] = "SOLD", [2] = "SOLD", [3] = "SOLD" })
        assert.same({ "1:5,6" }, describe_blocks(assert(seating.adjacent(seats, 2, { limit = 1 }))))
    end)

    it("unnumbered seats are blocks of one only", function()
        local seats = { seat("1", ""), seat("1", "7a"), seat("1", "1"), seat("1", "2") }
        assert.same({ "1:1,2" }, describe_blocks(assert(seating.adjacent(seats, 2))))
        local ones = describe_blocks(assert(seating.adjacent(seats, 1)))
        table.sort(ones)
        assert.same({ "1:", "1:1", "1:2", "1:7a" }, ones)
    end)

    it("an aisle on the map cuts a row although the numbers follow", function()
        -- Seats 1..8, with an aisle of 60 between 4 and 5.
        local seats = row_of("1", 1, 8)
        local map = map_of(seats, 5, 60)
        local got = describe_blocks(assert(seating.adjacent(seats, 4, { map = map })))
        table.sort(got)
        assert.same({ "1:1,2,3,4", "1:5,6,7,8" }, got)
        -- Without the map the numbers decide.
        assert.equal(5, #assert(seating.adjacent(seats, 4)))
        -- A given aisle width overrides the row's spacing.
        assert.equal(5, #assert(seating.adjacent(seats, 4, { map = map, aisle = 100 })))
    end)

    it("with a map ranks the centre of the sector's seats first, or the point given", function()
        -- Rows 1..3 of seats 1..9: the centre is row 2, seat 5.
        local seats = concat(row_of("1", 1, 9), row_of("2", 1, 9), row_of("3", 1, 9))
        local map = map_of(seats)
        local best = assert(seating.adjacent(seats, 3, { map = map }))[1]
        assert.equal("2:4,5,6", describe_blocks({ best })[1])
        assert.equal(0, best.distance)
        -- Near seat 1 of row 3.
        best = assert(seating.adjacent(seats, 3, { map = map, near = { x = 0, y = 300 } }))[1]
        assert.equal("3:1,2,3", describe_blocks({ best })[1])
        -- Seats the map does not place rank after those it does.
        local extra = row_of("9", 1, 2)
        local blocks = assert(seating.adjacent(concat(seats, extra), 2, { map = map }))
        assert.equal("9:1,2", describe_blocks(blocks)[#blocks])
    end)

    it("the ranking is the same whatever order the seats come in", function()
        local seats = concat(row_of("1", 1, 9), row_of("2", 1, 9))
        local a = describe_blocks(assert(seating.adjacent(seats, 2, { map = map_of(seats) })))
        local b = describe_blocks(assert(seating.adjacent(shuffled(seats), 2, { map = map_of(seats) })))
        assert.same(a, b)
        assert.same(describe_blocks(assert(seating.adjacent(seats, 2))),
                    describe_blocks(assert(seating.adjacent(shuffled(seats), 2))))
    end)

    it("filters by sector (id or the map's name) and set (id or the event's name)", function()
        local seats = concat(row_of("1", 1, 3), row_of("1", 1, 3, nil, BALCONY, CHEAP))
        local map = map_of(seats)
        local event = { sets = { { id = SET, name = "A2" }, { id = CHEAP, name = "Балкон" } } }
        local function sectors_of(blocks)
            local t = {}
            for _, b in ipairs(blocks) do t[b.sector] = true end
            return t
        end
        assert.same({ [BALCONY] = true },
                    sectors_of(assert(seating.adjacent(seats, 2, { sector = BALCONY }))))
        assert.same({ [BALCONY] = true },
                    sectors_of(assert(seating.adjacent(seats, 2, { sector = "Балкон", map = map }))))
        assert.same({ [SECTOR] = true, [BALCONY] = true },
                    sectors_of(assert(seating.adjacent(seats, 2, { sector = { "A2", BALCONY }, map = map }))))
        assert.same({ [SECTOR] = true }, sectors_of(assert(seating.adjacent(seats, 2, { set = SET }))))
        assert.same({ [BALCONY] = true },
                    sectors_of(assert(seating.adjacent(seats, 2, { set = "Балкон", event = event }))))
        assert.same({}, assert(seating.adjacent(seats, 2, { sector = "nowhere" })))
    end)

    it("filters by price per seat and gives each block its price in minor units", function()
        local seats = concat(row_of("1", 1, 3), row_of("2", 1, 3, nil, SECTOR, CHEAP))
        local event = { sets = { { id = SET, rules = { { simple = { price = 99000 } } } },
                                 { id = CHEAP, rules = { { simple = { price = 50000 } } } } } }
        local blocks = assert(seating.adjacent(seats, 3, { event = event }))
        assert.equal(2, #blocks)
        local by_row = {}
        for _, b in ipairs(blocks) do by_row[b.row] = b.price end
        assert.same({ ["1"] = 297000, ["2"] = 150000 }, by_row)
        assert.equal("2970.00", tc.money.format(by_row["1"]))
        for _, max in ipairs{ "500.00", 50000, "989.99" } do
            blocks = assert(seating.adjacent(seats, 3, { event = event, max_price = max }))
            assert.same({ "2:1,2,3" }, describe_blocks(blocks))
        end
        assert.equal(2, #assert(seating.adjacent(seats, 3, { event = event, max_price = "990" })))
        -- Without the event there are no prices.
        assert.is_nil(assert(seating.adjacent(seats, 3))[1].price)
    end)

    it("refuses option values it cannot use with nil, err; raises for argument types", function()
        local seats = row_of("1", 1, 3)
        local cases = {
            { { max_price = "cheap", event = {} }, "max_price" },
            { { max_price = 1.5, event = {} }, "max_price" },
            { { max_price = 100 }, "needs opts.event" },
            { { near = { x = 1 } }, "near" },
            { { aisle = -1 }, "aisle" },
            { { sector = 5 }, "sector" },
        }
        for _, case in ipairs(cases) do
            local blocks, err = seating.adjacent(seats, 2, case[1])
            assert.is_nil(blocks)
            assert.equal("invalid", err.kind)
            assert.matches(case[2], tostring(err), 1, true)
        end
        assert.has_error(function() seating.adjacent(seats, 0) end)
        assert.has_error(function() seating.adjacent(seats, 1.5) end)
        assert.has_error(function() seating.adjacent(seats, "2") end)
        assert.has_error(function() seating.adjacent("seats", 2) end)
    end)
end)

describe("seating.prices", function()
    local NOW = 1900000000
    it("takes the first rule whose lifetime holds now, else the last", function()
        local function rule(price, start, finish)
            local lifetime = (start or finish) and { start = start, finish = finish } or nil
            return { lifetime = lifetime, simple = { price = price } }
        end
        local event = { sets = {
            { id = "a", rules = { rule(100, NOW - 10, NOW - 1), rule(200, NOW, NOW + 10), rule(300) } },
            { id = "b", rules = { rule(100, NOW + 1, NOW + 10), rule(150, NOW - 10, NOW - 5) } },
            { id = "c", rules = { rule(0) } },
            { id = "d", rules = {} },
            { id = "e", rules = { rule(5, nil, NOW) } },
        } }
        assert.same({ a = 200, b = 150, c = 0, e = 5 }, seating.prices(event, NOW))
        assert.same({ a = 300, b = 150, c = 0, e = 5 }, seating.prices(event, NOW + 11))
        assert.same({}, seating.prices({}))
        assert.has_error(function() seating.prices(nil) end)
    end)
end)

describe("seating.points", function()
    it("finds a seat's point by sector, row and number", function()
        local at = seating.points{ seats = { { sector = "s", row = "1", number = "2",
                                               point = { x = 3, y = 4, r = 5 } },
                                             { sector = "s", row = "1", number = "3" } } }
        assert.same({ x = 3, y = 4, r = 5 }, at("s", "1", "2"))
        assert.is_nil(at("s", "1", "3"))
        assert.is_nil(at("s", "12", ""))
    end)
end)

-- The SVG's seat circles: { [status] = n }, selected ones counted apart,
-- and the circles in order as { status =, selected =, ticket = }.
local function circles(svg)
    local counts, list = {}, {}
    for attrs in svg:gmatch("<circle (class=\"seat [^>]*)>") do
        local status, rest = attrs:match('^class="seat (%a+)([^"]*)"')
        local c = { status = status, selected = rest == " selected",
                    ticket = attrs:match('data%-ticket="(%x+)"') }
        counts[status] = (counts[status] or 0) + 1
        if c.selected then counts.selected = (counts.selected or 0) + 1 end
        list[#list + 1] = c
    end
    return counts, list
end

-- Whether the text is well-formed as far as the drawing uses XML: every
-- element closed in order, every & an entity.
local function well_formed(svg)
    local stack = {}
    for slash, name, self_closing in svg:gmatch("<(/?)([%w:%-]+)[^>]-(/?)>") do
        if slash == "/" then
            if stack[#stack] ~= name then
                return false, "</" .. name .. "> closes " .. tostring(stack[#stack])
            end
            stack[#stack] = nil
        elseif self_closing ~= "/" then
            stack[#stack + 1] = name
        end
    end
    if #stack > 0 then return false, "unclosed " .. stack[#stack] end
    for pos in svg:gmatch("()&") do
        if not svg:find("^&[#%w]+;", pos) then return false, "a bare & at " .. pos end
    end
    return true
end

describe("seating.svg", function()
    local ZONE, BAR = "5a8dd58e6e55b2064c67c145", "5a8dd58e6e55b2064c67c146"
    local ZONE_SET, BAR_SET = "5d7135112110d30a34e97e2d", "5d713505255895db3c30b0c5"
    local function hall()
        local seats = concat(row_of("1", 1, 3, { [2] = "RESERVED" }), row_of("2", 1, 3, { [3] = "SOLD" }))
        local map = map_of(seats)
        map.name = "Зал"
        map.sectors = { { id = SECTOR, name = "A&B <\"x'>\1", with_seats = true },
                        { id = ZONE, name = "Танцпол" }, { id = BAR, name = "Бар" } }
        map.svg = { default = '<svg viewBox="0 0 400 300"><script>alert(1)</script>' ..
                              '<rect x="10" y="10" width="100" height="40" data-name="Сцена &amp; свет"/>' ..
                              '<polygon points="150,10 250,10 250,60 150,60" onclick="x()" ' ..
                              'data-sector="' .. ZONE .. '"/></svg>' }
        local event = { name = "Вечер", sets = {
            { id = SET, sector = SECTOR, with_seats = true, rules = { { simple = { price = 99000 } } } },
            { id = ZONE_SET, sector = ZONE, amount_vacant = 12, rules = { { simple = { price = 560000 } } } },
            { id = BAR_SET, sector = BAR, amount_vacant = 0, rules = { { simple = { price = 100 } } } },
        } }
        -- A ticket on sale whose seat the map does not place.
        seats[#seats + 1] = seat("7", "1")
        return map, seats, event
    end

    it("draws every seat of the map with the status of its ticket", function()
        local map, seats, event = hall()
        local svg = seating.svg(map, seats, { event = event })
        assert.is_true(well_formed(svg))
        assert.same({ vacant = 4, reserved = 1, sold = 1 }, (circles(svg)))
        assert.matches('<svg xmlns="http://www.w3.org/2000/svg" version="1.1"', svg, 1, true)
        assert.matches("<title>Вечер</title>", svg, 1, true)
        assert.matches("1 seat on sale is not on the map", svg, 1, true)
        -- The map's seats without a ticket are drawn as not on sale.
        map.seats[#map.seats + 1] = { sector = SECTOR, row = "3", number = "1",
                                      point = { x = 30, y = 300 } }
        svg = seating.svg(map, seats, { event = event })
        assert.same({ vacant = 4, reserved = 1, sold = 1, none = 1 }, (circles(svg)))
    end)

    it("marks the selected seats and counts them apart in the legend", function()
        local map, seats, event = hall()
        local svg = seating.svg(map, seats, { event = event, selected = { seats[1].ticket, seats[3] } })
        local counts = circles(svg)
        assert.equal(2, counts.selected)
        assert.equal(4, counts.vacant)
        assert.matches('data%-status="vacant" data%-count="2"', svg)
        assert.matches('data%-status="selected" data%-count="2"', svg)
    end)

    it("draws standing zones with their price and free count, from the drawing or below", function()
        local map, seats, event = hall()
        local svg = seating.svg(map, seats, { event = event })
        assert.matches('class="sector zone" data%-sector="' .. ZONE .. '" data%-free="12"', svg)
        assert.matches("5600.00 · 12 free", svg, 1, true)
        -- No area for the bar in the drawing: it is drawn below the hall.
        assert.matches('class="sector zone below" data%-sector="' .. BAR .. '" data%-free="0"', svg)
        assert.matches("1.00 · sold out", svg, 1, true)
        -- The seated sector: its name, price and free seats.
        -- (5: the ticket whose seat is not on the map counts.)
        assert.matches("A&amp;B &lt;&quot;x&#39;&gt; · 990.00 · 5 free", svg, 1, true)
        assert.matches("Сцена &amp; свет", svg, 1, true)
    end)

    it("escapes every name and copies nothing of the map's drawing as it is", function()
        local map, seats, event = hall()
        local svg = seating.svg(map, seats, { event = event, title = "<b>&" })
        assert.is_true(well_formed(svg))
        assert.is_nil(svg:find("script", 1, true))
        assert.is_nil(svg:find("onclick", 1, true))
        assert.is_nil(svg:find("\1", 1, true))
        assert.matches("<title>&lt;b&gt;&amp;</title>", svg, 1, true)
    end)

    it("gives the same bytes for the same hall, whatever order the seats come in", function()
        local map, seats, event = hall()
        local a = seating.svg(map, seats, { event = event })
        assert.equal(a, seating.svg(map, shuffled(seats), { event = event }))
        local _, list = circles(a)
        -- Seats are drawn row by row, in natural order.
        assert.equal(seats[1].ticket, list[1].ticket)
    end)

    it("draws a map without drawing, sectors or event", function()
        local svg = seating.svg({ seats = {} }, {})
        assert.is_true(well_formed(svg))
        assert.same({}, (circles(svg)))
        assert.has_error(function() seating.svg(nil, {}) end)
        assert.has_error(function() seating.svg({}, {}, { event = "e" }) end)
    end)
end)
