--- ticketscloud.catalogue: the catalogue (tc-simple gRPC) methods of the client, which
-- ticketscloud (init.lua) installs on its class; the reference lists them with the client's
-- other methods.
--
--   for event in client:events{ status = "PUBLIC" } do print(event.id, event.name) end
--
--   local seats = assert(client:seats{ event = ID, status = "VACANT" })
--   for seat in seats do ... end
--   local err = seats:error()      -- nil when the listing ended normally
--
-- Each method takes a request table in the shape of its v3 request message
-- and returns a stream of plain tables (docs/catalogue-client.md). Request
-- data is checked in the core before anything is sent; the channel is made
-- on first use from client.options (options.c says which are acceptable).
-- @module ticketscloud

local core = require "ticketscloud.core"

local pairs = pairs
local type = type
local check_arg = core.check_arg
local fail = core.fail
local check_id = core.check_id     -- 24 hexadecimal digits

local _M = { _VERSION = core._VERSION }

-- Client method name -> tc-simple RPC, and which request fields hold ids
-- ("id" a single ObjectId, "ids" a list of them).
local METHODS = {
    artists     = { rpc = "Artists",    ids = { ids = "ids" } },
    categories  = { rpc = "Categories", ids = { ids = "ids" } },
    cities      = { rpc = "Cities",     ids = {} },
    countries   = { rpc = "Countries",  ids = {} },
    events      = { rpc = "Events",     ids = { ids = "ids", meta = "id", org = "id" } },
    maps        = { rpc = "Maps",       ids = { ids = "ids", venue = "id" } },
    meta_events = { rpc = "MetaEvents", ids = { ids = "ids" } },
    seats       = { rpc = "Seats",      ids = { event = "id", sets = "ids", tickets = "ids",
                                                sector = "id" },
                    required = { "event" } },
    tags        = { rpc = "Tags",       ids = { ids = "ids" } },
    venues      = { rpc = "Venues",     ids = { ids = "ids" } },
}

local function check_request(name, spec, request)
    for _, field in pairs(spec.required or {}) do
        if request[field] == nil then return fail("invalid", name .. ": '" .. field .. "' is required") end
    end
    for field, kind in pairs(spec.ids) do
        local v = request[field]
        if v ~= nil then
            if kind == "id" then
                local ok, err = check_id(v, name .. "." .. field)
                if not ok then return nil, err end
            elseif type(v) == "table" then
                for i = 1, #v do
                    local ok, err = check_id(v[i], ("%s.%s[%d]"):format(name, field, i))
                    if not ok then return nil, err end
                end
            end
        end
    end
    -- Every string at any depth is text without control characters (the
    -- one JSON-value walker of the core, validate.c).
    return core.check_json(request, name)
end

-- The client's channel, made on first use.
local function channel(self)
    local ch = self.channel
    if ch then return ch end
    local options = self.options
    if self.closed or not options then return fail("invalid", "closed") end
    local err
    ch, err = core.channel(options)
    if not ch then return nil, err end
    self.channel = ch
    return ch
end

-- Closes the client's channel (and so its open streams). Idempotent; the
-- client keeps the closed channel, so later calls report "closed".
function _M.close(self)
    local ch = self.channel
    if ch then ch:close() end
    return true
end

--- @type Client

--- Streams events: the `Events` RPC of tc-simple (spec §2.5).
--
-- A catalogue method takes a table in the shape of its v3 request message: the proto field
-- names, enums by name (or number), Timestamps as Unix seconds; an empty or missing filter
-- does not filter. Ids are checked to be ObjectIds and every string to be free of control
-- characters before anything is sent; an unknown field or enum name, a value of the wrong
-- type or two members of one oneof are refused too (kind `"invalid"`). It returns a
-- @{CatalogueStream} of messages as plain tables (docs/catalogue-client.md, "Messages"),
-- and makes the client's gRPC channel on first use.
-- @function Client:events
-- @tparam[opt] table request `ids` (a list), `meta` or `without_meta`, `org`, `status`
--   (`"ANY"`, `"STAND_BY"`, `"PUBLIC"`), `lifetime` (`{ start = { gte =, gt =, lte =, lt = } }`,
--   and `finish` the same)
-- @treturn CatalogueStream a stream of `v3.Event` messages
-- @return[2] nil
-- @treturn[2] Error err: kind `"invalid"`, or the channel could not be made
-- @raise when `request` is neither nil nor a table
-- @usage
-- local events = assert(client:events{ status = "PUBLIC" })
-- for event in events do print(event.id, event.name, event.lifetime and event.lifetime.start) end
-- assert(not events:error())

