-- ticketscloud.nginx_thread: the part of the nginx client
-- (ticketscloud.nginx) that runs in a thread of nginx's pool, called by
-- ngx.run_worker_thread in a Lua state of its own. It does the blocking
-- work and nothing else: one REST request over libcurl, or a whole
-- catalogue listing read with stream:read_all, packed in chunks. What the answer means, the
-- retries and the order logic stay with the client in the worker.
--
-- nginx keeps these Lua states between calls (each serves one call at a
-- time), so the clients made here are kept for the next calls: made on the
-- first call that needs one, at most MAX_CLIENTS per state (the least
-- recently used is closed first), closed when nginx closes the states as
-- the worker exits. Only plain values cross back to the worker: an error
-- is returned as its fields, which the worker makes an error again.

local tc = require "ticketscloud"

local collectgarbage = collectgarbage
local concat = table.concat
local ipairs = ipairs
local pairs = pairs
local pcall = pcall
local tostring = tostring

local _M = { _VERSION = tc._VERSION }

-- Clients kept per Lua state (different keys or hosts each need one).
local MAX_CLIENTS = 4
-- The options a client here is made from, in the order of its cache key.
local OPTIONS = { "key", "api", "simple", "timeout", "language", "ca_file", "insecure", "proxy",
                  "user_agent" }
_M.OPTIONS = OPTIONS

local clients = {} -- cache key -> { client =, used = n }
local uses = 0
-- A listing at least this large is collected before the next one starts.
local BIG = 1024 * 1024
local last_bytes = 0
-- What the trace of the last catalogue stream saw: { path =, status =, seconds = }.
local traced

local function trace(_, path, _, status, seconds)
    traced = { path = path, status = status, seconds = seconds }
end

-- The client for these options, made on first use.
local function client_for(options)
    local parts = {}
    for i, name in ipairs(OPTIONS) do parts[i] = tostring(options[name]) end
    local id = concat(parts, "\0")
    uses = uses + 1
    local entry = clients[id]
    if entry then
        entry.used = uses
        return entry.client
    end
    local count, oldest = 0, nil
    for other, e in pairs(clients) do
        count = count + 1
        if not oldest or e.used < clients[oldest].used then oldest = other end
    end
    if count >= MAX_CLIENTS then
        clients[oldest].client:close()
        clients[oldest] = nil
    end
    local opts = { trace = trace }
    for _, name in ipairs(OPTIONS) do opts[name] = options[name] end
    local client, err = tc.new(opts)
    if not client then return nil, err end
    clients[id] = { client = client, used = uses }
    return client
end

-- A raise here is a fault of this module, not the caller's: the worker gets
-- it as an error that may have sent the request.
local function raised(message)
    return nil, { kind = "transport", sent = true,
                  messages = { "in nginx's thread pool: " .. tostring(message) } }
end

local function rest(options, method, path, body, opts)
    local client, err = client_for(options)
    if not client then return nil, err end
    return client.http:request(method, path, body, opts)
end

--- One REST request, sent once, as the libcurl transport sends it.
-- Run by `ngx.run_worker_thread` for the nginx client; blocks its thread.
-- @tparam table options the client's checked options (`client.options`: key, api, ...)
-- @tparam string method `"GET"`, `"POST"`, `"PATCH"`, ...
-- @tparam string path the API's path and query
-- @tparam[opt] string body the JSON body
-- @tparam[opt] table opts `{ headers =, timeout = }` of the request
-- @treturn number|nil the HTTP status
-- @treturn string|table the body, or the error's fields
-- @usage ngx.run_worker_thread("default", "ticketscloud.nginx_thread", "rest",
--     client.options, "GET", "/v2/resources/orders/" .. id)
function _M.rest(...)
    local ok, a, b = pcall(rest, ...)
    if not ok then return raised(a) end
    return a, b
end

local function listing(options, name, request, max_bytes)
    -- A large previous listing of this state was copied to its worker: free
    -- it now rather than whenever this state next allocates enough. (Small
    -- ones are left to the collector: a full collection costs a millisecond.)
    if last_bytes >= BIG then collectgarbage() end
    last_bytes = 0
    local client, err = client_for(options)
    if not client then return nil, err end
    traced = nil
    local stream
    stream, err = client[name](client, request)
    if not stream then return nil, err end
    local chunks, count, type_name = stream:read_all(max_bytes)
    if not chunks then return nil, count end -- larger than max_bytes: the call is cancelled
    local bytes = 0
    for i = 1, #chunks do bytes = bytes + #chunks[i] end
    last_bytes = bytes
    local result = { chunks = chunks, count = count, type = type_name, bytes = bytes,
                     error = stream:error(), trace = traced }
    stream:close()
    return result
end

--- A catalogue method's whole listing, packed in chunks (`stream:read_all`).
-- Run by `ngx.run_worker_thread` for the nginx client; blocks its thread until the stream
-- is over (its deadline bounds it).
-- @tparam table options the client's checked options (`client.options`)
-- @tparam string method a catalogue method: `"seats"`, `"events"`, ...
-- @tparam table request its request table
-- @tparam number max_bytes the largest listing, packed; a larger one is an error
-- @treturn table|nil `{ chunks =, count =, type =, bytes =, error =, trace = }`: the chunks,
--   the number of messages, their type, the packed size, the fields of the error that ended
--   the listing if any, and what its trace saw (`{ path =, status =, seconds = }`)
-- @treturn[opt] table the error's fields
-- @usage ngx.run_worker_thread("default", "ticketscloud.nginx_thread", "listing",
--     client.options, "seats", { event = EVENT }, 32 * 1024 * 1024)
function _M.listing(...)
    local ok, a, b = pcall(listing, ...)
    if not ok then return raised(a) end
    return a, b
end

--- Closes the clients this Lua state keeps (nginx closes them with the state as the
-- worker exits). Idempotent.
-- @treturn boolean true
function _M.close()
    for id, entry in pairs(clients) do
        entry.client:close()
        clients[id] = nil
    end
    return true
end

return _M
