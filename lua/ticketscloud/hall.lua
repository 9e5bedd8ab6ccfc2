--- A picture of the hall: SVG text from a map, the live seats and the event.
--
-- Every seat the map places is a circle at its point, coloured by the live
-- status of its ticket (vacant, reserved, sold; or selected), under its
-- sector's outline and name with the sector's prices and free count. A
-- sector without seats (a standing zone) is an area with its price and free
-- count. The output is plain SVG 1.1 text, the same bytes for the same
-- input, with every name escaped; `seating.svg` is this function.
--
--   local hall = require "ticketscloud.hall"
--   local text = hall.svg(map, seats, { event = event, selected = block.tickets })
--
-- Where the areas come from: a `Map` has no geometry for its sectors, only
-- its seats' points and its `svg` drawings, whose format the service does
-- not document. The drawing (`svg.default`, else the first by key) is read
-- for `<rect>` and `<polygon>` elements: one with `data-sector="ID"` is
-- that sector's area, one with `data-name="TEXT"` only is a landmark drawn
-- with its text (a stage); its `viewBox` frames the picture. A seated
-- sector without an area is outlined around its seats; a sector with
-- neither is drawn below the hall. Nothing of the drawing is copied as it
-- is: only those numbers and names are taken, and escaped.
--
-- @module ticketscloud.hall

local core = require "ticketscloud.core"
local seating = require "ticketscloud.seating"

local concat = table.concat
local char = string.char
local floor = math.floor
local huge = math.huge
local ipairs = ipairs
local pairs = pairs
local sort = table.sort
local tonumber = tonumber
local tostring = tostring
local type = type

local check_arg = core.check_arg
local money = core.money

local _M = { _VERSION = core._VERSION }

