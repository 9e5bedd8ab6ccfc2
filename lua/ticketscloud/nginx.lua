-- ticketscloud.nginx: a REST transport for the client inside nginx
-- (lua-nginx-module) that does not block the worker: each request is a
-- subrequest (ngx.location.capture) to an internal location that
-- proxy_passes it to the API. What the location must do, failures, headers
-- and timeouts: docs/openresty.md; the configuration: examples/nginx.conf.

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

-- transport{ location = "/_tc_api", key = KEY, timeout = seconds,
--            headers = { [NAME] = VARIABLE } } -> object (raises on a bad field)
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

-- transport:request(method, path, body?, opts?) -> status, body | nil, err
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
