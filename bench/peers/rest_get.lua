-- bench/peers/rest_get.lua: the module's side of the REST comparison of
-- bench/peers.lua, the same loop as rest_get.c and rest_get.py: N GETs of
-- one order with client:order(id) (libcurl keep-alive, JSON decoded into
-- Lua tables, the answer checked and wrapped as an order object), each
-- checked to be the order asked for. Prints
--
--   n=N wall=SECONDS cpu=SECONDS hwm0=KB hwm=KB
--
--   lua5.4 bench/peers/rest_get.lua URL KEY ORDER_ID N

local tc = require "ticketscloud"
local peer = require "bench.peers.peer"

local url, key, id, n = arg[1], arg[2], arg[3], tonumber(arg[4] or "")
if not (url and key and id and n) then peer.die("usage: rest_get.lua URL KEY ORDER_ID N") end

local client = peer.check(tc.new{ key = key, api = url })

local function get()
    local order = peer.check(client:order(id))
    if order.id ~= id then peer.die("the answer is order %s, not %s", tostring(order.id), id) end
end

get() -- opens the connection outside the timing
local m = peer.start()
for _ = 1, n do get() end
peer.finish(m, n)
client:close()
