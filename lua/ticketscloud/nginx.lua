--- lua-ticketscloud inside nginx (lua-nginx-module) without blocking a worker.
--
-- `new(opts)` makes a client with every method of `tc.new`'s whose calls never block the
-- worker. The catalogue (gRPC) runs in a thread of nginx's pool (`ngx.run_worker_thread`;
-- `ticketscloud.nginx_thread` is the side that runs there) and crosses back whole, packed
-- (`stream:read_all`), under a cap. REST goes through nginx as subrequests to an internal
-- location that `proxy_pass`es them to the API (`transport`) in content, access and rewrite
-- handlers, and through the pool where subrequests do not exist (timers), or everywhere
-- without a location. Where nginx cannot wait (init_worker, filters, log) a call returns
-- `nil, err`. The order logic, retries and checks are the client's own, unchanged.
-- What the location must do, the contexts, failures and costs: docs/openresty.md; the
-- configuration: examples/nginx.conf.
-- @module ticketscloud.nginx
-- @usage
-- local client = require("ticketscloud.nginx").new{ key = KEY, location = "/_tc_api" }
-- @usage
-- -- the subrequest transport alone, for tc.new
-- local transport = require("ticketscloud.nginx").transport{ location = "/_tc_api", key = KEY }
-- local client = assert(tc.new{ key = KEY, transport = transport, sleep = ngx.sleep })

-- luacheck: globals ngx

local core = require "ticketscloud.core"
local tc = require "ticketscloud"
local catalogue = require "ticketscloud.catalogue"

local error = error
local pairs = pairs
local setmetatable = setmetatable
local tostring = tostring
local type = type

local check_arg = core.check_arg
local check_field = core.check_field
local fail = core.fail

local _M = { _VERSION = core._VERSION }

local Transport = {}
local mt = { __index = Transport, __name = "ticketscloud.NginxTransport" }

-- Raises for a field of transport{...} that has the right type but not a
-- value it can use.
local function bad_field(name, expected, v)
    error(("bad field '%s' to 'transport' (%s expected, got %s)"):format(name, expected, type(v)), 3)
end

--- Makes a transport for @{ticketscloud.options|tc.new's transport option}. The key goes to the
-- location in the variable `$tc_auth` (as `key <KEY>`), which it sends as `Authorization`.
-- @tparam table opts
-- @tparam string opts.location the internal location, a path starting with `/`
-- @tparam string opts.key the API key, non-empty
-- @tparam[opt] number opts.timeout seconds, positive: the location's proxy timeouts, which
--   the transport's timeout messages quote (it cannot cut a subrequest short)
-- @tparam[opt] table opts.headers the headers a request may send, each mapped to the variable
--   the location sends it from: `{ ["X-Name"] = "tc_x_name" }`
-- @treturn Transport the transport
-- @raise when a field is missing or cannot be used
--   (`bad field 'location' to 'transport' (a path starting with '/' expected, got nil)`)
-- @usage
-- local nginx = require "ticketscloud.nginx"
-- local transport = nginx.transport{ location = "/_tc_api", key = KEY, timeout = 5,
--                                    headers = { ["X-Name"] = "tc_x_name" } }
function _M.transport(opts)
    check_arg(opts, "table", "transport", 1)
    local location, key = opts.location, opts.key
    if type(location) ~= "string" or location:sub(1, 1) ~= "/" then
        bad_field("location", "a path starting with '/'", location)
    end
    if type(key) ~= "string" or key == "" then bad_field("key", "non-empty string", key) end
    local timeout = opts.timeout
    if timeout ~= nil and (type(timeout) ~= "number" or timeout <= 0) then
        bad_field("timeout", "positive number", timeout)
    end
    local headers = {}
    for name, var in pairs(check_field(opts, "headers", "table?", "transport") or {}) do
        if type(name) ~= "string" or type(var) ~= "string" then
            bad_field("headers", "names mapped to variable names", var)
        end
        headers[name:lower()] = var
    end
    return setmetatable({ location = location, auth = "key " .. key, timeout = timeout,
                          headers = headers, requests = 0, failures = 0 }, mt)
end

-- The subrequest's variables: the key and the mapped headers (checked by
-- core.check_request); nil, problem for a header the location does not send.
local function variables(self, headers)
    local vars = { tc_auth = self.auth }
    for _, var in pairs(self.headers) do vars[var] = "" end -- none sent
    for name, value in pairs(headers or {}) do
        local var = self.headers[name:lower()]
        if not var then
            return nil, "headers: " .. name .. " is not sent by the location (option headers)"
        end
        vars[var] = value
    end
    return vars