-- The colours of the statuses, in the legend's order.
local STATUSES = {
    { name = "vacant", fill = "#43a047", label = "vacant" },
    { name = "reserved", fill = "#fb8c00", label = "reserved" },
    { name = "sold", fill = "#9e9e9e", label = "sold" },
    { name = "selected", fill = "#1e88e5", label = "selected" },
    { name = "none", fill = "#ffffff", label = "not on sale" },
}
local FILL = {}
for _, s in ipairs(STATUSES) do FILL[s.name] = s.fill end
-- Seat.status (the catalogue's enum names) -> class.
local CLASS = { VACANT = "vacant", RESERVED = "reserved", SOLD = "sold" }

local DEFAULT_R = 10      -- a seat's radius when the map gives none
local MARGIN = 20
local ZONE_W, ZONE_H = 190, 70

local ESCAPES = { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;",
                  ["'"] = "&#39;" }

-- Text for XML: the five special characters escaped, and the control
-- characters XML 1.0 does not allow dropped.
local function esc(s)
    s = tostring(s):gsub("[%z\1-\8\11\12\14-\31]", "")
    return (s:gsub("[&<>\"']", ESCAPES))
end

-- A number as the SVG writes it: an integer as such, else two decimals at
-- most, without trailing zeros. The same bytes on Lua 5.4 and LuaJIT.
local function num(v)
    if v == floor(v) and v > -1e15 and v < 1e15 then return ("%d"):format(v) end
    local s = ("%.2f"):format(v):gsub("0+$", ""):gsub("%.$", "")
    if s == "-0" then s = "0" end
    return s
end

-- `name="value"` pairs in the given order; nil values are left out.
local function attrs(list)
    local out = {}
    for i = 1, #list, 2 do
        local v = list[i + 1]
        if v ~= nil then
            if type(v) == "number" then v = num(v) else v = esc(v) end
            out[#out + 1] = list[i] .. '="' .. v .. '"'
        end
    end
    return concat(out, " ")
end

local function element(name, list, body)
    local a = attrs(list)
    local open = "<" .. name .. (a ~= "" and " " .. a or "")
    if body == nil then return open .. "/>" end
    return open .. ">" .. body .. "</" .. name .. ">"
end

-- The entities of an attribute value of the map's drawing.
local ENTITIES = { amp = "&", lt = "<", gt = ">", quot = '"', apos = "'" }
local function unescape(s)
    return (s:gsub("&(#?x?)(%w+);", function(kind, name)
        if kind == "" then return ENTITIES[name] end
        local code = tonumber(name, kind == "#x" and 16 or 10)
        if code and code >= 32 and code < 127 then return char(code) end
    end))
end

local function parse_attrs(text)
    local t = {}
    for name, _, value in text:gmatch("([%w_:%-]+)%s*=%s*([\"'])(.-)%2") do
        t[name] = unescape(value)
    end
    return t
end

local function numbers(text)
    local t = {}
    for v in (text or ""):gmatch("[^%s,]+") do
        local n = tonumber(v)
        if not n or n ~= n or n == huge or n == -huge then return nil end
        t[#t + 1] = n
    end
    return t
end

-- The map's drawing: svg.default, else the first by key.
local function drawing_text(map)
    local svg = type(map.svg) == "table" and map.svg or {}
    if type(svg.default) == "string" then return svg.default end
    local keys = {}
    for k, v in pairs(svg) do
        if type(k) == "string" and type(v) == "string" then keys[#keys + 1] = k end
    end
    sort(keys)
    return keys[1] and svg[keys[1]] or ""
end

-- The shapes and the viewBox of the map's drawing (see the top).
local function read_drawing(map)
    local text = drawing_text(map)
    local view
    local svg_tag = text:match("<svg(%s[^>]*)>")
    if svg_tag then
        local v = numbers(parse_attrs(svg_tag).viewBox)
        if v and #v == 4 and v[3] > 0 and v[4] > 0 then
            view = { x0 = v[1], y0 = v[2], x1 = v[1] + v[3], y1 = v[2] + v[4] }
        end
    end
    local shapes = {}
    for tag, rest in text:gmatch("<(%a+)(%s[^>]*)>") do
        if tag == "rect" or tag == "polygon" then
            local a = parse_attrs(rest)
            local shape = { sector = a["data-sector"], name = a["data-name"] }
            if tag == "rect" then
                local x, y = tonumber(a.x or "0"), tonumber(a.y or "0")
                local w, h = tonumber(a.width or ""), tonumber(a.height or "")
                if x and y and w and h and w > 0 and h > 0 then
                    shape.rect = { x = x, y = y, w = w, h = h }
                    shape.box = { x0 = x, y0 = y, x1 = x + w, y1 = y + h }
                end
            else
                local p = numbers(a.points)
                if p and #p >= 6 and #p % 2 == 0 then
                    shape.points = p
                    local box = { x0 = p[1], y0 = p[2], x1 = p[1], y1 = p[2] }
                    for i = 1, #p, 2 do
                        if p[i] < box.x0 then box.x0 = p[i] end
                        if p[i] > box.x1 then box.x1 = p[i] end
                        if p[i + 1] < box.y0 then box.y0 = p[i + 1] end
                        if p[i + 1] > box.y1 then box.y1 = p[i + 1] end
                    end
                    shape.box = box
                end
            end
            if shape.box and (shape.sector or shape.name) then shapes[#shapes + 1] = shape end
        end
    end
    return shapes, view
end

local function grow(box, x0, y0, x1, y1)
    if not box.x0 then
        box.x0, box.y0, box.x1, box.y1 = x0, y0, x1, y1
        return
    end
    if x0 < box.x0 then box.x0 = x0 end
    if y0 < box.y0 then box.y0 = y0 end
    if x1 > box.x1 then box.x1 = x1 end
    if y1 > box.y1 then box.y1 = y1 end
end

local function shape_element(shape, list)
    if shape.rect then
        local r = shape.rect
        local a = { "x", r.x, "y", r.y, "width", r.w, "height", r.h, "rx", 6 }
        for _, v in ipairs(list) do a[#a + 1] = v end
        return element("rect", a)
    end
    local pts = {}
    for i = 1, #shape.points, 2 do pts[#pts + 1] = num(shape.points[i]) .. "," .. num(shape.points[i + 1]) end
    local a = { "points", concat(pts, " ") }
    for _, v in ipairs(list) do a[#a + 1] = v end
    return element("polygon", a)
end

-- "990.00" or "990.00–1500.00" for a list of prices in minor units.
local function price_range(list)
    if #list == 0 then return nil end
    sort(list)
    local low, high = money.format(list[1]), money.format(list[#list])
    if low == high then return low end
    return low .. "–" .. high
end

-- What the event says about each sector: its sets' prices, and the free
-- tickets of its sets without seats.
local function sector_sales(event)
    local sales = {}
    if type(event) ~= "table" then return sales end
    local prices = seating.prices(event)
    for _, set in ipairs(event.sets or {}) do
        local id = set.sector
        if type(id) == "string" and id ~= "" then
            local s = sales[id]
            if not s then
                s = { prices = {}, seen = {}, free = nil }
                sales[id] = s
            end
            local p = prices[set.id]
            if p and not s.seen[p] then
                s.seen[p] = true
                s.prices[#s.prices + 1] = p
            end
            if not set.with_seats then s.free = (s.free or 0) + (set.amount_vacant or 0) end
        end
    end
    return sales
end

--- Draws the hall as SVG text.
-- Every seat of the map is a circle at its point with `class="seat STATUS"`
-- (`vacant`, `reserved`, `sold`, or `none` when no ticket of `seats` is
-- there; ` selected` is added for the selected ones) and `data-ticket`,
-- `data-sector`, `data-row`, `data-number` attributes; each sector is a
-- group with its name, the prices of its sets and its free count; a legend
-- counts the circles of each colour (the selected ones apart from their
-- status). The same input gives the same bytes.
-- @tparam table map the hall's `Map` as `client:maps{...}` streams it
-- @tparam {table,...} seats the event's seats as `client:seats{...}`
-- streams them, any status
-- @tparam[opt] table opts `event` (the `Event`: title, prices, free counts of
-- standing zones), `selected` (ticket ids, or seats, to show as selected),
-- `title` (instead of the event's name)
-- @treturn string the SVG document
-- @usage local f = assert(io.open("hall.svg", "w"))
-- f:write(hall.svg(map, seats, { event = event, selected = blocks[1].tickets }))
-- f:close()
function _M.svg(map, seats, opts)
    check_arg(map, "table", "svg", 1)
    check_arg(seats, "table", "svg", 2)
    opts = check_arg(opts, "table?", "svg", 3) or {}
    local event = opts.event
    if event ~= nil then check_arg(event, "table", "svg (opts.event)", 3) end

    local selected = {}
    for _, s in ipairs(opts.selected or {}) do
        if type(s) == "table" then s = s.ticket end
        if type(s) == "string" then selected[s:lower()] = true end
    end

    local shapes, view = read_drawing(map)
    local area_of = {}
    for _, shape in ipairs(shapes) do
        if shape.sector and not area_of[shape.sector] then area_of[shape.sector] = shape end
    end
    local sales = sector_sales(event)
    local prices = event and seating.prices(event) or {}

    -- The live seats by place; the counts of each status.
    local live, counts, unplaced = {}, {}, 0
    local at = seating.points(map)
    local free_in = {}
    for _, seat in ipairs(seats) do
        local sector, row, number = seat.sector or "", seat.row or "", seat.number or ""
        live[sector .. "\0" .. row .. "\0" .. number] = seat
        local class = CLASS[seat.status] or "sold"
        if class == "vacant" then free_in[sector] = (free_in[sector] or 0) + 1 end
        if not at(sector, row, number) then unplaced = unplaced + 1 end
    end

    -- The map's seats, sector by sector, row by row.
    local sectors, by_sector = {}, {}
    local names = {}
    for _, s in ipairs(map.sectors or {}) do
        if s.id and not by_sector[s.id] then
            by_sector[s.id] = { id = s.id, name = s.name ~= "" and s.name or s.id, rows = {},
                                box = {}, with_seats = s.with_seats }
            sectors[#sectors + 1] = by_sector[s.id]
            names[s.id] = by_sector[s.id].name
        end
    end
    local placed = {}
    for _, s in ipairs(map.seats or {}) do
        local p = s.point
        if type(p) == "table" and type(p.x) == "number" and type(p.y) == "number" then
            placed[#placed + 1] = s
        end
    end
    for _, row in ipairs(seating.rows(placed, { map = map })) do
        local sec = by_sector[row.sector]
        if not sec then
            sec = { id = row.sector, name = row.sector, rows = {}, box = {} }
            by_sector[row.sector] = sec
            sectors[#sectors + 1] = sec
            names[row.sector] = row.sector
        end
        sec.rows[#sec.rows + 1] = row
        for _, s in ipairs(row.seats) do
            local r = s.point.r and s.point.r > 0 and s.point.r or DEFAULT_R
            grow(sec.box, s.point.x - r, s.point.y - r, s.point.x + r, s.point.y + r)
        end
    end

    local bounds = {}
    if view then grow(bounds, view.x0, view.y0, view.x1, view.y1) end
    for _, shape in ipairs(shapes) do
        grow(bounds, shape.box.x0, shape.box.y0, shape.box.x1, shape.box.y1)
    end
    local zones = {}
    for _, sec in ipairs(sectors) do
        if area_of[sec.id] then
            sec.area = area_of[sec.id]
        elseif sec.box.x0 then
            local pad = 8
            sec.outline = { x0 = sec.box.x0 - pad - 18, y0 = sec.box.y0 - pad,
                            x1 = sec.box.x1 + pad, y1 = sec.box.y1 + pad }
            grow(bounds, sec.outline.x0, sec.outline.y0 - 24, sec.outline.x1, sec.outline.y1)
        else
            zones[#zones + 1] = sec
        end
        if sec.box.x0 then grow(bounds, sec.box.x0, sec.box.y0, sec.box.x1, sec.box.y1) end
    end
    if not bounds.x0 then grow(bounds, 0, 0, 400, 100) end

    -- The frame: a title above the hall; standing zones without an area and
    -- the legend below it.
    local title = opts.title or (event and event.name ~= "" and event.name) or map.name or ""
    local subtitle = (title ~= map.name and map.name ~= "") and map.name or nil
    local x0 = bounds.x0 - MARGIN
    local top = bounds.y0 - MARGIN - (subtitle and 52 or 32)
    local y = bounds.y1 + MARGIN
    local zones_y = y
    if #zones > 0 then y = y + ZONE_H + MARGIN end
    local legend_y = y + 10
    local bottom = legend_y + (unplaced > 0 and 40 or 20) + MARGIN
    local width = (bounds.x1 + MARGIN) - x0
    local zones_w = #zones * (ZONE_W + MARGIN) + MARGIN
    if zones_w > width then width = zones_w end
    local legend_w = #STATUSES * 150 + MARGIN
    if legend_w > width then width = legend_w end
    local height = bottom - top

    local out = {
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<svg xmlns="http://www.w3.org/2000/svg" version="1.1" ' .. attrs{
            "width", width, "height", height,
            "viewBox", num(x0) .. " " .. num(top) .. " " .. num(width) .. " " .. num(height),
            "font-family", "DejaVu Sans, Verdana, sans-serif" } .. ">",
        element("title", {}, esc(title)),
        element("rect", { "x", x0, "y", top, "width", width, "height", height, "fill", "#ffffff" }),
        element("text", { "class", "title", "x", x0 + MARGIN, "y", top + 26, "font-size", 20,
                          "font-weight", "bold", "fill", "#212121" }, esc(title)),
    }
    if subtitle then
        out[#out + 1] = element("text", { "class", "subtitle", "x", x0 + MARGIN, "y", top + 46,
                                          "font-size", 13, "fill", "#616161" }, esc(subtitle))
    end

    -- Landmarks of the drawing (a stage): dark, with their text.
    for _, shape in ipairs(shapes) do
        if not shape.sector then
            local b = shape.box
            out[#out + 1] = "<g class=\"landmark\">" ..
                shape_element(shape, { "fill", "#37474f" }) ..
                element("text", { "x", (b.x0 + b.x1) / 2, "y", (b.y0 + b.y1) / 2 + 5,
                                  "text-anchor", "middle", "font-size", 15, "fill", "#ffffff" },
                        esc(shape.name)) .. "</g>"
        end
    end

    local function sector_label(sec, free)
        local parts = { sec.name }
        local s = sales[sec.id]
        local range = s and price_range(s.prices)
        if range then parts[#parts + 1] = range end
        if free then parts[#parts + 1] = free > 0 and (free .. " free") or "sold out" end
        return parts
    end

    -- Sectors: standing zones with an area, seated sectors outlined.
    local function zone(sec, box, shape, below)
        local s = sales[sec.id]
        local free = s and s.free
        if free == nil then free = free_in[sec.id] end
        local fill = (free == 0) and "#eeeeee" or "#e8f5e9"
        local parts = sector_label(sec, free)
        local cx, cy = (box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2
        local body = {}
        if shape then
            body[#body + 1] = shape_element(shape, { "fill", fill, "stroke", "#81c784",
                                                     "stroke-width", 2 })
        else
            body[#body + 1] = element("rect", { "x", box.x0, "y", box.y0, "width", box.x1 - box.x0,
                                                "height", box.y1 - box.y0, "rx", 6, "fill", fill,
                                                "stroke", "#81c784", "stroke-width", 2,
                                                "stroke-dasharray", "6 4" })
        end
        body[#body + 1] = element("text", { "class", "sector-name", "x", cx, "y", cy - 6,
                                            "text-anchor", "middle", "font-size", 16,
                                            "font-weight", "bold", "fill", "#1b5e20" },
                                  esc(parts[1]))
        local rest = {}
        for i = 2, #parts do rest[#rest + 1] = parts[i] end
        if #rest > 0 then
            body[#body + 1] = element("text", { "class", "sector-info", "x", cx, "y", cy + 14,
                                                "text-anchor", "middle", "font-size", 13,
                                                "fill", "#2e7d32" }, esc(concat(rest, " · ")))
        end
        return element("g", { "class", below and "sector zone below" or "sector zone", "data-sector", sec.id,
                              "data-free", free }, concat(body))
    end

    for _, sec in ipairs(sectors) do
        if sec.area and not sec.box.x0 then
            out[#out + 1] = zone(sec, sec.area.box, sec.area)
        elseif sec.area or sec.outline then
            local body = {}
            local box = sec.outline or sec.area.box
            if sec.area then
                body[#body + 1] = shape_element(sec.area, { "fill", "#fafafa", "stroke", "#bdbdbd" })
            else
                body[#body + 1] = element("rect", { "x", box.x0, "y", box.y0, "width", box.x1 - box.x0,
                                                    "height", box.y1 - box.y0, "rx", 8,
                                                    "fill", "#fafafa", "stroke", "#bdbdbd" })
            end
            body[#body + 1] = element("text", { "class", "sector-name", "x", box.x0, "y", box.y0 - 8,
                                                "font-size", 15, "fill", "#212121" },
                                      esc(concat(sector_label(sec, free_in[sec.id] or 0), " · ")))
            -- Row labels, left of each row's first seat.
            for _, row in ipairs(sec.rows) do
                local first = row.seats[1]
                for _, s in ipairs(row.seats) do
                    if s.point.x < first.point.x then first = s end
                end
                local r = first.point.r and first.point.r > 0 and first.point.r or DEFAULT_R
                if row.row ~= "" then
                    body[#body + 1] = element("text", { "class", "row-label",
                        "x", first.point.x - r - 5, "y", first.point.y + 4, "text-anchor", "end",
                        "font-size", 11, "fill", "#757575" }, esc(row.row))
                end
            end
            out[#out + 1] = element("g", { "class", "sector", "data-sector", sec.id }, concat(body))
        end
    end

    -- Seats.
    local seat_out = {}
    local shown = {}
    for _, sec in ipairs(sectors) do
        for _, row in ipairs(sec.rows) do
            for _, s in ipairs(row.seats) do
                local k = (s.sector or "") .. "\0" .. (s.row or "") .. "\0" .. (s.number or "")
                if not shown[k] then
                    shown[k] = true
                    local seat = live[k]
                    local status = seat and (CLASS[seat.status] or "sold") or "none"
                    local is_selected = seat and seat.ticket and selected[seat.ticket:lower()]
                    local class = "seat " .. status .. (is_selected and " selected" or "")
                    local fill = FILL[is_selected and "selected" or status]
                    local r = s.point.r and s.point.r > 0 and s.point.r or DEFAULT_R
                    -- The legend counts the circles of each colour.
                    local colour = is_selected and "selected" or status
                    counts[colour] = (counts[colour] or 0) + 1
                    local tip = ("%s, row %s, seat %s"):format(names[s.sector] or s.sector or "",
                                                              s.row or "", s.number or "")
                    local price = seat and prices[seat.set]
                    if price then tip = tip .. ", " .. money.format(price) end
                    tip = tip .. ", " .. (is_selected and status .. ", selected" or
                                          status == "none" and "not on sale" or status)
                    seat_out[#seat_out + 1] = element("circle", {
                        "class", class, "cx", s.point.x, "cy", s.point.y, "r", r, "fill", fill,
                        "stroke", status == "none" and "#bdbdbd" or (is_selected and "#0d47a1"
                                                                     or "#ffffff"),
                        "stroke-width", is_selected and 2 or 1,
                        "data-ticket", seat and seat.ticket, "data-sector", s.sector,
                        "data-row", s.row, "data-number", s.number,
                    }, element("title", {}, esc(tip)))
                end
            end
        end
    end
    out[#out + 1] = '<g class="seats">' .. concat(seat_out) .. "</g>"

    -- Standing zones the drawing has no area for, in a strip below the hall.
    for i, sec in ipairs(zones) do
        local zx = x0 + MARGIN + (i - 1) * (ZONE_W + MARGIN)
        out[#out + 1] = zone(sec, { x0 = zx, y0 = zones_y, x1 = zx + ZONE_W, y1 = zones_y + ZONE_H },
                             nil, true)
    end

    -- The legend: the seats of each status.
    local items = {}
    local lx = x0 + MARGIN
    for _, s in ipairs(STATUSES) do
        local n = counts[s.name] or 0
        if n > 0 or s.name == "vacant" or s.name == "reserved" or s.name == "sold" then
            items[#items + 1] = element("g", { "class", "legend-item", "data-status", s.name,
                                               "data-count", n },
                element("circle", { "cx", lx + 8, "cy", legend_y, "r", 8, "fill", s.fill,
                                    "stroke", s.name == "none" and "#bdbdbd" or "#ffffff" }) ..
                element("text", { "x", lx + 22, "y", legend_y + 5, "font-size", 13,
                                  "fill", "#424242" }, esc(s.label .. " " .. n)))
            lx = lx + 150
        end
    end
    if unplaced > 0 then
        items[#items + 1] = element("text", { "class", "unplaced", "x", x0 + MARGIN,
                                              "y", legend_y + 30, "font-size", 12,
                                              "fill", "#757575" },
                                    esc(unplaced == 1 and "1 seat on sale is not on the map"
                                        or unplaced .. " seats on sale are not on the map"))
    end
    out[#out + 1] = '<g class="legend">' .. concat(items) .. "</g>"
    out[#out + 1] = "</svg>"
    return concat(out, "\n") .. "\n"
end

return _M
