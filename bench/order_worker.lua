-- bench/order_worker.lua: one of the concurrent clients of bench/load.lua.
--
--   lua5.4 bench/order_worker.lua API SIMPLE KEY EVENT FLOOR SECTOR COUNT
--
-- Makes COUNT mixed orders (ticketscloud.flows.mixed_order: one seat of
-- SECTOR plus one unseated ticket of the set FLOOR), alternating the two
-- sequences, and leaves them in three states so that the inventory check
-- sees all of them: every 5th order is cancelled, of the others every 4th
-- is left executed (its tickets reserved), the rest are finished (sold).
-- Each worker takes seats of its own sector, so workers never want the same
-- seat; they all draw from the same unseated stock.
--
-- Prints one line per order, "order ID STATUS SECONDS TICKETS", then
-- "done START END REQUESTS CONNECTS" (START and END on the monotonic clock,
-- which all processes share). Any failed operation ends it with status 1.

local flows = require "ticketscloud.flows"
local tc = require "ticketscloud"
local util = require "bench.util"

local check, now = util.check, util.now

local unpack = table.unpack or unpack -- Lua 5.4, LuaJIT
local api, simple, key, event, floor, sector, count = unpack(arg, 1, 7)
count = tonumber(count)
if not (api and simple and key and event and floor and sector and count) then
    util.die("usage: order_worker.lua API SIMPLE KEY EVENT FLOOR SECTOR COUNT")
end

local client = check(tc.new{ key = key, api = api, simple = simple, timeout = 60 })

local seats = {}
local stream = check(client:seats{ event = event, sector = sector, status = "VACANT" })
for seat in stream do
    seats[#seats + 1] = seat.ticket
    if #seats == count then break end
end
stream:close()
if #seats < count then util.die("sector %s has only %d vacant seats", sector, #seats) end

local start = now()
for k = 1, count do
    local first = k % 2 == 1 and "random" or "seats"
    local t0 = now()
    local order, err = flows.mixed_order(client, {
        event = event, seats = { seats[k] }, random = { [floor] = 1 },
        first = first, finish = k % 5 ~= 0 and k % 4 ~= 0 })
    check(order, err, "flows.mixed_order (first = " .. first .. ")")
    if k % 5 == 0 then
        local ok, cancel_err = order:cancel()
        check(ok, cancel_err, "order:cancel")
    end
    io.write(("order %s %s %.6f %d\n"):format(order.id, order.status, now() - t0, #order.tickets))
end
local stop = now()

local stats = check(client.http:stats())
io.write(("done %.6f %.6f %d %d\n"):format(start, stop, stats.requests, stats.connects))
client:close()
