--- A tc-sandbox catalog made from a live catalogue. It reads chosen events over tc-simple,
-- with everything they reference (venues, maps, cities, countries, categories, tags, artists,
-- meta events) and the status of every seat, and returns the catalog `tc-sandbox --catalog`
-- loads (docs/sandbox-catalog.md). What a snapshot cannot carry: docs/snapshot.md.
-- @module ticketscloud.snapshot
-- @usage
-- local snapshot = require "ticketscloud.snapshot"
-- local cat = assert(snapshot.take(client, { events = { EVENT } }))
-- assert(snapshot.write(cat, "hall.json"))   -- then: tc-sandbox --catalog hall.json

local core = require "ticketscloud.core"
local json = require "ticketscloud.json"
local time = require "ticketscloud.time"

local io_open = io.open
local ipairs = ipairs
local next = next
local os_remove = os.remove
local os_rename = os.rename
local pairs = pairs
local sort = table.sort
local tostring = tostring
local type = type

local check_arg = core.check_arg
local check_field = core.check_field
local fail = core.fail

local _M = { _VERSION = core._VERSION }

--- The distributor of a snapshot unless `opts.distributor` names one: the catalogue does not
-- tell which partner an API key acts as.
-- @field DISTRIBUTOR `"000000000000000000000001"`
_M.DISTRIBUTOR = "000000000000000000000001"

-- Fields of the messages that are live counters (the sandbox derives them)
-- or that a catalog cannot hold (google.protobuf.Any).
local DROPPED = { amount = true, amount_vacant = true, tickets_amount = true,
                  tickets_amount_vacant = true, additional = true }
-- google.protobuf.Timestamp fields: Unix seconds in a message, RFC 3339 in
-- the catalog. Lifetime's start and finish are handled by their parent.
local TIMESTAMPS = { updated_at = true, first_start = true, last_finish = true }

-- A message as the catalog writes it: proto3 JSON with proto field names,
-- Timestamps as RFC 3339. Empty tables in fields are left out (an empty
-- repeated field or map is not sent); a list keeps every item.
local function catalog_form(v, key)
    if type(v) ~= "table" then
        if TIMESTAMPS[key] and type(v) == "number" then return time.rfc3339(v) end
        return v
    end
    if #v > 0 then
        local list = json.array()
        for i, item in ipairs(v) do list[i] = catalog_form(item) end
        return list
    end
    local out = {}
    for k, item in pairs(v) do
        if not DROPPED[k] then
            local c
            if key == "lifetime" and (k == "start" or k == "finish") and type(item) == "number" then
                c = time.rfc3339(item)
            else
                c = catalog_form(item, k)
            end
            if type(c) ~= "table" or next(c) ~= nil then out[k] = c end
        end
    end
    return out
end

