--- A REST transport for the client inside nginx (lua-nginx-module) that does not block the
-- worker: each request is a subrequest (`ngx.location.capture`) to an internal location that
-- `proxy_pass`es it to the API. What the location must do, failures, headers and timeouts:
-- docs/openresty.md; the configuration: examples/nginx.conf. It works where
-- `ngx.location.capture` does: content, access and rewrite handlers. The catalogue (gRPC)
-- still blocks.
-- @module ticketscloud.nginx
-- @usage
-- local transport = require("ticketscloud.nginx").transport{ location = "/_tc_api", key = KEY }
-- local client = assert(tc.new{ key = KEY, transport = transport, sleep = ngx.sleep })

-- luacheck: globals ngx

local core = require "ticketscloud.core"

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

return _M
