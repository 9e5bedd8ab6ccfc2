-- Starts spec/helpers/bad_api.lua in a mode and makes a client of it:
--
--   local bad_api = require "helpers.bad_api_client"
--   local client, stop = bad_api("endless", { list_timeout = 1 })
--
-- opts are added to tc.new's (key, api, timeout = 2). stop() closes the
-- client, waits for the server to exit and returns the number of requests
-- it answered.
local tc = require "ticketscloud"

-- Run without the sanitizer runtime a SAN=1 run preloads: it does not load
-- the module.
local HELPER = "env -u LD_PRELOAD lua5.4 spec/helpers/bad_api.lua "

return function(mode, opts)
    local p = assert(io.popen(HELPER .. mode))
    local port = assert(tonumber(p:read("l"):match("^port (%d+)$")))
    local o = { key = "test-key", api = "http://127.0.0.1:" .. port, timeout = 2 }
    for k, v in pairs(opts or {}) do o[k] = v end
    local client = assert(tc.new(o))
    return client, function()
        client:close()
        local out = p:read("a")
        p:close()
        return tonumber(out:match("requests (%d+)"))
    end
end
