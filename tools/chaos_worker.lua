-- tools/chaos_worker.lua: one of the concurrent callers of the chaos run
-- (tools/chaos.lua starts them; docs/benchmarks.md, "Chaos run").
--
--   lua5.4 tools/chaos_worker.lua RUN_FILE WORKER
--
-- RUN_FILE is the run's settings, JSON written by tools/chaos.lua: the
-- sandbox (api, simple, key), the event and its unseated set, the file of seat
-- ticket ids, how many orders each worker makes, the seed and the client's
-- timeout. Worker WORKER (1, 2, ...) makes its orders one after another with
-- ticketscloud.flows.mixed_order through its own client, against a sandbox
-- that injects network faults, and writes one line per attempt to
-- DIR/worker-WORKER.tsv: what it asked and what it believes came of it.
--
-- What an attempt asks, drawn from the seed (the same run asks the same):
--   * first = "random" for odd attempts, "seats" for even ones;
--   * one seat (two in a quarter of the attempts) from the worker's own
--     part of the seat list; in about 3 % of the attempts the first seat is
--     instead the one the next worker wants for its attempt of the same
--     number, so that two flows compete for it (the loser must fail cleanly);
--   * one unseated ticket (two in a quarter of the attempts);
--   * about 10 % are cancelled by the caller once made, instead of finished.
--
-- What the caller believes, the column "belief":
--   done       mixed_order returned the order, finished
--   cancelled  the caller made the order and its order:cancel() succeeded
--   failed     mixed_order returned nil, err: by the flow's contract no
--              order of this attempt holds tickets
--   unknown    mixed_order said it could not tell (err.kind "unknown"; the
--              tag it put in the order is err.request_id), the caller's
--              cancel failed, or the client raised an error (kind "raised")

local cjson = require "cjson"
local tc = require "ticketscloud"
local flows = require "ticketscloud.flows"

local RUN_FILE, WORKER = arg[1], tonumber(arg[2])
if not (RUN_FILE and WORKER) then
    io.stderr:write("usage: chaos_worker.lua RUN_FILE WORKER\n")
    os.exit(2)
end

local function die(fmt, ...)
    io.stderr:write(("chaos worker %d: "):format(WORKER), fmt:format(...), "\n")
    os.exit(2)
end

local run
do
    local f = io.open(RUN_FILE) or die("cannot open %s", RUN_FILE)
    run = cjson.decode(f:read("*a"))
    f:close()
end

-- The seat list, in the order the catalogue's Seats listing gave it. Worker
-- w owns the part [(w - 1) * run.part + 1, w * run.part]: two seats for
-- each of its attempts.
local seats = {}
for line in io.lines(run.seats_file) do seats[#seats + 1] = line end
local function seat(worker, n)
    local id = seats[(worker - 1) * run.part + n]
    if not id then die("the seat list is too short for worker %d, seat %d", worker, n) end
    return id
end

local count = run.counts[WORKER] or die("no worker %d in %s", WORKER, RUN_FILE)
local neighbour = WORKER % run.workers + 1

-- What the attempts ask is drawn from a generator of the worker's own
-- (Park and Miller's minimal standard), seeded from the run's seed, so that
-- math.random is left to the client.
local state = (run.seed * 1000 + WORKER) % 2147483646 + 1
local function draw()
    state = state * 48271 % 2147483647
    return state / 2147483647
end

local CUSTOMER = { name = "Ivan Chaos", email = "chaos@example.com", phone = "+79991234576",
                   lang = "ru" }

-- What attempt k asks.
local function plan(k)
    local a = {
        id = ("w%d-%d"):format(WORKER, k),
        first = k % 2 == 1 and "random" or "seats",
        seats = { seat(WORKER, 2 * k - 1) },
        random = { [run.floor] = 1 },
        intent = "finish",
    }
    if draw() < 0.25 then a.seats[2] = seat(WORKER, 2 * k) end
    if draw() < 0.25 then a.random[run.floor] = 2 end
    if draw() < 0.10 then a.intent = "cancel" end
    if neighbour ~= WORKER and draw() < 0.03 then
        a.seats[1] = seat(neighbour, 2 * k - 1)
    end
    return a
end

-- The tag the client put into an order's vendor_data, if any.
local function request_id_of(order)
    local vd = type(order) == "table" and order.vendor_data
    local raw = type(vd) == "table" and vd.raw
    local id = type(raw) == "table" and raw.tc_request_id
    return type(id) == "string" and id or nil
end

local function describe(err)
    if type(err) == "table" then return err.kind or "?", tostring(err) end
    return "?", tostring(err)
end

-- Runs attempt a; returns what the caller believes: { belief =, order =,
-- request =, kind =, message = }.
local function attempt(client, a)
    local ok, order, err = pcall(flows.mixed_order, client, {
        event = run.event, seats = a.seats, random = a.random, first = a.first,
        customer = CUSTOMER, finish = a.intent == "finish",
        vendor_data = { order_id = a.id },
    })
    if not ok then
        return { belief = "unknown", kind = "raised", message = tostring(order) }
    end
    if not order then
        local kind, message = describe(err)
        local made = type(err) == "table" and err.order or nil
        return { belief = kind == "unknown" and "unknown" or "failed",
                 order = made and made.id, kind = kind, message = message,
                 request = type(err) == "table" and err.request_id or request_id_of(made) }
    end
    local out = { belief = "done", order = order.id, request = request_id_of(order) }
    if a.intent == "cancel" then
        local cancelled, cerr
        ok, cancelled, cerr = pcall(order.cancel, order)
        if not ok then
            out.belief, out.kind, out.message = "unknown", "raised", tostring(cancelled)
        elseif cancelled then
            out.belief = "cancelled"
        else
            out.belief = "unknown"
            out.kind, out.message = describe(cerr)
        end
    end
    return out
end

local client, err = tc.new{ key = run.key, api = run.api, simple = run.simple,
                            timeout = run.timeout }
if not client then die("tc.new: %s", tostring(err)) end

local path = ("%s/worker-%d.tsv"):format(run.dir, WORKER)
local out = io.open(path, "w") or die("cannot write %s", path)
out:write("# attempt\tfirst\tintent\tseats\trandom\tbelief\torder\trequest\tkind\terror\n")

local function field(v)
    if v == nil or v == "" then return "-" end
    return (tostring(v):gsub("[%c]", " "))
end

for k = 1, count do
    local a = plan(k)
    local r = attempt(client, a)
    local random = {}
    for set, n in pairs(a.random) do random[#random + 1] = set .. "=" .. n end
    out:write(table.concat({ a.id, a.first, a.intent, table.concat(a.seats, ","),
                             table.concat(random, ","), r.belief, field(r.order),
                             field(r.request), field(r.kind), field(r.message) }, "\t"), "\n")
    out:flush()
end
out:close()
client:close()
