-- ticketscloud.snapshot against real sandboxes: an event snapshot from
-- sandbox A, after sales and holds there, starts sandbox B, and B's Events,
-- Seats, Venues and Maps for the event are A's, holds aside (they become
-- vacant, or sold with holds = "sold"). On the example catalog and on a
-- generated 20,000-seat event.

local tc = require "ticketscloud"
local json = require "ticketscloud.json"
local sandbox = require "ticketscloud.sandbox"
local snapshot = require "ticketscloud.snapshot"
local flows = require "ticketscloud.flows"

local EVENT = "5d7134962110d30a34e95b96"
local FAN = "5d7135112110d30a34e97e2d"   -- unseated
local VIP = "5d713505255895db3c30b0c5"   -- unseated
local A2 = "5d71353b2110d30a34e97e31"    -- seated

local function client_of(sb)
    return assert(tc.new{ key = sb.key, api = sb.api, simple = sb.simple, timeout = 60 })
end

local function list(client, method, request)
    local stream = assert(client[method](client, request))
    local out = {}
    for m in stream do out[#out + 1] = m end
    assert.is_nil(stream:error())
    return out
end

-- What the round trip compares: the event's messages of the four methods.
local function messages(client, event)
    local e = list(client, "events", { ids = { event } })[1]
    local out = { events = { e }, seats = list(client, "seats", { event = event }) }
    out.venues = e.venue ~= "" and list(client, "venues", { ids = { e.venue } }) or {}
    out.maps = e.map ~= "" and list(client, "maps", { ids = { e.map } }) or {}
    return out
end

-- A's messages as B must give them: every RESERVED seat vacant (or sold),
-- and the counts of its set and event as they then are.
local function without_holds(m, holds)
    local freed = {}
    for _, seat in ipairs(m.seats) do
        if seat.status == "RESERVED" then
            seat.status = holds == "sold" and "SOLD" or "VACANT"
            seat.ticket_reserved_till = nil
            if holds ~= "sold" then freed[seat.set] = (freed[seat.set] or 0) + 1 end
        end
    end
    local e = m.events[1]
    for _, set in ipairs(e.sets) do
        set.amount_vacant = set.amount_vacant + (freed[set.id] or 0)
        e.tickets_amount_vacant = e.tickets_amount_vacant + (freed[set.id] or 0)
    end
    return m
end

-- Compares message by message, as sorted JSON text.
local function same(expected, got)
    for _, method in ipairs{ "events", "seats", "venues", "maps" } do
        assert.equal(#expected[method], #got[method], method)
        for i = 1, #expected[method] do
            local want = assert(json.encode(expected[method][i], true))
            local have = assert(json.encode(got[method][i], true))
            if want ~= have then
                assert.equal(want, have, method .. "[" .. i .. "]")
            end
        end
    end
end

-- Starts sandbox B on a snapshot of `event` taken from client A.
local function start_b(a_client, event, opts)
    local path = os.tmpname()
    opts = opts or {}
    opts.events = { event }
    local cat = assert(snapshot.take(a_client, opts))
    assert(snapshot.write(cat, path))
    local sb = assert(sandbox.start{ catalog = path, log = "/dev/null" })
    os.remove(path)
    return sb, client_of(sb), cat
end

describe("snapshot of the example catalog", function()
    local a, ac, held_seat

    lazy_setup(function()
        a = assert(sandbox.start{ log = "/dev/null" })
        ac = client_of(a)
        local seats = list(ac, "seats", { event = EVENT, sets = { A2 }, status = "VACANT" })
        -- Sold: two seats and two unseated tickets; held: one seat and one VIP ticket.
        local sold = assert(ac:create_order{ event = EVENT, tickets = { seats[1].ticket, seats[2].ticket } })
        assert(sold:add_random{ [FAN] = 2 })
        assert(sold:finish())
        held_seat = seats[3].ticket
        local held = assert(ac:create_order{ event = EVENT, tickets = { held_seat } })
        assert(held:add_random{ [VIP] = 1 })
    end)

    lazy_teardown(function()
        ac:close()
        assert.is_true(a:stop())
    end)

    it("starts a sandbox that serves the event as A does, holds made vacant", function()
        local b, bc = start_b(ac, EVENT)
        local want = without_holds(messages(ac, EVENT), "vacant")
        local got = messages(bc, EVENT)
        same(want, got)
        -- the sales came across: 2 seats sold, the held seat vacant
        local counts = {}
        for _, s in ipairs(got.seats) do counts[s.status] = (counts[s.status] or 0) + 1 end
        assert.same({ SOLD = 2, VACANT = 98 }, counts)
        bc:close()
        assert.is_true(b:stop())
    end)

    it("makes holds sold with holds = \"sold\", and every ticket vacant with reset", function()
        local b, bc = start_b(ac, EVENT, { holds = "sold" })
        same(without_holds(messages(ac, EVENT), "sold"), messages(bc, EVENT))
        local seat = list(bc, "seats", { event = EVENT, tickets = { held_seat } })[1]
        assert.equal("SOLD", seat.status)
        bc:close()
        assert.is_true(b:stop())

        b, bc = start_b(ac, EVENT, { reset = true })
        local e = list(bc, "events", { ids = { EVENT } })[1]
        assert.equal(e.tickets_amount, e.tickets_amount_vacant)
        for _, s in ipairs(list(bc, "seats", { event = EVENT })) do assert.equal("VACANT", s.status) end
        bc:close()
        assert.is_true(b:stop())
    end)

    it("writes a catalog that sells: a mixed order on the snapshot", function()
        local b, bc = start_b(ac, EVENT)
        local seat = list(bc, "seats", { event = EVENT, sets = { A2 }, status = "VACANT" })[1]
        local order = assert(flows.mixed_order(bc, { event = EVENT, seats = { seat.ticket },
                                                     random = { [FAN] = 1 }, finish = true }))
        assert.equal("done", order.status)
        assert.equal("SOLD", list(bc, "seats", { event = EVENT, tickets = { seat.ticket } })[1].status)
        bc:close()
        assert.is_true(b:stop())
    end)

    it("carries the references, money and times exactly", function()
        local cat = assert(snapshot.take(ac, { events = { EVENT } }))
        local e = cat.events[1]
        assert.equal(snapshot.DISTRIBUTOR, cat.distributor)
        assert.equal("Europe/Moscow", e.timezone)
        assert.equal(1, #cat.venues)
        assert.equal(1, #cat.maps)
        assert.equal(1, #cat.cities)
        assert.equal(1, #cat.countries)
        for _, set in ipairs(e.sets) do
            assert.is_nil(set.amount)
            assert.is_nil(set.amount_vacant)
            if set.id == FAN then
                assert.same({ count = 200, serial = "TKT", first_number = 1, sold = 2 }, set.stock)
            elseif set.id == VIP then
                assert.same({ count = 30, serial = "TKT", first_number = 1, sold = 1 }, set.stock)
            end
        end
        assert.equal(560000, e.sets[1].rules[1].simple.price)
        assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$", e.updated_at)
        assert.matches("Z$", e.lifetime.start)
    end)

    it("refuses bad options and unknown events", function()
        local _, err = snapshot.take(ac, { events = {} })
        assert.equal("invalid", err.kind)
        _, err = snapshot.take(ac, { events = { "xyz" } })
        assert.equal("invalid", err.kind)
        _, err = snapshot.take(ac, { events = { EVENT }, holds = "keep" })
        assert.equal("invalid", err.kind)
        _, err = snapshot.take(ac, { events = { EVENT, "5d7134962110d30a34e95b00" } })
        assert.equal("not_found", err.kind)
        assert.matches("5d7134962110d30a34e95b00", tostring(err))
        assert.has_error(function() snapshot.take(ac, { events = EVENT }) end)
        local ok
        ok, err = snapshot.write({}, "/nonexistent/dir/cat.json")
        assert.is_nil(ok)
        assert.equal("invalid", err.kind)
    end)
end)

describe("snapshot of a 20,000-seat event", function()
    local path, a, ac, event

    lazy_setup(function()
        path = os.tmpname()
        assert(os.execute(("lua5.4 tools/gen-catalog.lua --seats 20000 --stock 500 --events 0 --out %s")
                          :format(path)))
        a = assert(sandbox.start{ catalog = path, log = "/dev/null" })
        ac = client_of(a)
        for e in assert(ac:events()) do
            if e.name == "Benchmark Arena Show" then event = e.id end
        end
        assert(event)
    end)

    lazy_teardown(function()
        ac:close()
        assert.is_true(a:stop())
        os.remove(path)
    end)

    it("round-trips every message, with sales and a hold, and reports progress", function()
        local e = list(ac, "events", { ids = { event } })[1]
        local seated, unseated
        for _, set in ipairs(e.sets) do
            if set.with_seats then seated = seated or set.id else unseated = unseated or set.id end
        end
        local seats = list(ac, "seats", { event = event, sets = { seated }, status = "VACANT" })
        local sold = assert(ac:create_order{ event = event,
                                             tickets = { seats[10].ticket, seats[20000].ticket } })
        assert(sold:add_random{ [unseated] = 3 })
        assert(sold:finish())
        assert(ac:create_order{ event = event, tickets = { seats[500].ticket } })

        local seen = {}
        local b, bc = start_b(ac, event, { progress = function(what, n) seen[#seen + 1] = what .. n end })
        assert.equal("seats1000", seen[1])
        assert.equal("seats20000", seen[#seen])
        local want = without_holds(messages(ac, event), "vacant")
        assert.equal(20000, #want.seats)
        same(want, messages(bc, event))
        bc:close()
        assert.is_true(b:stop())
    end)
end)

describe("the catalog's sold tickets", function()
    local BIN = os.getenv("TC_SANDBOX") or "build/tc-sandbox"

    local function catalog_with(edit)
        local f = assert(io.open("examples/catalog.json"))
        local cat = assert(json.decode(f:read("a")))
        f:close()
        for _, e in ipairs(cat.events) do
            if e.id == EVENT then edit(e) end
        end
        local path = os.tmpname()
        f = assert(io.open(path, "w"))
        local text = assert(json.encode(cat))
        f:write(text)
        f:close()
        return path
    end

    local function set_of(e, id)
        for _, s in ipairs(e.sets) do
            if s.id == id then return s end
        end
    end

    local function refused(edit, words)
        local path = catalog_with(edit)
        local p = assert(io.popen("timeout 20 " .. BIN .. " --catalog " .. path ..
                                  " --http 127.0.0.1:0 --grpc 127.0.0.1:0 2>&1; echo \"exit $?\""))
        local out = p:read("a")
        p:close()
        os.remove(path)
        assert.matches("\nexit 2\n$", out)
        assert.is_truthy(out:find(words, 1, true), out)
    end

    it("start sold: seats by status, stock by count", function()
        local path = catalog_with(function(e)
            local a2 = set_of(e, A2)
            a2.tickets[1].status = "SOLD"
            a2.tickets[2].status = "VACANT"
            set_of(e, VIP).stock.sold = 30
        end)
        local sb = assert(sandbox.start{ catalog = path, log = "/dev/null" })
        os.remove(path)
        local c = client_of(sb)
        local sold = list(c, "seats", { event = EVENT, status = "SOLD" })
        assert.equal(1, #sold)
        assert.is_nil(sold[1].ticket_reserved_till)
        local e = list(c, "events", { ids = { EVENT } })[1]
        for _, set in ipairs(e.sets) do
            if set.id == VIP then assert.equal(0, set.amount_vacant) end
            if set.id == A2 then assert.equal(99, set.amount_vacant) end
        end
        -- a sold ticket cannot be had, and none of a sold-out stock
        local _, err = c:create_order{ event = EVENT, tickets = { sold[1].ticket } }
        assert.equal("api", err.kind)
        _, err = c:create_order{ event = EVENT, random = { [VIP] = 1 } }
        assert.equal("api", err.kind)
        assert(c:create_order{ event = EVENT, random = { [FAN] = 1 } }):cancel()
        c:close()
        assert.is_true(sb:stop())
    end)

    it("refuses a status other than VACANT or SOLD, and sold beyond the count", function()
        refused(function(e) set_of(e, A2).tickets[1].status = "RESERVED" end,
                "'status' must be \"VACANT\" or \"SOLD\"")
        refused(function(e) set_of(e, A2).tickets[1].status = 2 end,
                "'status' must be \"VACANT\" or \"SOLD\"")
        refused(function(e) set_of(e, VIP).stock.sold = 31 end,
                "'sold' must be an integer from 0 to 'count'")
        refused(function(e) set_of(e, VIP).stock.sold = -1 end,
                "'sold' must be an integer from 0 to 'count'")
    end)
end)
