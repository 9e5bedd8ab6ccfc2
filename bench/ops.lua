-- bench/ops.lua: one operation of the module, repeated, for instruction
-- counts under valgrind (bench/callgrind.lua runs it).
--
--   lua5.4 bench/ops.lua OP COUNT
--
-- OP is one of
--   decode-seat       core.decode of one v3.Seat (a reserved seat: every field set)
--   create-body       rest.create_order{ event, random = { [set] = 1 } }: POST body as JSON
--   add-tickets-body  the PATCH of order:add_tickets for an order holding two
--                     tickets: core.order_tickets_body + rest.patch_order
--   read-answer       what the client does with one order answer: rest.decode
--                     of the JSON text, order.wrap, and order.verify (tickets held,
--                     status, money adding up)
--
-- The order of add-tickets-body and read-answer is BENCH_DIR/order-answer.json,
-- a real answer that bench/orders.lua saves. No I/O happens inside the loop.

local cjson = require "cjson"
local core = require "ticketscloud.core"
local orders = require "ticketscloud.order"
local rest = require "ticketscloud.rest"
local util = require "bench.util"

local op, count = arg[1], tonumber(arg[2] or "")
if not count then util.die("usage: ops.lua OP COUNT") end

local SEAT = {
    event = "6a0000050000000000000001", set = "6a0000060000000000000001",
    ticket = "6a0000070000000000000001", sector = "6a0000040000000000000001",
    row = "12", number = "34", status = "RESERVED", ticket_reserved_till = 1900000000,
}
local NEW_SEAT = "6a0000070000000000000002"

-- The saved answer of a finished order (two tickets), as the server's JSON.
local function answer_text()
    local f = io.open(util.DIR .. "/order-answer.json")
    if not f then util.die("%s/order-answer.json is missing: run bench/orders.lua first", util.DIR) end
    local text = f:read("*a")
    f:close()
    return text
end

-- Each op returns the function to repeat; it is run once and checked first.
local OPS = {}

function OPS.decode_seat()
    local bytes = util.check(core.encode("v3.Seat", SEAT))
    return function()
        return core.decode("v3.Seat", bytes)
    end, function(seat)
        return seat.ticket == SEAT.ticket and seat.status == "RESERVED"
    end
end

function OPS.create_body()
    local args = { event = SEAT.event, random = { [SEAT.set] = 1 } }
    return function()
        return rest.create_order(args)
    end, function(req)
        return req.method == "POST" and req.body:find('"random"', 1, true)
    end
end

function OPS.add_tickets_body()
    local data = cjson.decode(answer_text()).data
    local add = { NEW_SEAT }
    return function()
        local list = core.order_tickets_body(data.tickets, add)
        return rest.patch_order(data.id, { tickets = rest.array(list) })
    end, function(req)
        return req.method == "PATCH" and req.body:find(NEW_SEAT, 1, true)
    end
end

function OPS.read_answer()
    local text = answer_text()
    local ids = core.order_held(cjson.decode(text).data.tickets)
    local want = { tickets = ids, status = "done" }
    local client = {} -- wrap only keeps it for later requests
    return function()
        local doc = rest.decode(200, text)
        return orders.verify(orders.wrap(client, doc), doc, want)
    end, function(order, err)
        if not order then util.die("verify: %s", tostring(err)) end
        return order.status == "done" and #order.tickets == #ids
    end
end

local make = OPS[(op or ""):gsub("-", "_")]
if not make then util.die("unknown op %q", tostring(op)) end
local fn, ok = make()
if not ok(fn()) then util.die("%s gave a wrong result", op) end
for _ = 1, count do fn() end