end

--- A transport of @{transport}: what the client sends its REST requests through. It has the
-- interface of the client's libcurl transport. `tostring(transport)` is
-- `ticketscloud.NginxTransport`.
-- @type Transport
-- @usage
-- local client = assert(tc.new{ key = KEY, transport = transport, sleep = ngx.sleep })
-- print(transport:stats().requests)

--- Sends one request as a subrequest. The method, path and header rules are the libcurl
-- transport's (`core.check_request`); a header the location does not send (option
-- `headers`) is refused. When nginx ends the subrequest with its own error (no complete
-- answer of the API), the result is kind `"transport"`, or `"timeout"` for its 504, with
-- `sent = true`: nginx does not tell whether the request reached the API. A complete answer
-- of the API, even a 502, is returned as it is.
-- @function Transport:request
-- @tparam string method `"GET"`, `"POST"`, `"PATCH"`, `"PUT"`, ...
-- @tparam string path the path and query, `"/v2/resources/orders/<id>"`
-- @tparam[opt] string body the JSON text
-- @tparam[opt] table opts `headers = { [NAME] = value }`
-- @treturn integer the HTTP status
-- @treturn string the body
-- @return[2] nil
-- @treturn[2] ticketscloud.Error err: kind `"invalid"` (a closed transport, a method or path
--   it refuses, a header it cannot send), `"transport"` or `"timeout"`
-- @raise when `body` is neither nil nor a string, or `opts` neither nil nor a table
-- @usage
-- local status, body = transport:request("GET", "/v2/resources/orders?page_size=1")
function Transport.request(self, method, path, body, opts)
    if self.closed then return fail("invalid", "closed") end
    if type(method) ~= "string" or type(path) ~= "string" then
        return fail("invalid", "method and path: strings expected")
    end
    check_arg(body, "string?", "request", 3)
    check_arg(opts, "table?", "request", 4)
    local headers = opts and opts.headers
    -- The same method, path and header rules as the libcurl transport.
    local ok, err = core.check_request(method, path, headers)
    if not ok then return nil, err end
    local vars, problem = variables(self, headers)
    if not vars then return fail("invalid", problem) end

    self.requests = self.requests + 1
    local res = ngx.location.capture(self.location .. path, {
        method = ngx["HTTP_" .. method],
        body = body or (method == "POST" and "" or nil),
        vars = vars,
    })
    local status = res.status
    if res.truncated then
        -- nginx ended the subrequest with an error of its own: no complete
        -- answer of the service (a complete one, even a 502, is returned as
        -- it is, for answers.decode). Whether the request left nginx is not
        -- told, so err.sent is true: it may have reached the service.
        self.failures = self.failures + 1
        local what = method .. " " .. path
        local kind, text = "transport", what .. ": nginx got no complete answer from the API "
                                        .. "(status " .. tostring(status) .. ")"
        if status == 504 then
            kind, text = "timeout", what .. ": no answer within " ..
                         (self.timeout and self.timeout .. " s" or "the location's proxy timeouts")
        end
        local _, failure = fail(kind, text)
        failure.sent = true
        return nil, failure
    end
    return status, res.body or ""
end

