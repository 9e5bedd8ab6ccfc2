-- A client for the tc-simple specs: tc.new once lua/ticketscloud/init.lua
-- exists, else a stand-in with the same shape (options, channel, the
-- catalogue methods of ticketscloud.simple, close).

local simple = require "ticketscloud.simple"

local _M = {}

local function have_init()
    local f = io.open("lua/ticketscloud/init.lua", "rb")
    if f then f:close() end
    return f ~= nil
end

local StandIn = {}
for name, fn in pairs(simple.methods) do StandIn[name] = fn end
function StandIn.close(self)
    simple.close(self)
    self.closed = true
    return true
end
local mt = { __index = StandIn, __gc = StandIn.close, __close = StandIn.close }

function _M.new(opts)
    if have_init() then return require("ticketscloud").new(opts) end
    local ok, err = simple.check_options(opts)
    if not ok then return nil, err end
    return setmetatable({ options = {
        key = opts.key, simple = opts.simple, api = opts.api, timeout = opts.timeout or 10,
        language = opts.language or "ru", ca_file = opts.ca_file, insecure = opts.insecure,
    } }, mt)
end

return _M
