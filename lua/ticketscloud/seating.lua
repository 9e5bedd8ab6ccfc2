--- Choosing seats: pure functions over what the catalogue returns.
--
-- `client:seats{...}` gives seats unordered, with rows and numbers as
-- strings; `client:maps{...}` gives the hall's geometry, `client:events{...}`
-- the sets and their prices. This module groups seats into rows in natural
-- order (`"2"` before `"10"`), finds blocks of vacant seats side by side and
-- ranks them, and gives the price of each set now. Nothing here does I/O:
-- the functions take the plain tables of the catalogue and return plain
-- tables (docs/seating.md).
--
--   local seating = require "ticketscloud.seating"
--   local seats = {}
--   for seat in assert(client:seats{ event = EVENT }) do seats[#seats + 1] = seat end
--   local best = seating.adjacent(seats, 2, { map = map, event = event })[1]
--   if best then assert(client:create_order{ tickets = best.tickets }) end
--
-- The picture of the hall is `ticketscloud.hall`; `seating.svg` is its
-- function.
--
-- @module ticketscloud.seating

local core = require "ticketscloud.core"

local ipairs = ipairs
local os_time = os.time
local pairs = pairs
local sort = table.sort
local sqrt = math.sqrt
local tonumber = tonumber
local type = type

local abs = math.abs
local error = error
local huge = math.huge
local check_arg = core.check_arg
local fail = core.fail
local money = core.money

local _M = { _VERSION = core._VERSION }

-- A neighbour further away than this many times the row's seat spacing is
-- across an aisle.
local AISLE_FACTOR = 1.5

--- Natural order of two row or seat labels: digit runs compare as numbers.
-- `"2"` comes before `"10"`, `"9a"` before `"10"`, `"1"` before `"1a"`; the
-- empty label (an unnumbered seat, a seat without a row) comes last. Labels
-- that differ only in leading zeros (`"01"`, `"1"`) fall back to byte order,
-- so the order is total.
-- @tparam string a a label
-- @tparam string b another label
-- @treturn boolean whether `a` comes before `b`
-- @usage table.sort(labels, seating.less)
function _M.less(a, b)
    check_arg(a, "string", "less", 1)
    check_arg(b, "string", "less", 2)
    if a == b then return false end
    if a == "" then return false end
    if b == "" then return true end
    local i, j, la, lb = 1, 1, #a, #b
    while i <= la and j <= lb do
        local da, db = a:match("^%d+", i), b:match("^%d+", j)
        if da and db then
            local na, nb = da:gsub("^0+", ""), db:gsub("^0+", "")
            if #na ~= #nb then return #na < #nb end
            if na ~= nb then return na < nb end
            i, j = i + #da, j + #db
        else
            local ca, cb = a:sub(i, i), b:sub(j, j)
            if ca ~= cb then return ca < cb end
            i, j = i + 1, j + 1
        end
    end
    if (la - i) ~= (lb - j) then return (la - i) < (lb - j) end
    return a < b
end
local less = _M.less

-- The number of a seat label that is an integer ("14"), else nil ("", "14a").
local function integer(label)
    if label:find("^%d+$") and #label < 16 then return tonumber(label) end
end

local function key(sector, row, number)
    return sector .. "\0" .. row .. "\0" .. number
end

-- The position of each sector id in the map's list (sectors it does not
-- name come after, in natural order of their ids).
local function sector_order(map)
    local order = {}
    if type(map) == "table" then
        for i, s in ipairs(map.sectors or {}) do
            if order[s.id] == nil then order[s.id] = i end
        end
    end
    return function(a, b)
        if a == b then return false end
        local ia, ib = order[a], order[b]
        if ia and ib then return ia < ib end
        if ia or ib then return ia ~= nil end
        return less(a, b)
    end
end

-- Seats in row order: numbered seats by number, then the unnumbered ones
-- by ticket id.
local function seat_less(a, b)
    local na, nb = a.number or "", b.number or ""
    if na ~= nb then return less(na, nb) end
    return (a.ticket or "") < (b.ticket or "")
end

