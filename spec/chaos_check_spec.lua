-- tools/chaos_check.lua: the chaos run's checker finds nothing in a
-- consistent run and fails each of its checks when what it checks is broken.
-- No sandbox: check() is a pure function of what was read.
local checker = require "tools.chaos_check"
local core = require "ticketscloud.core"

-- A small run where everything agrees: four attempts (done, cancelled,
-- failed, unknown resolved to done) on an event with a seated set S of 4
-- seats and an unseated set F of 10 tickets.
local function consistent()
    local function order(id, status, request, tickets)
        local list = {}
        for i, t in ipairs(tickets) do list[i] = { id = t[1], set = t[2] } end
        return { id = id, status = status, request = request, tickets = list }
    end
    return {
        attempts = {
            { id = "w1-1", seats = { "t1" }, random = { F = 1 }, belief = "done", order = "o1",
              request = "r1" },
            { id = "w1-2", seats = { "t2" }, random = { F = 2 }, belief = "cancelled", order = "o2",
              request = "r2" },
            { id = "w1-3", seats = { "t3" }, random = { F = 1 }, belief = "failed", order = "o3",
              request = "r3", kind = "api" },
            { id = "w1-4", seats = { "t4" }, random = { F = 1 }, belief = "unknown", request = "r4",
              kind = "unknown" },
        },
        resolved = { ["w1-4"] = { order = "o4", status = "done" } },
        orders = {
            order("o1", "done", "r1", { { "t1", "S" }, { "u1", "F" } }),
            order("o2", "cancelled", "r2", { { "t2", "S" }, { "u2", "F" }, { "u3", "F" } }),
            order("o3", "cancelled", "r3", { { "t3", "S" } }),
            order("o4", "done", "r4", { { "t4", "S" }, { "u4", "F" } }),
        },
        seats = {
            { ticket = "t1", set = "S", status = "SOLD" },
            { ticket = "t2", set = "S", status = "VACANT" },
            { ticket = "t3", set = "S", status = "VACANT" },
            { ticket = "t4", set = "S", status = "SOLD" },
        },
        event = {
            sets = { { id = "S", with_seats = true, amount = 4, amount_vacant = 2 },
                     { id = "F", with_seats = false, amount = 10, amount_vacant = 8 } },
            tickets_amount = 14, tickets_amount_vacant = 10,
        },
        amounts = { S = 4, F = 10 },
    }
end

local function find(run, name)
    local checks = checker.check(run)
    for _, c in ipairs(checks) do
        if c.name:find(name, 1, true) then return c end
    end
    error("no check named " .. name)
end

local function by_id(list, id)
    for _, item in ipairs(list) do
        if item.id == id or item.ticket == id then return item end
    end
end

describe("chaos checker", function()
    it("finds nothing in a consistent run, and counts what it saw", function()
        local checks, figures = checker.check(consistent())
        assert.equals(12, #checks)
        for _, c in ipairs(checks) do assert.equals(0, c.n, c.name) end
        assert.same({ done = 1, cancelled = 1, failed = 1, unknown = 1 }, figures.beliefs)
        assert.same({ done = 1 }, figures.resolved)
        assert.same({ S = 2, F = 2 }, figures.sold)
    end)

    -- Each case breaks one thing; the check named must see it.
    local cases = {
        { "believed done, not done", function(run) by_id(run.orders, "o1").status = "cancelled" end },
        { "believed done, not done", function(run) run.attempts[1].order = "o9" end },
        { "believed done, not done", function(run) run.attempts[3].belief = "done"
                                                    run.attempts[3].order = "o1" end },
        { "not believed done", function(run) run.attempts[1].belief = "failed" end },
        { "not believed done", function(run) run.resolved = { ["w1-4"] = { none = true } }
                                              by_id(run.orders, "o4").request = nil end },
        { "other tickets than asked", function(run) run.attempts[1].random = { F = 2 } end },
        { "other tickets than asked", function(run) run.attempts[1].seats = { "t1", "t2" } end },
        { "other tickets than asked", function(run)
            table.insert(by_id(run.orders, "o1").tickets, { id = "t9", set = "S" }) end },
        { "request ids on more than one order", function(run)
            by_id(run.orders, "o3").request = "r1" end },
        { "request ids on more than one order", function(run) run.attempts[2].request = "r1" end },
        { "attempts with more than one order", function(run)
            table.insert(run.orders, { id = "o5", status = "cancelled", tag = "w1-3", tickets = {} })
        end },
        { "attempts with more than one order", function(run)
            table.insert(run.orders, { id = "o5", status = "cancelled",
                                       tickets = { { id = "t3", set = "S" } } })
        end },
        { "left holding tickets", function(run) by_id(run.orders, "o3").status = "executed" end },
        { "left holding tickets", function(run) by_id(run.orders, "o3").status = "expired" end },
        { "in two orders", function(run)
            table.insert(by_id(run.orders, "o4").tickets, { id = "u1", set = "F" }) end },
        { "seat statuses", function(run) by_id(run.seats, "t2").status = "SOLD" end },
        { "seat statuses", function(run) by_id(run.seats, "t1").status = "RESERVED" end },
        { "seat statuses", function(run) table.remove(run.seats, 4) end },
        { "set counters", function(run) run.event.sets[2].amount_vacant = 7 end },
        { "set counters", function(run) run.amounts.F = 11 end },
        { "set counters", function(run) run.event.tickets_amount_vacant = 11 end },
        { "believed cancelled", function(run) by_id(run.orders, "o2").status = "expired" end },
        { "unknown outcomes not resolved", function(run) run.resolved = {} end },
        { "unknown outcomes not resolved", function(run)
            run.resolved = { ["w1-4"] = { error = "this client has no find_created" } } end },
        { "unknown outcomes not resolved", function(run)
            run.resolved = { ["w1-4"] = { none = true } } end },
        { "unknown outcomes not resolved", function(run)
            run.resolved = { ["w1-4"] = { order = "o1", status = "done" } } end },
        { "unknown outcomes not resolved", function(run) run.attempts[4].request = nil end },
        { "raised", function(run) run.attempts[3].kind = "raised" end },
    }
    for i, case in ipairs(cases) do
        it(("fails '%s' (case %d)"):format(case[1], i), function()
            local run = consistent()
            case[2](run)
            local c = find(run, case[1])
            assert.is_true(c.n > 0)
            assert.is_true(#c.examples > 0)
        end)
    end

    it("reads back what a worker wrote", function()
        local path = os.tmpname()
        local f = assert(io.open(path, "w"))
        f:write("# attempt\tfirst\tintent\tseats\trandom\tbelief\torder\trequest\tkind\terror\n",
                "w2-7\tseats\tcancel\tt1,t2\tF=2\tunknown\to1\t-\ttimeout\tno answer\n")
        f:close()
        local attempts = checker.read_attempts{ path }
        os.remove(path)
        assert.same({ { id = "w2-7", first = "seats", intent = "cancel", seats = { "t1", "t2" },
                        random = { F = 2 }, belief = "unknown", order = "o1", kind = "timeout",
                        error = "no answer" } }, attempts)
    end)

    it("reads through a transport that refuses to write and retries reads", function()
        local t = checker.reading_transport(assert(core.options{
            key = "k", api = "http://127.0.0.1:1", timeout = 1 }), 2)
        assert.has_error(function() t:request("POST", "/v2/resources/orders", "{}") end)
        local status, err = t:request("GET", "/v2/resources/orders")
        assert.is_nil(status)
        assert.equals("transport", err.kind)
        assert.equals(2, t.retried)
        t:close()
    end)
end)