--- Streams the seats of an event: the `Seats` RPC (spec §2.6). Requests and results as for
-- @{Client:events}. A vacant seat reads `status == "VACANT"` although the service does not
-- send it (the proto3 default).
-- @function Client:seats
-- @tparam table request `event` (**required**), `sets`, `tickets` (lists of ids), `sector`,
--   `row`, `number`, `status` (`"ANY"`, `"VACANT"`, `"RESERVED"`, `"SOLD"`)
-- @treturn CatalogueStream a stream of `v3.Seat` messages
-- @return[2] nil
-- @treturn[2] Error err: kind `"invalid"` (`seats: 'event' is required`), or the channel could
--   not be made
-- @raise when `request` is neither nil nor a table
-- @usage
-- local seats = assert(client:seats{ event = EVENT, status = "VACANT" })
-- for seat in seats do print(seat.ticket, seat.sector, seat.row, seat.number) end
-- local err = seats:error()   -- nil when the listing ended normally

--- Streams venues: the `Venues` RPC. Requests and results as for @{Client:events}.
-- @function Client:venues
-- @tparam[opt] table request `ids`
-- @treturn CatalogueStream a stream of `v3.Venue` messages
-- @return[2] nil
-- @treturn[2] Error err
-- @raise when `request` is neither nil nor a table
-- @usage
-- for venue in assert(client:venues{ ids = { VENUE } }) do print(venue.id, venue.name) end

--- Streams hall maps: the `Maps` RPC. Requests and results as for @{Client:events}.
-- @function Client:maps
-- @tparam[opt] table request `ids`, `venue`
-- @treturn CatalogueStream a stream of `v3.Map` messages (`svg` a table keyed by its keys)
-- @return[2] nil
-- @treturn[2] Error err
-- @raise when `request` is neither nil nor a table
-- @usage
-- for map in assert(client:maps{ venue = VENUE }) do print(map.id) end

--- Streams meta events (groups of events): the `MetaEvents` RPC. Requests and results as for
-- @{Client:events}.
-- @function Client:meta_events
-- @tparam[opt] table request `ids`
-- @treturn CatalogueStream a stream of `v3.MetaEvent` messages
-- @return[2] nil
-- @treturn[2] Error err
-- @raise when `request` is neither nil nor a table
-- @usage
-- for meta in assert(client:meta_events{}) do print(meta.id, meta.name) end

--- Streams tags: the `Tags` RPC. Requests and results as for @{Client:events}.
-- @function Client:tags
-- @tparam[opt] table request `ids`
-- @treturn CatalogueStream a stream of `v3.Tag` messages
-- @return[2] nil
-- @treturn[2] Error err
-- @raise when `request` is neither nil nor a table
-- @usage
-- for tag in assert(client:tags{}) do print(tag.id, tag.name, tag.category) end

--- Streams categories: the `Categories` RPC. Requests and results as for @{Client:events}.
-- @function Client:categories
-- @tparam[opt] table request `ids`
-- @treturn CatalogueStream a stream of `v3.Category` messages
-- @return[2] nil
-- @treturn[2] Error err
-- @raise when `request` is neither nil nor a table
-- @usage
-- for category in assert(client:categories{}) do print(category.id, category.name) end

--- Streams artists: the `Artists` RPC. Requests and results as for @{Client:events}.
-- @function Client:artists
-- @tparam[opt] table request `ids`
-- @treturn CatalogueStream a stream of `v3.Artist` messages
-- @return[2] nil
-- @treturn[2] Error err
-- @raise when `request` is neither nil nor a table
-- @usage
-- for artist in assert(client:artists{ ids = { ARTIST } }) do print(artist.id, artist.name) end

--- Streams countries: the `Countries` RPC. Requests and results as for @{Client:events}.
-- @function Client:countries
-- @tparam[opt] table request `ids`: country codes such as `"RU"`
-- @treturn CatalogueStream a stream of `v3.Country` messages
-- @return[2] nil
-- @treturn[2] Error err
-- @raise when `request` is neither nil nor a table
-- @usage
-- for country in assert(client:countries{ ids = { "RU" } }) do
--     print(country.id, country.name, country.currency)
-- end

--- Streams cities: the `Cities` RPC. Requests and results as for @{Client:events}.
-- @function Client:cities
-- @tparam[opt] table request `ids` (integers), `name`, `suggest`, `country`
-- @treturn CatalogueStream a stream of `v3.City` messages
-- @return[2] nil
-- @treturn[2] Error err
-- @raise when `request` is neither nil nor a table
-- @usage
-- for city in assert(client:cities{ country = "RU", suggest = "Моск" }) do print(city.id, city.name) end

local methods = {}

for name, spec in pairs(METHODS) do
    local rpc = spec.rpc
    methods[name] = function(self, request)
        request = check_arg(request, "table?", name, 1) or {}
        local ok, err = check_request(name, spec, request)
        if not ok then return nil, err end
        local ch
        ch, err = channel(self)
        if not ch then return nil, err end
        -- The stream keeps the client alive, and calls trace once it is
        -- over: trace("GRPC", "/v3.Simple/" .. rpc, nil, status, seconds).
        return ch:stream(rpc, request, self, self.trace)
    end
end

-- client:events{...}, client:seats{...} and the others, copied into the
-- Client class by ticketscloud (init.lua).
_M.methods = methods

return _M