--- Counts the transport's requests. nginx's upstream connections are its own: there is no
-- count of connects.
-- @function Transport:stats
-- @treturn table `{ requests = n, failures = n }`: requests sent, and those that got no
--   complete answer of the API
-- @usage
-- local s = transport:stats()
-- ngx.log(ngx.INFO, s.requests, " requests, ", s.failures, " failures")
function Transport.stats(self)
    return { requests = self.requests, failures = self.failures }
end

--- Closes the transport: later requests return `nil, err` (kind `"invalid"`, `"closed"`), and
-- the key is dropped. `client:close()` calls it. nginx keeps its upstream connections.
-- Idempotent.
-- @function Transport:close
-- @treturn boolean `true`
-- @usage
-- transport:close()
function Transport.close(self)
    self.closed = true
    self.auth = nil
    return true
end

mt.__tostring = function() return "ticketscloud.NginxTransport" end

-- ------------------------------------------------------------------------
-- The client: ticketscloud.nginx.new

-- The side of this client that runs in the pool's threads.
local THREAD_MODULE = "ticketscloud.nginx_thread"
local DEFAULT_POOL = "default"
-- nginx's own default size of a thread pool (thread_pool default threads=32).
local DEFAULT_THREADS = 32
-- A 100,000-seat event is about 11 MB packed (docs/openresty.md).
local DEFAULT_MAX_LISTING = 32 * 1024 * 1024
-- Seconds a pool call may run past its timeout (a wait in the pool's
-- queue) before its thread counts as free again, should the coroutine that
-- made the call be gone (an aborted request) and not count it off itself.
local GRACE = 5

-- Where a call may wait: in the pool (ngx.run_worker_thread, ngx.sleep),
-- and where it may send a subrequest (ngx.location.capture).
local WAITS = { rewrite = true, server_rewrite = true, access = true, content = true,
                timer = true }
local SUBREQUESTS = { rewrite = true, access = true, content = true }

local decode_at = core.decode_at
local now = core.now
-- Seconds a loop over a listing may decode before it lets nginx serve
-- other requests, and the pause that does it: the shortest timer. (Without
-- OpenResty's delayed-events patch, Debian's nginx runs the timer of
-- ngx.sleep(0) before it looks at any connection again.)
local YIELD_AFTER = 0.005
local YIELD = 0.001

-- This worker's calls running in each pool, by pool name: token -> the
-- time (core.now) by which its thread is free for sure.
local running = {}

-- The phase, or nil, err (kind "invalid") where nginx cannot wait.
local function waitable(what)
    local phase = ngx.get_phase()
    if WAITS[phase] then return phase end
    return fail("invalid", ("%s: nginx cannot wait in the %s phase; call it from a content, "
                            .. "access or rewrite handler or a timer (ngx.timer.at)"):format(what, phase))
end

-- The client's sleep: ngx.sleep yields to nginx where it may (the client's
-- calls never get as far as a pause elsewhere).
local function sleep(seconds)
    if WAITS[ngx.get_phase()] then return ngx.sleep(seconds) end
    return core.sleep(seconds)
end

-- nil, err for a call nginx did not run in the pool; sent = false when it
-- cannot have started.
local function pool_failure(pool, reason)
    reason = tostring(reason)
    local kind, text, sent = "transport", "nginx's thread pool " .. pool .. ": " .. reason, true
    if reason:find("^thread pool .* not found") then
        kind, sent = "invalid", false
        text = ("thread pool %s is not configured: nginx.conf needs 'thread_pool %s threads=N;' "
                .. "in its main context"):format(pool, pool)
    elseif reason == "no available Lua vm" then
        sent, text = false, text .. " (all lua_worker_thread_vm_pool_size Lua states are busy)"
    elseif reason == "ngx_thread_task_post failed" then
        sent, text = false, text .. " (its queue is full)"
    end
    local _, err = fail(kind, text)
    err.sent = sent
    return nil, err
end

