-- ticketscloud.catalogue: the catalogue (tc-simple gRPC) methods of the client.
--
--   for event in client:events{ status = "PUBLIC" } do print(event.id, event.name) end
--
--   local seats = assert(client:seats{ event = ID, status = "VACANT" })
--   for seat in seats do ... end
--   local err = seats:error()      -- nil when the listing ended normally
--
-- Each method takes a request table in the shape of its v3 request message
-- (proto field names; enums by name or number; Timestamps as Unix seconds)
-- and returns a stream, or nil, err when the request is invalid (nothing is
-- sent) or no channel can be made. Calling the stream returns the next
-- message as a plain table, nil at the end, or nil, err when the call failed;
-- after a loop, stream:error() tells which. stream:close() ends it early.
--
-- Messages are plain tables with the proto field names and enums as names.
-- Proto3 does not transmit default values (spec §2.3), so every scalar field
-- is filled with its default when absent: a vacant seat has status "VACANT",
-- a stand-by event status "STAND_BY", an unset string is "". Sub-messages not
-- sent are nil; a oneof shows only its set member. Timestamps are Unix
-- seconds (an integer, a float only when there is a fraction of a second).
--
-- Every stream has a deadline of the client's `timeout` (seconds, default
-- 10) for the whole listing, read included: walk long listings promptly or
-- raise the timeout.
--
-- The client's gRPC channel is made on first use from client.options and
-- kept in client.channel; client:close() closes it (see close below).
--
-- Transport security: "host:port" and "https://host:port" use TLS, verified
-- against the system roots or options.ca_file; "http://host:port" is
-- plaintext, and so is "host:port" with insecure = true. Plaintext is allowed
-- to loopback only (127.0.0.0/8, ::1, localhost) unless insecure = true.

local core = require "ticketscloud.core"

local pairs = pairs
local type = type
local tostring = tostring
local check_arg = core.check_arg
local fail = core.fail
local check_id = core.check_id     -- 24 letters and digits
local check_text = core.check_text -- UTF-8 without control characters

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

local MAX_DEPTH = 16
local DEFAULT_TIMEOUT = 10

-- Every string in the request, at any depth, is text without control characters.
local function check_strings(v, path, depth)
    local t = type(v)
    if t == "string" then
        local ok, err = check_text(v, path)
        if not ok then return nil, err end
    elseif t == "table" then
        if depth > MAX_DEPTH then return fail("invalid", path .. ": nested too deeply") end
        for k, item in pairs(v) do
            local ok, err = check_strings(item, path .. "." .. tostring(k), depth + 1)
            if not ok then return nil, err end
        end
    end
    return true
end

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
    return check_strings(request, name, 1)
end

local function is_loopback(host)
    return host == "localhost" or host == "::1" or host:find("^127%.%d+%.%d+%.%d+$") ~= nil
end

-- Parses options.simple: returns the gRPC target ("host:port") and whether
-- it uses TLS, or nil, err (kind "invalid") when the policy above refuses it.
function _M.target(simple, insecure)
    if type(simple) ~= "string" or simple == "" or simple:find("[%c%s]") then
        return fail("invalid", "simple: expected host:port, https://host:port or http://host:port")
    end
    local scheme, rest = simple:match("^(%a[%w+.-]*)://(.*)$")
    if scheme and scheme ~= "http" and scheme ~= "https" then
        return fail("invalid", "simple: unknown scheme " .. scheme .. "://")
    end
    rest = rest or simple
    local tls = scheme == "https" or (scheme == nil and not insecure)
    local host, port = rest:match("^%[([%x:.]+)%]:?(%d*)/?$")
    if not host then host, port = rest:match("^([%w.-]+):?(%d*)/?$") end
    if not host or host == "" then
        return fail("invalid", "simple: expected host:port, https://host:port or http://host:port")
    end
    if port == "" then port = tls and "443" or "80" end
    if not tls and not insecure and not is_loopback(host) then
        return fail("invalid", "simple: plaintext gRPC is allowed to loopback only (set insecure = true)")
    end
    if host:find(":") then host = "[" .. host .. "]" end
    return host .. ":" .. port, tls
end

-- Checks the gRPC part of the client options, for tc.new to refuse bad ones
-- at once. Returns true or nil, err.
function _M.check_options(options)
    local target, err = _M.target(options.simple, options.insecure)
    if not target then return nil, err end
    return true
end

-- The client's channel, made on first use.
local function channel(self)
    local ch = self.channel
    if ch then return ch end
    local options = self.options
    if self.closed or not options then return fail("invalid", "closed") end
    local target, tls = _M.target(options.simple, options.insecure)
    if not target then return nil, tls end
    local err
    ch, err = core.channel{
        target = target,
        tls = tls,
        key = options.key,
        language = options.language,
        ca_file = options.ca_file,
        timeout = options.timeout or DEFAULT_TIMEOUT,
    }
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
        return ch:stream(rpc, request, self) -- the stream keeps the client alive
    end
end

-- client:events{...}, client:seats{...} and the others, copied into the
-- Client class by ticketscloud (init.lua).
_M.methods = methods

return _M
