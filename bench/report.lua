-- bench/report.lua: the final table of `make bench`, from the result lines
-- the benchmark scripts appended to BENCH_DIR/results.tsv
-- (section, measurement, value, unit), with what the numbers were measured on.
--
--   lua5.4 bench/report.lua build/bench-run/results.tsv

local util = require "bench.util"

local path = arg[1] or (util.DIR .. "/results.tsv")

local function first_line(cmd)
    local p = io.popen(cmd .. " 2>/dev/null")
    if not p then return "?" end
    local line = p:read("*l")
    p:close()
    return line or "?"
end

local function cpu_model()
    for line in io.lines("/proc/cpuinfo") do
        local model = line:match("^model name%s*:%s*(.+)$")
        if model then return model end
    end
    return "?"
end

local rows = {}
for line in io.lines(path) do
    local section, name, value, unit = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)$")
    if section then
        -- Text a script formatted itself ("1.00") stays as it is: the
        -- tostring of a number ends in a 0 after its point only as "1.0".
        local formatted = value:match("^%-?%d+%.%d*0$") and not value:match("^%-?%d+%.0$")
        rows[#rows + 1] = { section = section, name = name,
                            value = (not formatted and tonumber(value)) or value, unit = unit }
    end
end
if #rows == 0 then util.die("no results in %s", path) end

local width, value_width = 0, 0
for _, r in ipairs(rows) do
    width = math.max(width, #r.name)
    value_width = math.max(value_width, #util.fmt(r.value))
end

print()
print("== lua-ticketscloud benchmarks")
local lua_version = rawget(_G, "jit") and _G.jit.version or _VERSION
print(("   %s, %s CPUs (%s), %s, commit %s"):format(os.date("%Y-%m-%d %H:%M"), first_line("nproc"),
      cpu_model(), lua_version, first_line("git rev-parse --short HEAD")))
local section
for _, r in ipairs(rows) do
    if r.section ~= section then
        section = r.section
        print()
        print("  [" .. section .. "]")
    end
    print(("    %-" .. width .. "s  %" .. value_width .. "s  %s"):format(r.name, util.fmt(r.value), r.unit))
end
print()
