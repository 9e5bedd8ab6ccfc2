-- The order example: one mixed order (a seated ticket plus an unseated one)
-- built both ways, step by step, then finished.
--
--   path A: create with an unseated ticket (random), add the seat, finish
--   path B: create with the seat, add an unseated ticket (random), finish
--
-- By default it starts tc-sandbox, uses the order example's event and seat,
-- and finishes both orders. With TC_KEY set it talks to Ticketscloud instead
-- (TC_API, TC_SIMPLE pick the hosts) and needs TC_EVENT, an event with a
-- seated and an unseated set: the sets and a vacant seat are found via
-- tc-simple. A finished order is a sale the distributor pays for, so there
-- the orders are cancelled at the end unless TC_FINISH=1.

local tc = require "ticketscloud"
local flows = require "ticketscloud.flows"

-- An environment variable; empty counts as unset.
local function getenv(name)
    local v = os.getenv(name)
    if v ~= "" then return v end
end

local sandbox, EVENT, SEAT, FINISH
local opts = { key = getenv("TC_KEY"), api = getenv("TC_API"), simple = getenv("TC_SIMPLE") }
if opts.key then
    EVENT = getenv("TC_EVENT")
    if not EVENT then
        io.stderr:write("error: with TC_KEY set, TC_EVENT must name the event to order from\n")
        os.exit(1)
    end
    FINISH = getenv("TC_FINISH") == "1"
else
    -- The order example's fixtures (see the sandbox's examples/catalog.json).
    EVENT = getenv("TC_EVENT") or "5d7134962110d30a34e95b96"
    SEAT = "5d7134962110d30a34e95cfe" -- row 2 seat 14, taken when still vacant
    FINISH = true
    -- The sandbox logs every request; TC_SANDBOX_LOG=/dev/stderr shows them.
    sandbox = assert(require("ticketscloud.sandbox").start{ log = getenv("TC_SANDBOX_LOG") or "/dev/null" })
    opts = { key = sandbox.key, api = sandbox.api, simple = sandbox.simple }
end

-- Print every request the helpers send: each body is the desired state, in full.
opts.trace = function(method, path, body, status)
    print(("  > %s %s %s -> %s"):format(method, path, body or "", status or "no answer"))
end

local client = assert(tc.new(opts))

local function die(err)
    print("error: " .. tostring(err))
    client:close()
    if sandbox then sandbox:stop() end
    os.exit(1)
end

-- Step 0: the event and its sets (tc-simple Events).
local events = assert(client:events{ ids = { EVENT } })
local event = events()
if not event then die(events:error() or "event " .. EVENT .. " not found") end
local unseated
for _, set in ipairs(event.sets) do
    if not set.with_seats and set.amount_vacant > 0 and not unseated then unseated = set end
end
if not unseated then die("the event has no unseated set with free tickets") end
print(("event %s %q: unseated set %s %q"):format(event.id, event.name, unseated.id, unseated.name))

-- Step 1: a vacant seat (tc-simple Seats): on the sandbox the order
-- example's own seat while it is free, else the first vacant one.
local function first_seat(request)
    local seats = assert(client:seats(request))
    local seat = seats()
    seats:close()
    if not seat and seats:error() then die(seats:error()) end
    return seat
end

local function vacant_seat()
    local seat = SEAT and first_seat{ event = EVENT, tickets = { SEAT }, status = "VACANT" }
        or first_seat{ event = EVENT, status = "VACANT" }
    if not seat then die("no vacant seat") end
    print(("seat: ticket %s, sector %s row %s seat %s"):format(seat.ticket, seat.sector, seat.row,
                                                              seat.number))
    return seat
end

-- Pads to a width in characters, not bytes ("Фан зона" is 15 bytes).
local function pad(s, width)
    local len = select(2, tostring(s):gsub("[^\128-\191]", ""))
    return s .. (" "):rep(width - len)
end

local function show(order)
    local names = {}
    for id, set in pairs(order.refs and order.refs.sets or {}) do names[id] = set.name end
    print(("  order %s  status %s  expires %s"):format(order.id, order.status, order.expired_after))
    print(("  %-24s %-10s %-14s %10s %10s %10s  %s"):format("ticket", "set", "seat", "price",
                                                         "extra", "full", "barcode"))
    for _, t in ipairs(order.tickets) do
        local seat = t.seat and ("row %s seat %s"):format(t.seat.row, t.seat.number) or "-"
        local barcode = t.barcode ~= tc.null and t.barcode or "-"
        print(("  %-24s %s %-14s %10s %10s %10s  %s"):format(t.id, pad(names[t.set] or t.set, 10), seat,
                                                          t.price, t.extra, t.full, barcode))
    end
    local v = order.values
    print(("  %-24s %-10s %-14s %10s %10s %10s"):format("total", "", "", v.price, v.extra, v.full))
end

local function run(title, first)
    print()
    print(("== %s"):format(title))
    local seat = vacant_seat()
    local order, err = flows.mixed_order(client, {
        event = EVENT,
        seats = { seat.ticket },
        random = { [unseated.id] = 1 },
        first = first,
        finish = FINISH,
        on_step = function(step, o)
            print("-- " .. step)
            show(o)
        end,
    })
    if not order then die(err) end
    return order
end

local a = run("path A: unseated first (create with random, add the seat)", "random")
local b = run("path B: seated first (create with the seat, add random)", "seats")

print()
for _, o in ipairs{ a, b } do
    if not FINISH then
        -- Not paid for: the tickets go back on sale.
        local ok, err = o:cancel()
        if not ok then die(err) end
    end
    -- The breakdown lists the unseated tickets first, then the seated ones,
    -- whichever way the order was built.
    local parts = {}
    for _, seated in ipairs{ false, true } do
        for _, t in ipairs(o.tickets) do
            if (t.seat ~= nil) == seated then parts[#parts + 1] = t.full end
        end
    end
    local barcodes = {}
    for _, t in ipairs(o.tickets) do
        if t.barcode ~= tc.null then barcodes[#barcodes + 1] = t.barcode end
    end
    print(("order %s %s: full %s (%s), code %s, barcodes %s"):format(
        o.id, o.status, o.values.full, table.concat(parts, " + "), tostring(o.code),
        #barcodes > 0 and table.concat(barcodes, " ") or "-"))
end

client:close()
if sandbox then sandbox:stop() end
