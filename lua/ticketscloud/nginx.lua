-- ticketscloud.nginx: a REST transport for lua-ticketscloud inside nginx
-- (lua-nginx-module) that does not block the worker. nginx itself sends the
-- requests: each one is a subrequest (ngx.location.capture) to an internal
-- location that proxy_passes it to the API, so the worker serves other
-- requests while it waits (docs/openresty.md, examples/nginx.conf).
--
--   local transport = require("ticketscloud.nginx").transport{
--       location = "/_tc_api", key = KEY, timeout = 5,
--       headers = { ["X-Name"] = "tc_x_name" } }  -- optional, see below
--   local client = tc.new{ key = KEY, transport = transport, sleep = ngx.sleep }
--
-- The object has the interface of the C core's libcurl transport:
--   transport:request(method, path, body, opts) -> status, body | nil, err
--   transport:stats() -> { requests = n, failures = n }
--   transport:close()
-- err is a ticketscloud error of kind "transport" or "timeout" ("invalid"
-- for a request it refuses to send).
--
-- What the location must do (examples/nginx.conf):
--   * send the header Authorization from the variable $tc_auth, which the
--     transport sets on the subrequest to "key KEY"; every location that
--     calls the transport declares it (set $tc_auth "";) and no log format
--     may use it;
--   * keep proxy_intercept_errors off and set no error_page for 502 and
--     504, so that nginx's own failures reach the transport as such.
--
-- nginx's failures and the service's answers: when nginx cannot connect,
-- times out or loses the connection, it ends the subrequest with an error
-- status of its own (502, 504) and ngx.location.capture marks the result
-- truncated; that is an error of kind "transport" ("timeout" for 504). A
-- complete answer of the service, whatever its status (its own 502 or 504
-- too), is not truncated and is returned as it is, for ticketscloud.rest to
-- decode.
--
-- Headers of opts.headers: a subrequest cannot carry headers of its own,
-- so each header the caller may send is mapped to a variable (option
-- headers, name -> variable) that the location sends with
-- proxy_set_header NAME $variable; (an empty value sends no header). A
-- header that is not mapped is refused (kind "invalid").
--
-- Timeouts: a subrequest cannot be cut short from Lua. The location's
-- proxy_connect_timeout, proxy_send_timeout and proxy_read_timeout are the
-- limit; set the option timeout to the same number of seconds, it is what
-- the error message says. opts.timeout of a request is not applied.
--
-- Works where ngx.location.capture does: content, access and rewrite
-- handlers (not timers, init_worker_by_lua or filters).

-- luacheck: globals ngx

local core = require "ticketscloud.core"

local pairs = pairs
local setmetatable = setmetatable
local tostring = tostring
local type = type

local core_error = core.error

local _M = { _VERSION = core._VERSION }

local Transport = {}
local mt = { __index = Transport, __name = "ticketscloud.NginxTransport" }

local METHODS = { GET = true, POST = true, PUT = true, PATCH = true, DELETE = true }

local function fail(kind, message)
    return nil, core_error{ kind = kind, messages = { message } }
end

local function arg_error(name, expected, v)
    error(("bad field '%s' to 'transport' (%s expected, got %s)"):format(name, expected, type(v)), 3)
end

-- transport{ location = "/_tc_api", key = KEY, timeout = seconds,
--            headers = { [NAME] = VARIABLE } } -> object (raises on a bad field)
function _M.transport(opts)
    if type(opts) ~= "table" then
        error("bad argument #1 to 'transport' (table expected, got " .. type(opts) .. ")", 2)
    end
    local location, key = opts.location, opts.key
    if type(location) ~= "string" or location:sub(1, 1) ~= "/" then
        arg_error("location", "a path starting with '/'", location)
    end
    if type(key) ~= "string" or key == "" then arg_error("key", "non-empty string", key) end
    local timeout = opts.timeout
    if timeout ~= nil and (type(timeout) ~= "number" or timeout <= 0) then
        arg_error("timeout", "positive number", timeout)
    end
    local headers = {}
    if opts.headers ~= nil then
        if type(opts.headers) ~= "table" then arg_error("headers", "table", opts.headers) end
        for name, var in pairs(opts.headers) do
            if type(name) ~= "string" or type(var) ~= "string" then
                arg_error("headers", "names mapped to variable names", var)
            end
            headers[name:lower()] = var
        end
    end
    return setmetatable({ location = location, auth = "key " .. key, timeout = timeout,
                          headers = headers, requests = 0, failures = 0 }, mt)
end

-- The subrequest's variables: the key and the mapped headers; nil, problem
-- for a header that cannot be sent.
local function variables(self, opts)
    local vars = { tc_auth = self.auth }
    for _, var in pairs(self.headers) do vars[var] = "" end -- none sent
    local extra = opts and opts.headers
    if extra == nil then return vars end
    if type(extra) ~= "table" then
        error("bad field 'headers' (table expected, got " .. type(extra) .. ")", 3)
    end
    for name, value in pairs(extra) do
        if type(name) ~= "string" or type(value) ~= "string" then
            return nil, "headers: names and values must be strings"
        end
        local var = self.headers[name:lower()]
        if name:lower() == "authorization" then
            return nil, "headers: Authorization is set from the key"
        elseif not var then
            return nil, "headers: " .. name .. " is not sent by the location (option headers)"
        elseif value:find("[%c]") then
            return nil, "headers: a value has control characters"
        end
        vars[var] = value
    end
    return vars
end

-- transport:request(method, path, body?, opts?) -> status, body | nil, err
function Transport.request(self, method, path, body, opts)
    if self.closed then return fail("invalid", "closed") end
    if not METHODS[method] then return fail("invalid", "method: " .. tostring(method)) end
    if type(path) ~= "string" or path:sub(1, 1) ~= "/" or path:find("[^\33-\126]") then
        return fail("invalid", "path: must start with '/' and be printable ASCII without spaces")
    end
    if body ~= nil and type(body) ~= "string" then
        error("bad argument #3 to 'request' (string expected, got " .. type(body) .. ")", 2)
    end
    if opts ~= nil and type(opts) ~= "table" then
        error("bad argument #4 to 'request' (table expected, got " .. type(opts) .. ")", 2)
    end
    local vars, problem = variables(self, opts)
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
        -- answer of the service (see the top of this file).
        self.failures = self.failures + 1
        local what = method .. " " .. path
        if status == 504 then
            return fail("timeout", what .. ": no answer within " ..
                        (self.timeout and self.timeout .. " s" or "the location's proxy timeouts"))
        end
        return fail("transport", what .. ": nginx got no complete answer from the API (status " ..
                    tostring(status) .. ")")
    end
    return status, res.body or ""
end

-- transport:stats() -> { requests = n, failures = n }: requests sent, and
-- those that got no answer of the service.
function Transport.stats(self)
    return { requests = self.requests, failures = self.failures }
end

-- transport:close(): later requests return nil, err (kind "invalid",
-- "closed"). nginx keeps its upstream connections; idempotent.
function Transport.close(self)
    self.closed = true
    self.auth = nil
    return true
end

mt.__tostring = function() return "ticketscloud.NginxTransport" end

return _M