-- Runs THREAD_MODULE's fn(...) in the pool and returns what it returned,
-- with an error's fields made an error again. Refused (kind "transport",
-- sent = false) while this worker has pool.threads calls running there:
-- a call then gets an error at once rather than a wait in the pool's queue.
local function in_pool(pool, timeout, fn, ...)
    local name = pool.name
    if not ngx.run_worker_thread then
        return fail("invalid", "this nginx has no ngx.run_worker_thread (lua-nginx-module 0.10.21 "
                               .. "or later, nginx built with threads)")
    end
    local calls = running[name]
    if not calls then
        calls = {}
        running[name] = calls
    end
    local t, busy = now(), 0
    for token, free_by in pairs(calls) do
        if free_by < t then calls[token] = nil else busy = busy + 1 end
    end
    if busy >= pool.threads then
        local _, err = fail("transport", ("nginx's thread pool %s is busy: this worker has %d calls "
                                          .. "running there (option threads); nothing was sent")
                                         :format(name, busy))
        err.sent = false
        return nil, err
    end
    local token = {}
    calls[token] = t + timeout + GRACE
    local ok, a, b = ngx.run_worker_thread(name, THREAD_MODULE, fn, ...)
    calls[token] = nil
    if not ok then return pool_failure(name, a) end
    if a == nil and type(b) == "table" then return nil, core.error(b) end
    return a, b
end

-- The REST transport of a client made by new: subrequests where nginx has
-- them and the client has a location, the pool elsewhere.
local Rest = {}
local rest_mt = { __index = Rest, __name = "ticketscloud.NginxRest" }
rest_mt.__tostring = function() return "ticketscloud.NginxRest" end

function Rest.request(self, method, path, body, opts)
    if self.closed then return fail("invalid", "closed") end
    local phase, err = waitable("REST " .. tostring(method) .. " " .. tostring(path))
    if not phase then return nil, err end
    if self.subrequests and SUBREQUESTS[phase] then
        return self.subrequests:request(method, path, body, opts)
    end
    if type(method) ~= "string" or type(path) ~= "string" then
        return fail("invalid", "method and path: strings expected")
    end
    check_arg(body, "string?", "request", 3)
    check_arg(opts, "table?", "request", 4)
    local ok
    ok, err = core.check_request(method, path, opts and opts.headers)
    if not ok then return nil, err end
    -- Only what the request needs crosses to the thread.
    local timeout = opts and opts.timeout or self.options.timeout
    local sent = { headers = opts and opts.headers, timeout = opts and opts.timeout }
    self.requests = self.requests + 1
    local status, res = in_pool(self.pool, timeout, "rest", self.options, method, path, body, sent)
    if not status then self.failures = self.failures + 1 end
    return status, res
end

-- { requests =, failures = }: the requests sent through either way, and
-- those that got no answer of the service; subrequests and pooled tell
-- how many went which way.
function Rest.stats(self)
    local sub = self.subrequests and self.subrequests:stats() or { requests = 0, failures = 0 }
    return { requests = sub.requests + self.requests, failures = sub.failures + self.failures,
             subrequests = sub.requests, pooled = self.requests }
end

function Rest.close(self)
    self.closed = true
    if self.subrequests then self.subrequests:close() end
    return true
end

-- A catalogue listing as it crossed from the pool: packed chunks, decoded
-- one message per call (core.decode_at). The same interface as a stream of
-- tc.new's client.
local Listing = {}
local listing_mt = { __index = Listing, __name = "ticketscloud.NginxListing" }
listing_mt.__call = function(self) return self:next() end
listing_mt.__tostring = function() return "ticketscloud.NginxListing" end

--- A catalogue listing of the nginx client (`client:seats{...}`, ...): the messages crossed from
-- the pool whole and packed, decoded one per call. The interface of a catalogue stream.
-- @type Listing

