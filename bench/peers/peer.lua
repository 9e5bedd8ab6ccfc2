-- bench/peers/peer.lua: what the module's peer scripts share: the clock,
-- the CPU time and peak RSS they report, in the line every peer prints
-- (rest_get.c and seats.c print the same from getrusage):
--
--   n=N wall=SECONDS cpu=SECONDS hwm0=KB hwm=KB
--
-- wall is monotonic; cpu is the process's user + system time, all threads
-- (os.clock is clock(), CLOCK_PROCESS_CPUTIME_ID on Linux); hwm0 and hwm are
-- VmHWM (peak RSS) before and after the loop.

local system = require "system"

local _M = {}

function _M.die(fmt, ...)
    io.stderr:write("peer: ", fmt:format(...), "\n")
    os.exit(1)
end

function _M.check(value, err)
    if value == nil then _M.die("%s", tostring(err)) end
    return value
end

local function hwm()
    for line in io.lines("/proc/self/status") do
        local kb = line:match("^VmHWM:%s+(%d+) kB")
        if kb then return tonumber(kb) end
    end
    return 0
end

-- The start of the timed loop.
function _M.start()
    return { hwm0 = hwm(), cpu0 = os.clock(), t0 = system.monotime() }
end

-- Its end: prints the peer's line.
function _M.finish(m, n)
    local wall = system.monotime() - m.t0
    local cpu = os.clock() - m.cpu0
    io.write(("n=%d wall=%.6f cpu=%.6f hwm0=%d hwm=%d\n"):format(n, wall, cpu, m.hwm0, hwm()))
end

return _M
