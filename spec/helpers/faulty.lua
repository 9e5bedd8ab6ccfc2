-- Sandboxes with --faults for the specs: each logs to a file of its own,
-- and stop_all (after_each) stops those a failed test left running.

local assert = require "luassert"
local sandbox = require "ticketscloud.sandbox"

local _M = {}

local BIN = os.getenv("TC_SANDBOX") or "build/tc-sandbox"
local running = {}

function _M.read_file(path)
    local f = assert(io.open(path, "rb"))
    local s = f:read("a")
    f:close()
    return s
end

-- A sandbox with these faults (a --faults SPEC, or nil) and seed.
function _M.start(faults, seed)
    local log = os.tmpname()
    local sb = assert(sandbox.start{ bin = BIN, faults = faults, seed = seed or 1, log = log })
    sb.log_file = log
    running[#running + 1] = sb
    return sb
end

-- Stops the sandbox and returns its log.
function _M.stop(sb)
    assert.is_true(sb:stop())
    local text = _M.read_file(sb.log_file)
    os.remove(sb.log_file)
    return text
end

-- Stops every sandbox still running and removes the logs.
function _M.stop_all()
    for _, sb in ipairs(running) do
        sb:stop()
        os.remove(sb.log_file)
    end
    running = {}
end

return _M