--- The next message of the listing.
-- Calling the listing itself does the same, so that it works in a `for` loop. A loop over a
-- long listing gives the worker back to nginx for a millisecond (`ngx.sleep(0.001)`) after
-- every 5 ms or so of decoding, where nginx can wait, so that other requests are served
-- meanwhile.
-- @treturn table|nil the message, or nil at the end
-- @treturn[opt] table the error that ended the listing (then again on every call)
-- @function Listing:next
-- @usage for seat in listing do print(seat.ticket) end
-- if listing:error() then ngx.log(ngx.ERR, tostring(listing:error())) end
function Listing.next(self)
    if self.closed then return fail("invalid", "closed") end
    local chunks = self.chunks
    while chunks do
        local chunk = chunks[self.chunk]
        if not chunk then -- the end: what is left of the listing goes
            self.chunks = nil
            self.err, self.ending = self.ending, nil
            break
        end
        local message, at = decode_at(self.type, chunk, self.at)
        if message then
            self.at = at
            self.decoded = self.decoded + 1
            if self.decoded % 100 == 0 and now() - self.since > YIELD_AFTER
               and WAITS[ngx.get_phase()] then
                ngx.sleep(YIELD)
                self.since = now()
            end
            return message
        end
        if at then -- the server's bytes were not a message: the listing fails as a stream would
            self.chunks = nil
            self.err = core.error{ kind = "transport", messages = {
                ("malformed %s message from the server"):format(self.type) } }
            break
        end
        chunks[self.chunk] = nil -- read: its memory can go
        self.chunk, self.at = self.chunk + 1, 1
    end
    if self.err then return nil, self.err end
    return nil
end

--- The error that ended the listing.
-- @function Listing:error
-- @treturn table|nil the error, or nil while messages are left and after a normal end
-- @usage local err = listing:error()
function Listing.error(self)
    return self.err
end

--- Ends the listing early and lets its memory go; calls after it give
-- nil, err (kind "invalid", "closed"). Nothing runs in the pool by then.
-- @function Listing:close
-- @treturn boolean true
-- @usage listing:close()
function Listing.close(self)
    self.closed = true
    self.chunks = nil
    return true
end

-- The nginx client: every method of tc.new's client (inherited), with the
-- catalogue methods run in the pool.
local Client = setmetatable({}, { __index = tc })
local client_mt = { __index = Client, __name = "ticketscloud.NginxClient" }
client_mt.__gc = function(self) self:close() end -- Lua 5.4 (LuaJIT: its userdata close themselves)
client_mt.__close = client_mt.__gc
client_mt.__tostring = function(self) return self.name end