--- Groups seats by sector and row, in natural order.
-- Sectors come in the order of `opts.map`'s sectors when it is given (else by
-- id), rows in natural order (`"2"` before `"10"`, rows without a label
-- last), and the seats of a row by number, the unnumbered ones last. The
-- seats are the tables given, not copies.
-- @tparam {table,...} seats seats as `client:seats{...}` streams them
-- @tparam[opt] table opts `map`: the hall's `Map`, for the order of its sectors
-- @treturn {table,...} rows `{ sector = ID, row = "2", seats = { seat, ... } }`
-- @usage for _, r in ipairs(seating.rows(seats)) do print(r.sector, r.row, #r.seats) end
function _M.rows(seats, opts)
    check_arg(seats, "table", "rows", 1)
    check_arg(opts, "table?", "rows", 2)
    local by_key, rows = {}, {}
    for _, seat in ipairs(seats) do
        local sector, row = seat.sector or "", seat.row or ""
        local k = sector .. "\0" .. row
        local r = by_key[k]
        if not r then
            r = { sector = sector, row = row, seats = {} }
            by_key[k] = r
            rows[#rows + 1] = r
        end
        r.seats[#r.seats + 1] = seat
    end
    local sector_less = sector_order(opts and opts.map)
    sort(rows, function(a, b)
        if a.sector ~= b.sector then return sector_less(a.sector, b.sector) end
        return less(a.row, b.row)
    end)
    for _, r in ipairs(rows) do sort(r.seats, seat_less) end
    return rows
end

-- Whether a rule's lifetime (Unix seconds, either end may be missing)
-- contains now; a rule without one always applies.
local function applies(rule, now)
    local lt = rule.lifetime
    if type(lt) ~= "table" then return true end
    return (lt.start == nil or lt.start <= now) and (lt.finish == nil or now <= lt.finish)
end

local function rule_price(rule)
    local simple = rule and rule.simple
    return type(simple) == "table" and simple.price or nil
end

--- The price of each set of an event now, in minor units.
-- A set's price is that of its first rule whose lifetime contains `now` (a
-- rule without a lifetime always does); when none does, its last rule's,
-- as tc-sandbox prices orders. It is the set's price before the deal's
-- extra (docs/orders.md has what an order adds). Format one with
-- `tc.money.format`.
-- @tparam table event an `Event` as `client:events{...}` streams it
-- @tparam[opt] number now Unix seconds (default: this machine's clock)
-- @treturn table `{ [SET_ID] = minor_units }`; a set without a price is absent
-- @usage local prices = seating.prices(event)
-- print(tc.money.format(prices[seat.set]))   --> "990.00"
function _M.prices(event, now)
    check_arg(event, "table", "prices", 1)
    now = check_arg(now, "number?", "prices", 2) or os_time()
    local out = {}
    for _, set in ipairs(event.sets or {}) do
        local rules, price = set.rules or {}, nil
        for _, rule in ipairs(rules) do
            if applies(rule, now) then
                price = rule_price(rule)
                break
            end
        end
        if price == nil then price = rule_price(rules[#rules]) end
        if set.id and price then out[set.id] = price end
    end
    return out
end

--- The points of a map's seats, by sector, row and number.
-- @tparam table map a `Map` as `client:maps{...}` streams it
-- @treturn table a function `(sector, row, number) -> point` (`{ x =, y =, r = }`) or nil
-- @usage local at = seating.points(map); local p = at(seat.sector, seat.row, seat.number)
function _M.points(map)
    check_arg(map, "table", "points", 1)
    local t = {}
    for _, s in ipairs(map.seats or {}) do
        local p = s.point
        if type(p) == "table" and type(p.x) == "number" and type(p.y) == "number" then
            t[key(s.sector or "", s.row or "", s.number or "")] = p
        end
    end
    return function(sector, row, number)
        return t[key(sector or "", row or "", number or "")]
    end
end

local function distance(a, b)
    local dx, dy = a.x - b.x, a.y - b.y
    return sqrt(dx * dx + dy * dy)
end

-- A set of strings from a string or a list of them (nil: no filter).
local function wanted(v, what)
    if v == nil then return nil end
    if type(v) == "string" then return { [v] = true } end
    if type(v) ~= "table" then
        return fail("invalid", what .. ": a string or a list of strings expected")
    end
    local t = {}
    for _, s in ipairs(v) do t[s] = true end
    return t
end

-- The sector filter: ids, or names of the map's sectors.
local function sector_filter(opts)
    local want, err = wanted(opts.sector, "sector")
    if not want then return nil, err end
    local ids = {}
    for k in pairs(want) do ids[k] = true end
    for _, s in ipairs(type(opts.map) == "table" and opts.map.sectors or {}) do
        if want[s.name] then ids[s.id] = true end
    end
    return ids
end

-- The set filter: ids, or names of the event's sets.
local function set_filter(opts)
    local want, err = wanted(opts.set, "set")
    if not want then return nil, err end
    local ids = {}
    for k in pairs(want) do ids[k] = true end
    for _, s in ipairs(type(opts.event) == "table" and opts.event.sets or {}) do
        if want[s.name] then ids[s.id] = true end
    end
    return ids
end

-- opts.max_price as minor units: an integer or a money string.
local function max_price(v)
    if v == nil then return nil end
    if type(v) == "string" then
        local m, err = money.parse(v)
        if not m then
            err.messages[1] = "max_price: " .. err.messages[1]
            return nil, err
        end
        return m
    end
    if type(v) ~= "number" or v % 1 ~= 0 then
        return fail("invalid", "max_price: integer minor units or a money string expected")
    end
    return v
end

-- Per row of every seat known (the seats given, any status, and the map's):
-- the span of its integer numbers, and the smallest distance between two
-- seats whose numbers follow each other (its seat spacing).
local function row_facts(seats, map)
    local facts = {}
    local function note(sector, row, number, p)
        local k = sector .. "\0" .. row
        local f = facts[k]
        if not f then
            f = { points = {} }
            facts[k] = f
        end
        local n = integer(number)
        if n then
            if not f.low or n < f.low then f.low = n end
            if not f.high or n > f.high then f.high = n end
            if p then f.points[n] = p end
        end
    end
    local at = map and _M.points(map)
    for _, s in ipairs(map and map.seats or {}) do
        note(s.sector or "", s.row or "", s.number or "", s.point)
    end
    for _, s in ipairs(seats) do
        local sector, row, number = s.sector or "", s.row or "", s.number or ""
        note(sector, row, number, at and at(sector, row, number))
    end
    for _, f in pairs(facts) do
        for n, p in pairs(f.points) do
            local q = f.points[n + 1]
            if q then
                local d = distance(p, q)
                if d > 0 and (not f.spacing or d < f.spacing) then f.spacing = d end
            end
        end
    end
    return facts
end

-- The centre of each sector's seats on the map (of their bounding box).
local function sector_centres(map)
    local box = {}
    for _, s in ipairs(map and map.seats or {}) do
        local p = s.point
        if type(p) == "table" and type(p.x) == "number" and type(p.y) == "number" then
            local b = box[s.sector or ""]
            if not b then
                box[s.sector or ""] = { x0 = p.x, y0 = p.y, x1 = p.x, y1 = p.y }
            else
                if p.x < b.x0 then b.x0 = p.x end
                if p.x > b.x1 then b.x1 = p.x end
                if p.y < b.y0 then b.y0 = p.y end
                if p.y > b.y1 then b.y1 = p.y end
            end
        end
    end
    local centres = {}
    for id, b in pairs(box) do centres[id] = { x = (b.x0 + b.x1) / 2, y = (b.y0 + b.y1) / 2 } end
    return centres
end

--- Blocks of `n` vacant seats side by side in one row, best first.
-- Two seats are side by side when they are in the same sector and row,
-- their numbers are integers that follow each other (`"13"`, `"14"`), and,
-- when the map places both, they are not further apart than `aisle` (by
-- default 1.5 times the row's seat spacing on the map: a wider gap is an
-- aisle). A missing number is a gap. Unnumbered seats (`""`, `"14a"`) are
-- blocks only when `n` is 1. Every run of `n` is a block, so blocks of one
-- row overlap.
--
-- Ranking: nearest `opts.near` when given, else nearest the centre of the
-- sector's seats on the map, when the map places the block's seats; else
-- (no map, or seats it does not place, ranked after those it does) nearest
-- the middle of the row by number. Ties go to the earlier sector, row and
-- number, so the order is always the same.
-- @tparam {table,...} seats seats as `client:seats{...}` streams them, any
-- status: only `VACANT` ones are taken, the others tell where rows end
-- @tparam integer n seats per block, 1 or more
-- @tparam[opt] table opts `map` (the hall's `Map`), `event` (its `Event`, for
-- prices and set names), `near = { x =, y = }` (a point of the map),
-- `sector` (an id or name, or a list), `set` (an id or name, or a list),
-- `max_price` (per seat: minor units or a money string; needs `event`),
-- `aisle` (a distance on the map), `limit` (at most this many blocks)
-- @treturn {table,...} blocks `{ sector =, row =, seats = {...}, tickets =
-- { ID, ... }, numbers = { "13", "14" }, price = minor_units (with event),
-- distance = number }`, best first
-- @return or nil, err (kind `"invalid"`) for an option value it refuses
-- @usage local blocks = assert(seating.adjacent(seats, 2, { map = map, event = event,
--                                                   sector = "A2", max_price = "1000.00" }))
-- local order = assert(client:create_order{ tickets = blocks[1].tickets })
function _M.adjacent(seats, n, opts)
    check_arg(seats, "table", "adjacent", 1)
    check_arg(n, "number", "adjacent", 2)
    opts = check_arg(opts, "table?", "adjacent", 3) or {}
    if n < 1 or n % 1 ~= 0 then error("bad argument #2 to 'adjacent' (integer >= 1 expected)", 2) end
    local map, event = opts.map, opts.event
    if map ~= nil then check_arg(map, "table", "adjacent (opts.map)", 3) end
    if event ~= nil then check_arg(event, "table", "adjacent (opts.event)", 3) end
    local sectors, sets, most, err
    sectors, err = sector_filter(opts)
    if err then return nil, err end
    sets, err = set_filter(opts)
    if err then return nil, err end
    most, err = max_price(opts.max_price)
    if err then return nil, err end
    if most and not event then return fail("invalid", "max_price: needs opts.event for the prices") end
    local near = opts.near
    if near ~= nil and (type(near) ~= "table" or type(near.x) ~= "number"
                        or type(near.y) ~= "number") then
        return fail("invalid", "near: { x = number, y = number } expected")
    end
    local aisle = opts.aisle
    if aisle ~= nil and (type(aisle) ~= "number" or aisle <= 0) then
        return fail("invalid", "aisle: a positive distance expected")
    end

    local prices = event and _M.prices(event) or {}
    local at = map and _M.points(map)
    local facts = row_facts(seats, map)
    local centres = sector_centres(map)

    local vacant = {}
    for _, seat in ipairs(seats) do
        if seat.status == "VACANT" and (not sectors or sectors[seat.sector])
                and (not sets or sets[seat.set])
                and (not most or (prices[seat.set] and prices[seat.set] <= most)) then
            vacant[#vacant + 1] = seat
        end
    end

    local blocks = {}
    local function add(row, run, first, facts_row)
        local b = { sector = row.sector, row = row.row, seats = {}, tickets = {}, numbers = {} }
        local points, price = {}, event and 0 or nil
        for i = first, first + n - 1 do
            local seat = run[i]
            b.seats[#b.seats + 1] = seat
            b.tickets[#b.tickets + 1] = seat.ticket
            b.numbers[#b.numbers + 1] = seat.number
            points[#points + 1] = at and at(seat.sector, seat.row, seat.number)
            if price then
                local p = prices[seat.set]
                price = p and money.add(price, p) or nil
            end
        end
        b.price = price
        if #points == n then
            local c = { x = 0, y = 0 }
            for _, p in ipairs(points) do c.x, c.y = c.x + p.x / n, c.y + p.y / n end
            local target = near or centres[row.sector]
            if target then
                b.distance, b.placed = distance(c, target), true
            end
        end
        if not b.placed then
            local low, high = facts_row and facts_row.low, facts_row and facts_row.high
            local first_n, last_n = integer(b.numbers[1]), integer(b.numbers[n])
            if low and first_n and last_n then
                b.distance = abs((first_n + last_n) / 2 - (low + high) / 2)
            else
                b.distance = huge
            end
        end
        blocks[#blocks + 1] = b
    end

    local row_index = {}
    for i, row in ipairs(_M.rows(vacant, { map = map })) do
        row_index[row] = i
        local f = facts[row.sector .. "\0" .. row.row]
        local gap = aisle or (f and f.spacing and f.spacing * AISLE_FACTOR)
        if n == 1 then
            for k = 1, #row.seats do add(row, row.seats, k, f) end
        else
            -- Runs of seats whose numbers follow each other, cut at aisles.
            local run = {}
            local function flush()
                for k = 1, #run - n + 1 do add(row, run, k, f) end
                run = {}
            end
            for _, seat in ipairs(row.seats) do
                local num = integer(seat.number or "")
                local prev = run[#run]
                if num and prev then
                    local follows = integer(prev.number) == num - 1
                    if follows and gap and at then
                        local p, q = at(prev.sector, prev.row, prev.number),
                                     at(seat.sector, seat.row, seat.number)
                        if p and q and distance(p, q) > gap then follows = false end
                    end
                    if not follows then flush() end
                elseif not num then
                    flush()
                end
                if num then run[#run + 1] = seat end
            end
            flush()
        end
    end

    -- Keep the row's index for the tie-break, then sort.
    local order = {}
    for row, i in pairs(row_index) do order[row.sector .. "\0" .. row.row] = i end
    for i, b in ipairs(blocks) do b.index, b.order = i, order[b.sector .. "\0" .. b.row] end
    sort(blocks, function(a, b)
        if (a.placed or false) ~= (b.placed or false) then return a.placed == true end
        if a.distance ~= b.distance then return a.distance < b.distance end
        if a.order ~= b.order then return a.order < b.order end
        return a.index < b.index
    end)
    local limit = opts.limit
    local out = {}
    for i, b in ipairs(blocks) do
        if limit and i > limit then break end
        b.index, b.order, b.placed = nil, nil, nil
        out[i] = b
    end
    return out
end

--- Draws the hall as SVG text: `ticketscloud.hall`'s `svg`, which documents
-- the picture and its options.
-- @tparam table map the hall's `Map`
-- @tparam {table,...} seats the event's seats, any status
-- @tparam[opt] table opts `event`, `selected`, `title`
-- @treturn string the SVG document
-- @usage local text = seating.svg(map, seats, { event = event, selected = block.tickets })
function _M.svg(map, seats, opts)
    return require("ticketscloud.hall").svg(map, seats, opts)
end

return _M
