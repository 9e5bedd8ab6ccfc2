-- Prints the last line of a test run: "N passed, N failed", from the TAP
-- counts of the spec runs and the ok / not ok lines of the other steps.
-- Exits non-zero when anything failed or nothing ran.
local dir = assert(arg[1], "usage: summary.lua DIR")
local passed, failed = 0, 0

local counts = io.open(dir .. "/counts")
if counts then
    for line in counts:lines() do
        local p, f = line:match("^(%d+) (%d+)$")
        passed, failed = passed + tonumber(p), failed + tonumber(f)
    end
    counts:close()
end

for line in io.lines(dir .. "/steps") do
    if line:match("^ok ") then
        passed = passed + 1
    else
        failed = failed + 1
        print(line)
    end
end

print(("%d passed, %d failed"):format(passed, failed))
os.exit((failed == 0 and passed > 0) and 0 or 1)