for name in pairs(catalogue.methods) do
    Client[name] = function(self, request)
        request = check_arg(request, "table?", name, 1) or {}
        if self.closed then return fail("invalid", "closed") end
        local ok, err = waitable(name)
        if not ok then return nil, err end
        local result
        result, err = in_pool(self.pool, self.options.timeout, "listing", self.thread_options, name,
                              request, self.max_listing)
        if not result then
            if err.kind == "transport" and err.messages[1]:find(" listing is larger than ", 1, true) then
                err.messages[#err.messages + 1] = "max_listing_bytes is " .. self.max_listing
                                                  .. ": narrow the request or raise the option"
            end
            return nil, err
        end
        local t = result.trace
        if self.trace and t then self.trace("GRPC", t.path, nil, t.status, t.seconds) end
        return setmetatable({ chunks = result.chunks, chunk = 1, at = 1, type = result.type,
                              count = result.count, bytes = result.bytes, decoded = 0,
                              since = now(), ending = result.error and core.error(result.error) },
                             listing_mt)
    end
end

local function bad_option(name, expected, got)
    error(("bad field '%s' to 'new' (%s expected, got %s)"):format(name, expected, type(got)), 3)
end

--- The non-blocking client.
-- @section client

--- Makes a client whose calls never block the nginx worker.
-- It takes the options of `tc.new` (but `transport`, which it chooses itself) and has the
-- same methods: catalogue listings, orders and their helpers, flows, refunds. Its calls
-- work in content, access and rewrite handlers and in timers; elsewhere (init_worker,
-- header and body filters, log) they return nil, err of kind "invalid". Nothing is
-- opened until a call needs it: make it in the worker, never in init_by_lua.
-- @tparam table opts the options of `tc.new`, plus:
--   `location` (string) the internal location that proxy_passes REST subrequests to the API
--   (none: REST runs in the thread pool everywhere);
--   `headers` ({ [name] = variable }) the extra headers that location sends (`transport`);
--   `thread_pool` (string, default "default") the pool named by a `thread_pool` directive;
--   `threads` (integer, default 32) how many calls this worker may run in the pool at once,
--   the pool's `threads=` (one more is an error, not a wait);
--   `max_listing_bytes` (integer, default 32 MiB) the largest catalogue listing, packed.
-- @treturn table|nil the client
-- @treturn[opt] table the error (kind "invalid") when an option is refused
-- @usage local client = assert(require("ticketscloud.nginx").new{
--     key = os.getenv("TICKETSCLOUD_KEY"), location = "/_tc_api" })
-- for seat in assert(client:seats{ event = EVENT, status = "VACANT" }) do ... end
function _M.new(opts)
    check_arg(opts, "table", "new", 1)
    if opts.transport ~= nil then
        error("bad field 'transport' to 'new' (the nginx client sends through nginx; see location)", 2)
    end
    local location = check_field(opts, "location", "string?", "new")
    if location and location:sub(1, 1) ~= "/" then
        bad_option("location", "a path starting with '/'", location)
    end
    local headers = check_field(opts, "headers", "table?", "new")
    for name, var in pairs(headers or {}) do
        if type(name) ~= "string" or type(var) ~= "string" then
            bad_option("headers", "names mapped to variable names", var)
        end
    end
    local pool = check_field(opts, "thread_pool", "string?", "new") or DEFAULT_POOL
    local threads = check_field(opts, "threads", "number?", "new") or DEFAULT_THREADS
    local max_listing = check_field(opts, "max_listing_bytes", "number?", "new") or DEFAULT_MAX_LISTING
    if pool == "" then return fail("invalid", "thread_pool: the name of a thread pool expected") end
    if threads < 1 or threads % 1 ~= 0 then
        return fail("invalid", "threads: an integer >= 1 expected")
    end
    if max_listing < 1 or max_listing % 1 ~= 0 or max_listing > 2 ^ 31 then
        return fail("invalid", "max_listing_bytes: an integer from 1 to 2^31 expected")
    end

    local rest = setmetatable({ pool = { name = pool, threads = threads }, requests = 0,
                                failures = 0 }, rest_mt)
    local inner = { transport = rest, sleep = sleep }
    for k, v in pairs(opts) do inner[k] = v end
    inner.location, inner.headers, inner.thread_pool, inner.threads = nil, nil, nil, nil
    inner.max_listing_bytes, inner.transport = nil, rest
    local self, err = tc.new(inner)
    if not self then return nil, err end
    -- What a client in a thread is made from: the checked options, plain values.
    local options = {}
    for k, v in pairs(self.options) do options[k] = v end
    rest.options = options
    if location then
        rest.subrequests = _M.transport{ location = location, key = options.key,
                                         timeout = options.timeout, headers = headers }
    end
    self.thread_options, self.pool, self.max_listing = options, rest.pool, max_listing
    self.name = "ticketscloud.NginxClient: " .. self.name:match("0x%x+")
    return setmetatable(self, client_mt)
end

--- A client of @{new}: the methods of `tc.new`'s client, with these differences.
-- @type Client

--- The counts of the client's REST requests.
-- @function Client:stats
-- @usage local s = client:stats()
-- @treturn table `{ requests =, failures =, subrequests =, pooled = }`: requests sent, those
-- that got no answer of the service, and how many went as subrequests or through the pool
function Client.stats(self)
    return self.http:stats()
end

return _M
