-- The README's picture of the demo hall (make hall): a sandbox, a few sales
-- and holds made with tc, then `tc map` of the order example's event.
--
--   lua5.4 tools/hall.lua docs/hall.svg
--
-- Run from the checkout with the module on LUA_PATH and LUA_CPATH (the
-- Makefile sets them). The sales are always the same seats and the picture
-- holds no time and no order id, so the same code draws the same bytes:
-- spec/hall_spec.lua checks that docs/hall.svg is what this draws.

local sandbox = require "ticketscloud.sandbox"

local unpack = table.unpack or unpack -- luacheck: ignore 143

local OUT = arg[1] or "docs/hall.svg"
local LUA = arg[-1] or "lua5.4"
local EVENT = "5d7134962110d30a34e95b96"

local function quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- The ticket of seat n in row r of sector A2 (the catalog numbers them in
-- order from 5d7134962110d30a34e95cdd, row 1 seat 1).
local function seat(r, n)
    return ("5d7134962110d30a34e95%03x"):format(0xcdd + (r - 1) * 20 + (n - 1))
end

local function seats(r, from, to)
    local t = {}
    for n = from, to do t[#t + 1] = seat(r, n) end
    return t
end

local sb = assert(sandbox.start{ seed = 1, log = "/dev/null" })
local env = ("TC_KEY=%s TC_API=%s TC_SIMPLE=%s"):format(quote(sb.key), quote(sb.api), quote(sb.simple))

local function tc(...)
    local args = {}
    for i, a in ipairs{ ... } do args[i] = quote(a) end
    local cmd = ("env %s %s bin/tc %s > /dev/null"):format(env, quote(LUA), table.concat(args, " "))
    local ok = os.execute(cmd)
    if not (ok == true or ok == 0) then
        sb:stop()
        io.stderr:write("tools/hall.lua: failed: tc ", table.concat({ ... }, " "), "\n")
        os.exit(1)
    end
end

local function order(list, ...)
    local args = { "order", "create", EVENT }
    for _, t in ipairs(list) do args[#args + 1] = t end
    for _, a in ipairs{ ... } do args[#args + 1] = a end
    tc(unpack(args))
end

-- Sold: the best four seats, the back rows' ends, the standing zones partly.
order({}, "--adjacent", "4", "--finish")
order(seats(5, 1, 8), "--finish")
order(seats(4, 17, 20), "--random", "Фан зона=40", "--finish")
order({}, "--random", "VIP=6", "--finish")
-- Held (an order not finished yet): the order example's seat and a few more.
order({ seat(2, 14), seat(2, 15) })
order(seats(1, 15, 18))
-- Drawn with the best three seats left selected.
tc("map", EVENT, "--adjacent", "3", "-o", OUT)
sb:stop()
print("wrote " .. OUT)
