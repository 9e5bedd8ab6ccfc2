-- bench/peers/seats.lua: the module's side of the Seats comparison of
-- bench/peers.lua, the same walk as seats.c and seats.py: client:seats{}
-- over one event, each seat decoded into a Lua table and checked (a ticket
-- id). A first call of one seat opens the channel; the walk is timed. Prints
--
--   n=SEATS wall=SECONDS cpu=SECONDS hwm0=KB hwm=KB
--
--   lua5.4 bench/peers/seats.lua http://HOST:PORT KEY EVENT [LIMIT]
--
-- With LIMIT the walk stops after LIMIT seats and closes the stream.

local tc = require "ticketscloud"
local peer = require "bench.peers.peer"

local simple, key, event, limit = arg[1], arg[2], arg[3], tonumber(arg[4] or "")
if not (simple and key and event) then peer.die("usage: seats.lua http://HOST:PORT KEY EVENT [LIMIT]") end

-- api is never used: only the catalogue is read.
local client = peer.check(tc.new{ key = key, api = "http://127.0.0.1:9", simple = simple,
                                  timeout = 600 })

local function walk(max)
    local stream = peer.check(client:seats{ event = event })
    local n = 0
    for seat in stream do
        if #seat.ticket ~= 24 then peer.die("seat %d has no ticket id", n + 1) end
        n = n + 1
        if max and n >= max then break end
    end
    local err = stream:error()
    if err then peer.die("the stream failed after %d seats: %s", n, tostring(err)) end
    stream:close()
    return n
end

walk(1) -- opens the channel outside the timing
local m = peer.start()
local n = walk(limit)
peer.finish(m, n)
client:close()
