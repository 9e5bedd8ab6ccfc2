-- Lists the vacant seats of an event, grouped by set.
--
--   lua5.4 examples/seats.lua [EVENT_ID]
--
-- By default it starts tc-sandbox and uses the order example's event. With
-- TC_KEY set it asks Ticketscloud instead (TC_API, TC_SIMPLE pick the hosts).

local tc = require "ticketscloud"

local getenv = os.getenv
local EVENT = arg[1] or getenv("TC_EVENT") or "5d7134962110d30a34e95b96"

local sandbox
local opts = { key = getenv("TC_KEY"), api = getenv("TC_API"), simple = getenv("TC_SIMPLE") }
if not opts.key then
    sandbox = assert(require("ticketscloud.sandbox").start())
    opts = { key = sandbox.key, api = sandbox.api, simple = sandbox.simple }
end
local client = assert(tc.new(opts))

-- Set names and prices come with the event.
local events = assert(client:events{ ids = { EVENT } })
local event = events()
local sets = {}
for _, set in ipairs(event and event.sets or {}) do sets[set.id] = set end

local seats = assert(client:seats{ event = EVENT, status = "VACANT" })
local count, by_set = 0, {}
for seat in seats do
    count = count + 1
    by_set[seat.set] = (by_set[seat.set] or 0) + 1
    if count <= 20 then
        local set = sets[seat.set]
        print(("%s  %-8s sector %s  row %3s  seat %3s"):format(seat.ticket, set and set.name or seat.set,
                                                             seat.sector, seat.row, seat.number))
    end
end

local err = seats:error() or events:error()
if err then
    print("error: " .. tostring(err))
else
    if count > 20 then print(("... and %d more"):format(count - 20)) end
    for id, n in pairs(by_set) do
        print(("%d vacant in set %s"):format(n, sets[id] and sets[id].name or id))
    end
end

client:close()
if sandbox then sandbox:stop() end
if err then os.exit(1) end