-- Every message of a stream, or nil, err (also when it was cut short).
local function all(client, method, request, on_message)
    local stream, err = client[method](client, request)
    if not stream then return nil, err end
    local list = {}
    for message in stream do
        list[#list + 1] = message
        if on_message then on_message(message, #list) end
    end
    err = stream:error()
    if err then return nil, err end
    return list
end

-- The sorted keys of a set of ids.
local function keys(set)
    local list = {}
    for k in pairs(set) do list[#list + 1] = k end
    sort(list, function(a, b) return tostring(a) < tostring(b) end)
    return list
end

-- Reads the messages of `method` whose ids are in `wanted` (a set); the
-- list, sorted by id, or nil, err.
local function referenced(client, method, wanted)
    if next(wanted) == nil then return {} end
    local list, err = all(client, method, { ids = keys(wanted) })
    if not list then return nil, err end
    sort(list, function(a, b) return tostring(a.id) < tostring(b.id) end)
    return list
end

local function check_opts(opts)
    check_arg(opts, "table", "take", 2)
    check_field(opts, "events", "table", "take")
    check_field(opts, "holds", "string?", "take")
    check_field(opts, "reset", "boolean?", "take")
    check_field(opts, "distributor", "string?", "take")
    check_field(opts, "progress", "function?", "take")
    if #opts.events == 0 then return fail("invalid", "take: events: at least one event id") end
    for i, id in ipairs(opts.events) do
        local ok, err = core.check_id(id, "events[" .. i .. "]")
        if not ok then return nil, err end
    end
    local holds = opts.holds or "vacant"
    if holds ~= "vacant" and holds ~= "sold" then
        return fail("invalid", 'take: holds: "vacant" or "sold"')
    end
    local distributor = opts.distributor or _M.DISTRIBUTOR
    local ok, err = core.check_id(distributor, "distributor")
    if not ok then return nil, err end
    return holds, distributor
end

-- The seated tickets of a set, from its seats in the order Seats gave them.
local function seat_tickets(seats, holds, reset)
    local tickets = json.array()
    for i, seat in ipairs(seats) do
        local sold = not reset and (seat.status == "SOLD" or (seat.status == "RESERVED" and holds == "sold"))
        tickets[i] = { id = seat.ticket, serial = "SEAT", number = i, status = sold and "SOLD" or nil,
                       seat = { sector = seat.sector, row = seat.row, number = seat.number } }
    end
    return tickets
end

-- The event as the catalog holds it: the message in catalog form, with its
-- tickets: seats as Seats listed them, unseated sets as generated stock.
local function event_entry(message, seats_by_set, holds, reset, timezone)
    local entry = catalog_form(message)
    entry.timezone = timezone
    for i, set in ipairs(message.sets) do
        local out = entry.sets[i]
        if set.with_seats then
            out.tickets = seat_tickets(seats_by_set[set.id] or {}, holds, reset)
        elseif set.amount > 0 then
            local sold = reset and 0 or set.amount - set.amount_vacant
            out.stock = { count = set.amount, serial = "TKT", first_number = 1,
                          sold = sold > 0 and sold or nil }
        end
    end
    return entry
end

--- Reads events and everything they reference from a tc-simple service and
-- makes a tc-sandbox catalog of them.
-- @tparam ticketscloud.Client client a client (`tc.new`) of the service to copy
-- @tparam table opts `events` (a list of event ids, required); `holds`:
--   what a seat RESERVED now becomes, `"vacant"` (the default) or `"sold"`;
--   `reset`: `true` starts every ticket vacant; `distributor`: the partner id
--   the sandbox's keys act as (default `snapshot.DISTRIBUTOR`); `progress`:
--   `function(what, count)` called as seats are read (`what` is `"seats"`)
-- @treturn table the catalog, for `snapshot.write` or `json.encode`
-- @return or nil, err: an error of the service; kind `not_found` when an
--   event does not exist; kind `invalid` for bad opts
-- @usage local cat = assert(snapshot.take(client, { events = { EVENT } }))
function _M.take(client, opts)
    local holds, distributor = check_opts(opts)
    if not holds then return nil, distributor end
    local events, err = all(client, "events", { ids = opts.events })
    if not events then return nil, err end
    local found = {}
    for _, e in ipairs(events) do found[e.id] = e end
    for _, id in ipairs(opts.events) do
        if not found[id] then return fail("not_found", "snapshot: no event " .. id) end
    end
    sort(events, function(a, b) return a.id < b.id end)

    local want = { venues = {}, maps = {}, categories = {}, tags = {}, artists = {},
                   meta_events = {}, cities = {}, countries = {} }
    local partners = { [distributor] = true }
    for _, e in ipairs(events) do
        if e.venue ~= "" then want.venues[e.venue] = true end
        if e.map ~= "" then want.maps[e.map] = true end
        if e.category ~= "" then want.categories[e.category] = true end
        if e.meta ~= "" then want.meta_events[e.meta] = true end
        for _, t in ipairs(e.tags) do want.tags[t] = true end
        for _, a in ipairs(e.artists) do want.artists[a] = true end
        partners[e.org] = true
    end
    local got = {}
    for _, method in ipairs{ "venues", "maps", "categories", "tags", "artists", "meta_events" } do
        got[method], err = referenced(client, method, want[method])
        if not got[method] then return nil, err end
    end
    for _, v in ipairs(got.venues) do
        if v.city ~= 0 then want.cities[v.city] = true end
    end
    got.cities, err = referenced(client, "cities", want.cities)
    if not got.cities then return nil, err end
    local zone = {}
    for _, c in ipairs(got.cities) do
        if c.country ~= "" then want.countries[c.country] = true end
        zone[c.id] = c.timezone ~= "" and c.timezone or nil
    end
    got.countries, err = referenced(client, "countries", want.countries)
    if not got.countries then return nil, err end
    for _, m in ipairs(got.meta_events) do
        if m.org ~= "" then partners[m.org] = true end
    end
    local venue_zone = {}
    for _, v in ipairs(got.venues) do venue_zone[v.id] = zone[v.city] end

    local catalog = { distributor = distributor, partners = json.array(), events = json.array() }
    for _, id in ipairs(keys(partners)) do
        local p = #catalog.partners + 1
        catalog.partners[p] = { id = id, name = id == distributor and "Distributor" or "Organizer " .. id }
    end
    for _, method in ipairs{ "countries", "cities", "venues", "maps", "artists", "categories", "tags",
                             "meta_events" } do
        local list = json.array()
        for i, m in ipairs(got[method]) do list[i] = catalog_form(m) end
        catalog[method] = list
    end

    local progress = opts.progress
    for i, e in ipairs(events) do
        local seats_by_set = {}
        local seated = false
        for _, set in ipairs(e.sets) do seated = seated or set.with_seats end
        if seated then
            local seats
            seats, err = all(client, "seats", { event = e.id }, progress and function(_, n)
                if n % 1000 == 0 then progress("seats", n) end
            end)
            if not seats then return nil, err end
            for _, seat in ipairs(seats) do
                local list = seats_by_set[seat.set]
                if not list then
                    list = {}
                    seats_by_set[seat.set] = list
                end
                list[#list + 1] = seat
            end
            if progress then progress("seats", #seats) end
        end
        catalog.events[i] = event_entry(e, seats_by_set, holds, opts.reset, venue_zone[e.venue])
    end
    return catalog
end

--- Writes a catalog as JSON text (keys sorted, indented) to a file, through
-- a temporary file renamed into place.
-- @tparam table catalog what `snapshot.take` returned
-- @tparam string path the file
-- @treturn boolean true
-- @return or nil, err (kind `invalid`: the file cannot be written)
-- @usage assert(snapshot.write(cat, "hall.json"))
function _M.write(catalog, path)
    check_arg(catalog, "table", "write", 1)
    check_arg(path, "string", "write", 2)
    local text, err = json.encode(catalog, true)
    if not text then return nil, err end
    local tmp = path .. ".tmp"
    local f, ferr = io_open(tmp, "wb")
    if not f then return fail("invalid", "snapshot: cannot write " .. tostring(ferr)) end
    local ok, werr = f:write(text)
    local closed, cerr = f:close()
    if not ok or not closed then
        os_remove(tmp)
        return fail("invalid", "snapshot: cannot write " .. path .. ": " .. tostring(werr or cerr))
    end
    local renamed, rerr = os_rename(tmp, path)
    if not renamed then
        os_remove(tmp)
        return fail("invalid", "snapshot: cannot write " .. path .. ": " .. tostring(rerr))
    end
    return true
end

return _M
