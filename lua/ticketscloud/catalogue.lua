-- ticketscloud.catalogue: the catalogue (tc-simple gRPC) methods of the client.
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
