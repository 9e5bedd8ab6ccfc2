-- Run by spec/fork_spec.lua with LuaJIT: a client is used, the process
-- forks (as nginx's master forks its workers), and the child tries the
-- parent's client. Prints one "name=value" line per observation.
--
--   luajit spec/helpers/fork.lua API SIMPLE KEY EVENT
local ffi = require "ffi"
local tc = require "ticketscloud"

ffi.cdef [[
    int fork(void);
    int getpid(void);
    int waitpid(int pid, int *status, int options);
    void _exit(int status);
]]

local api, simple, key, event = arg[1], arg[2], arg[3], arg[4]

local function say(name, value)
    io.stdout:write(name, "=", tostring(value), "\n")
    io.stdout:flush()
end

-- "ok", or the error's kind and message
local function outcome(value, err)
    if err then return err.kind .. ": " .. tostring(err.messages[1]) end
    return value ~= nil and "ok" or "end"
end

local client = assert(tc.new{ key = key, api = api, simple = simple, timeout = 5 })
local orders = assert(client:orders{ page_size = 1 })
say("parent_rest", outcome(true, select(2, orders())))
local seats = assert(client:seats{ event = event, status = "ANY" })
say("parent_seat", outcome(seats()))

local pid = ffi.C.fork()
assert(pid >= 0, "fork failed")
if pid == 0 then
    -- The child: nothing of the parent's client may be used, and letting go
    -- of it must neither hang nor touch the parent's connections.
    local list, err = client:orders{ page_size = 1 }
    if list then err = select(2, list()) end
    say("child_rest", outcome(nil, err))
    say("child_seat", outcome(seats()))
    say("child_stream", outcome(client:events{}))
    say("child_close_stream", tostring(seats:close()))
    say("child_close", tostring(client:close()))
    collectgarbage()
    say("child_done", "yes")
    ffi.C._exit(0)
end

local status = ffi.new("int[1]")
assert(ffi.C.waitpid(pid, status, 0) == pid)
say("child_status", status[0])
-- The parent goes on with its connection and its open stream.
say("parent_rest_after", outcome(true, select(2, client:orders{ page_size = 1 }())))
say("parent_connects", client.http:stats().connects)
local n = 0
for _ in seats do n = n + 1 end
say("parent_seats_after", outcome(n > 0 or nil, seats:error()))
client:close()
say("parent_done", "yes")
