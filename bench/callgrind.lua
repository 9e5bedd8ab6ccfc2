-- bench/callgrind.lua: instructions per operation, counted by valgrind's
-- callgrind. Unlike seconds they repeat from run to run and machine to
-- machine, so they show what a change to the code did.
--
-- Each operation of bench/ops.lua runs twice under callgrind, LOW and HIGH
-- times; (instructions(HIGH) - instructions(LOW)) / (HIGH - LOW) is the cost
-- of one operation, without Lua's start-up and the loading of the module.
-- The cost includes the operation's share of garbage collection.
--
-- Lua seeds its string hashes afresh in every process, so table layouts, and
-- with them a few hundred instructions an operation, vary from run to run:
-- each count is the median of RUNS runs.

local util = require "bench.util"

local LOW, HIGH = 1000, 6000
local RUNS = tonumber(os.getenv("BENCH_CALLGRIND_RUNS") or "") or 5
local SECTION = "instructions"
local OPS = {
    { "decode-seat", "decode one v3.Seat (core.decode)" },
    { "create-body", "build a create-order request (random)" },
    { "add-tickets-body", "build an add-tickets PATCH (2 held + 1)" },
    { "read-answer", "read one order answer (decode, wrap, verify)" },
}

-- Instructions of one run of bench/ops.lua under callgrind.
local function instructions(op, count)
    local cmd = ("valgrind --tool=callgrind --callgrind-out-file=/dev/null %s bench/ops.lua %s %d 2>&1")
        :format(util.LUA, op, count)
    local p = util.check(io.popen(cmd), "cannot run", "valgrind")
    local out = p:read("*a")
    local ok = p:close()
    local collected = out:match("Collected : (%d+)")
    if not ok or not collected then util.die("valgrind %s %d failed:\n%s", op, count, out) end
    return tonumber(collected)
end

-- The median of RUNS counts.
local function median_instructions(op, count)
    local counts = {}
    for i = 1, RUNS do counts[i] = instructions(op, count) end
    table.sort(counts)
    return counts[math.floor((RUNS + 1) / 2)]
end

util.section(("instructions per operation (callgrind, %d vs %d repetitions, median of %d)")
    :format(HIGH, LOW, RUNS))
for _, entry in ipairs(OPS) do
    local op, name = entry[1], entry[2]
    local per_op = (median_instructions(op, HIGH) - median_instructions(op, LOW)) / (HIGH - LOW)
    util.result(SECTION, name, per_op, "instructions")
end
