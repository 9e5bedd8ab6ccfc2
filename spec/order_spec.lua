-- order_spec: the C core's desired-state bodies and response checks (pure, no I/O),
-- on orders shaped like the order example of the spec (§5.8).
local core = require "ticketscloud.core"
local cjson = require "cjson"

local EVENT = "5d7134962110d30a34e95b96"
local FAN = "5d7135112110d30a34e97e2d"      -- Фан зона, 5600.00, unseated
local A2 = "5d71353b2110d30a34e97e31"       -- A2, 990.00, seated
local OTHER = "5d713505255895db3c30b0c5"    -- 6666.00, no tickets
local PYX = "5d7135113f18da51a186ad16"      -- the unseated ticket
local EOY = "5d7134962110d30a34e95cfe"      -- the seated ticket
local T3 = "5d7135113f18da51a186ad17"

local function ticket(id, set, price, extra, full)
    return { id = id, set = set, serial = "PYX", number = 1, status = "reserved",
             barcode = cjson.null, price = price, discount = "0.00", nominal = price,
             extra = extra, full = full }
end

local function sets_values()
    return {
        [FAN] = { id = FAN, price = "5600.00", discount = "0.00", nominal = "5600.00",
                  promocode = cjson.null },
        [A2] = { id = A2, price = "990.00", discount = "0.00", nominal = "990.00",
                 promocode = cjson.null },
        [OTHER] = { id = OTHER, price = "6666.00", discount = "0.00", nominal = "6666.00",
                    promocode = cjson.null },
    }
end

-- The order after step 3a: both tickets, 7249.00 in full.
local function mixed()
    local data = {
        id = "5d8b924971a0bf323bd6a6ed", status = "executed", event = EVENT,
        tickets = { ticket(PYX, FAN, "5600.00", "560.00", "6160.00"),
                    ticket(EOY, A2, "990.00", "99.00", "1089.00") },
        values = { price = "6590.00", discount = "0.00", nominal = "6590.00",
                   extra = "659.00", full = "7249.00", sets_values = sets_values(),
                   viral_promocodes = {} },
    }
    local refs = { sets = { [FAN] = { id = FAN, name = "Фан зона", price = "5600.00",
                                      with_seats = false },
                            [A2] = { id = A2, name = "A2", price = "990.00",
                                     with_seats = true } } }
    return data, refs
end

describe("order_held", function()
    it("lists the held ids in order and counts per set", function()
        local data = mixed()
        local ids, counts = core.order_held(data.tickets)
        assert.same({ PYX, EOY }, ids)
        assert.same({ [FAN] = 1, [A2] = 1 }, counts)
    end)

    it("reports a malformed server order as an api error", function()
        local ids, err = core.order_held({ { id = "x", set = FAN } })
        assert.is_nil(ids)
        assert.equal("api", err.kind)
        assert.matches("tickets%[1%] has no valid id", tostring(err))
        ids, err = core.order_held(nil)
        assert.is_nil(ids)
        assert.equal("api", err.kind)
        ids, err = core.order_held({ { id = PYX } })
        assert.is_nil(ids)
        assert.matches("no valid set", tostring(err))
    end)
end)

describe("order_tickets_body", function()
    it("re-sends every held id plus the new one (order example step 3a)", function()
        local step2a = { ticket(PYX, FAN, "5600.00", "560.00", "6160.00") }
        assert.same({ PYX, EOY }, core.order_tickets_body(step2a, { EOY }))
    end)

    it("drops removed ids and keeps the server's order", function()
        local data = mixed()
        assert.same({ EOY }, core.order_tickets_body(data.tickets, nil, { PYX }))
        assert.same({ PYX, T3 }, core.order_tickets_body(data.tickets, { T3 }, { EOY }))
        assert.same({}, core.order_tickets_body(data.tickets, nil, { PYX, EOY }))
    end)

    it("never lists an id twice", function()
        local data = mixed()
        assert.same({ PYX, EOY, T3 }, core.order_tickets_body(data.tickets, { EOY, T3, T3 }))
        assert.same({ T3 }, core.order_tickets_body({}, { T3, T3 }))
    end)

    it("works on an empty order", function()
        assert.same({ EOY }, core.order_tickets_body({}, { EOY }))
    end)

    it("refuses ids that are not ObjectIds, naming them", function()
        local body, err = core.order_tickets_body({}, { EOY, "nope" })
        assert.is_nil(body)
        assert.equal("invalid", err.kind)
        assert.matches('tickets%[2%]: "nope" is not an ObjectId', tostring(err))
        body, err = core.order_tickets_body({}, { 12 })
        assert.is_nil(body)
        assert.equal("invalid", err.kind)
        body, err = core.order_tickets_body({}, nil, { EOY .. "0" })
        assert.is_nil(body)
        assert.equal("invalid", err.kind)
    end)

    it("refuses a table that is not a list of ids, or an empty one: no change to send", function()
        for _, args in ipairs{ { { a = 1 } }, { { EOY, a = EOY } }, { { [1] = EOY, [3] = T3 } },
                               { {} }, { nil, { a = 1 } }, { nil, {} } } do
            local body, err = core.order_tickets_body({}, args[1], args[2])
            assert.is_nil(body)
            assert.equal("invalid", err.kind)
            assert.matches("^ticketscloud: invalid error: tickets: ", tostring(err))
        end
        local _, err = core.order_tickets_body({}, { a = 1 })
        assert.equal("ticketscloud: invalid error: tickets: a list of ids expected", tostring(err))
        _, err = core.order_tickets_body({}, nil, {})
        assert.equal("ticketscloud: invalid error: tickets: no ticket given", tostring(err))
    end)

    it("raises on argument type mistakes", function()
        assert.has_error(function() core.order_tickets_body({}, "x") end)
        assert.has_error(function() core.order_tickets_body({}, nil, 5) end)
    end)
end)

describe("order_random_body", function()
    it("re-sends the seated set's count with the new set (order example step 3b)", function()
        local step2b = { ticket(EOY, A2, "990.00", "99.00", "1089.00") }
        assert.same({ [A2] = 1, [FAN] = 1 }, core.order_random_body(step2b, { [FAN] = 1 }, "add"))
    end)

    it("adds to what is held in the same set", function()
        local data = mixed()
        assert.same({ [FAN] = 3, [A2] = 1 },
                    core.order_random_body(data.tickets, { [FAN] = 2 }, "add"))
    end)

    it("sets absolute counts, 0 releasing a set", function()
        local data = mixed()
        assert.same({ [FAN] = 0, [A2] = 1 },
                    core.order_random_body(data.tickets, { [FAN] = 0 }, "set"))
        assert.same({ [FAN] = 4, [A2] = 2 },
                    core.order_random_body(data.tickets, { [FAN] = 4, [A2] = 2 }, "set"))
    end)

    it("validates set ids and counts", function()
        local data = mixed()
        local body, err = core.order_random_body(data.tickets, { [FAN] = 0 }, "add")
        assert.is_nil(body)
        assert.equal("invalid", err.kind)
        assert.matches("not a positive integer", tostring(err))
        body, err = core.order_random_body(data.tickets, { [FAN] = -1 }, "set")
        assert.is_nil(body)
        assert.matches("not a non%-negative integer", tostring(err))
        assert.is_nil((core.order_random_body(data.tickets, { [FAN] = 1.5 }, "add")))
        assert.is_nil((core.order_random_body(data.tickets, { [FAN] = "1" }, "add")))
        body, err = core.order_random_body(data.tickets, { bad = 1 }, "add")
        assert.is_nil(body)
        assert.matches('"bad" is not an ObjectId', tostring(err))
        body, err = core.order_random_body(data.tickets, { [FAN] = 2147483647 }, "add")
        assert.is_nil(body)
        assert.matches("too large", tostring(err))
    end)

    it("raises on argument type mistakes", function()
        assert.has_error(function() core.order_random_body({}, nil, "add") end)
        assert.has_error(function() core.order_random_body({}, {}, "double") end)
    end)
end)

describe("order_verify", function()
    it("accepts an answer that holds everything asked for", function()
        local data = mixed()
        assert.is_true(core.order_verify(data.tickets, { tickets = { PYX, EOY } }))
        assert.is_true(core.order_verify(data.tickets, { counts = { [FAN] = 1, [A2] = 1 } }))
        assert.is_true(core.order_verify(data.tickets, { released = { T3 } }))
    end)

    it("names a requested ticket the server skipped", function()
        local data = mixed()
        local ok, err = core.order_verify(data.tickets, { tickets = { PYX, EOY, T3 } })
        assert.is_nil(ok)
        assert.equal("api", err.kind)
        assert.same({ T3 }, err.missing)
        assert.matches(T3 .. " was requested but is not held", tostring(err))
    end)

    it("names a ticket that was not released", function()
        local data = mixed()
        local ok, err = core.order_verify(data.tickets, { released = { EOY } })
        assert.is_nil(ok)
        assert.same({ EOY }, err.unreleased)
    end)

    it("compares counts per set, sets left out wanted at 0", function()
        local data = mixed()
        local ok, err = core.order_verify(data.tickets, { counts = { [FAN] = 2 } })
        assert.is_nil(ok)
        assert.same({ [FAN] = { wanted = 2, held = 1 }, [A2] = { wanted = 0, held = 1 } },
                    err.sets)
        assert.matches("set " .. FAN .. ": 1 tickets held, 2 requested", tostring(err))
    end)

    it("refuses a want that is not ids and counts, as invalid, naming the value", function()
        local data = mixed()
        local cases = {
            { { tickets = { PYX, {} } }, "tickets%[2%]: table is not an ObjectId" },
            { { released = { 5 } }, "released%[1%]: 5 is not an ObjectId" },
            { { tickets = PYX }, "want.tickets: not a list" },
            { { counts = { [1] = 2 } }, "counts: the set id: 1 is not an ObjectId" },
            { { counts = { [FAN] = 1, [A2] = 1, [true] = 1 } }, "boolean is not an ObjectId" },
            { { counts = { [FAN] = -1 } }, "counts%[" .. FAN .. "%]: %-1 is not a non%-negative" },
            { { counts = { [FAN] = "1" } }, "counts%[" .. FAN .. "%]: \"1\" is not a non%-negative" },
            { { counts = "x" }, "want.counts: not a table" },
        }
        for i, case in ipairs(cases) do
            local ok, err = core.order_verify(data.tickets, case[1])
            assert.is_nil(ok, i)
            assert.equal("invalid", err.kind, i)
            assert.matches(case[2], tostring(err), 1, false, i)
        end
        assert.has_error(function() core.order_verify(data.tickets, nil) end)
    end)
end)

describe("order_check_money", function()
    it("accepts the order example's amounts", function()
        local data, refs = mixed()
        assert.is_true(core.order_check_money(data, refs))
        assert.is_true(core.order_check_money(data))
    end)

    it("accepts an empty order with all totals 0.00", function()
        local data = { tickets = {}, values = { price = "0.00", discount = "0.00",
            nominal = "0.00", extra = "0.00", full = "0.00", sets_values = sets_values() } }
        assert.is_true(core.order_check_money(data, {}))
    end)

    it("finds totals that are not the sum of the tickets (the spec's 2b misprint)", function()
        local data = mixed()
        table.remove(data.tickets, 1) -- one 990.00 ticket, totals still 7249.00
        local ok, err = core.order_check_money(data)
        assert.is_nil(ok)
        assert.equal("api", err.kind)
        assert.matches("values.full 7249.00 is not the sum of the tickets' full, 1089.00",
                       tostring(err))
    end)

    it("checks each ticket's nominal and full", function()
        local data = mixed()
        data.tickets[2].full = "1090.00"
        data.values.full = "7250.00"
        local ok, err = core.order_check_money(data)
        assert.is_nil(ok)
        assert.matches("tickets%[2%]: full 1090.00 is not nominal 990.00 %+ extra 99.00",
                       tostring(err))
        assert.matches("values: full 7250.00 is not nominal 6590.00 %+ extra 659.00",
                       tostring(err))
    end)

    it("checks prices against refs.sets and sets_values, and discounts", function()
        local data, refs = mixed()
        refs.sets[A2].price = "999.00"
        data.values.sets_values[FAN].discount = "1.00"
        data.values.sets_values[FAN].nominal = "5599.00"
        local ok, err = core.order_check_money(data, refs)
        assert.is_nil(ok)
        local text = tostring(err)
        assert.matches("tickets%[2%]: price 990.00 differs from refs.sets%[" .. A2, text)
        assert.matches("tickets%[1%]: discount 0.00 differs from values.sets_values", text)
    end)

    it("checks sets_values entries, even of sets without tickets", function()
        local data = mixed()
        data.values.sets_values[OTHER].nominal = "6000.00"
        local ok, err = core.order_check_money(data)
        assert.is_nil(ok)
        assert.matches("sets_values%[" .. OTHER .. "%]: nominal 6000.00 is not price 6666.00",
                       tostring(err))
    end)

    it("wants every amount with exactly two decimals", function()
        local data = mixed()
        data.tickets[1].extra = "560.0"
        local ok, err = core.order_check_money(data)
        assert.is_nil(ok)
        assert.matches("tickets%[1%].extra is not a money string with two decimals", tostring(err))
        data = mixed()
        data.values.price = 6590
        ok, err = core.order_check_money(data)
        assert.is_nil(ok)
        assert.matches("values.price is not a money string", tostring(err))
    end)

    it("reports a missing set entry and a missing values object", function()
        local data = mixed()
        data.values.sets_values[A2] = nil
        local ok, err = core.order_check_money(data)
        assert.is_nil(ok)
        assert.matches("values.sets_values has no entry for set " .. A2, tostring(err))
        ok, err = core.order_check_money({ tickets = {} })
        assert.is_nil(ok)
        assert.matches("the order has no values", tostring(err))
    end)

    it("caps the number of messages", function()
        local data = mixed()
        for i = 1, 40 do
            data.tickets[i] = ticket(PYX, FAN, "1.00", "1.00", "5.00")
        end
        local ok, err = core.order_check_money(data)
        assert.is_nil(ok)
        assert.equal(21, #err.messages)
        assert.equal("... and more", err.messages[21])
    end)
end)

describe("request checks", function()
    it("check_id", function()
        assert.equal(EVENT, core.check_id(EVENT))
        -- hexadecimal digits of either case; any other letter is refused
        assert.equal("5D7134962110D30A34E95B9F", core.check_id("5D7134962110D30A34E95B9F"))
        for _, v in ipairs{ "", "5d7134962110d30a34e95b9", EVENT .. "6", "5d7134962110d30a34e95b9-",
                            "5D7134962110D30A34E95B9z", "5d7134962110d30a34e95b9g",
                            ("z"):rep(24), 12, true, {} } do
            local ok, err = core.check_id(v, "event")
            assert.is_nil(ok)
            assert.equal("invalid", err.kind)
            assert.matches("^ticketscloud: invalid error: event: ", tostring(err))
            assert.matches("is not an ObjectId %(24 hexadecimal digits%)$", tostring(err))
        end
    end)

    it("check_text refuses control characters and broken UTF-8", function()
        assert.equal("Иван Петров", core.check_text("Иван Петров"))
        for _, v in ipairs{ "a\nb", "a\0b", "tab\t", "\127", "\194\133", "\255", "\192\175",
                            "\237\160\128" } do
            local ok, err = core.check_text(v, "name")
            assert.is_nil(ok)
            assert.equal("invalid", err.kind)
            assert.matches("name: ", tostring(err))
        end
        local ok, err = core.check_text(5, "name")
        assert.is_nil(ok)
        assert.matches("name: 5 is not a string", tostring(err))
    end)

    it("check_count", function()
        assert.equal(3, core.check_count(3))
        assert.equal(3, core.check_count(3.0))
        assert.equal(0, core.check_count(0, "n", 0))
        for _, v in ipairs{ 0, -1, 1.5, "2", 2 ^ 40, 0 / 0 } do
            assert.is_nil((core.check_count(v, "n")))
        end
    end)

    it("check_json walks nested bodies and names the bad value", function()
        assert.is_truthy(core.check_json({ settings = { customer = { name = "Ан", lang = "ru" } },
                                           list = { 1, 2, { x = cjson.null } }, flag = true }))
        local ok, err = core.check_json({ settings = { customer = { name = "a\rb" } } })
        assert.is_nil(ok)
        assert.equal("invalid", err.kind)
        assert.matches("body.settings.customer.name: contains a control character", tostring(err))
        ok, err = core.check_json({ list = { 1, 0 / 0 } }, "patch")
        assert.is_nil(ok)
        assert.matches("patch.list%[2%]: .* is not a finite number", tostring(err))
        ok, err = core.check_json({ f = print })
        assert.is_nil(ok)
        assert.matches("cannot be sent as JSON", tostring(err))
        ok, err = core.check_json({ ["bad\nkey"] = 1 })
        assert.is_nil(ok)
        assert.matches("a key contains a control character", tostring(err))
        local deep = {}
        local t = deep
        for _ = 1, 40 do t.x = {}; t = t.x end
        ok, err = core.check_json(deep)
        assert.is_nil(ok)
        assert.matches("nested too deeply", tostring(err))
    end)
end)

describe("copy_fields (the order object's fields, order.lua)", function()
    it("copies every field that skip does not name into the given table", function()
        local src = { id = "x", status = "done", cancel = "data", tickets = { 1, 2 } }
        local skip = { cancel = function() end }
        local dst = { keep = 1, status = "executed" }
        assert.equal(dst, core.copy_fields(dst, src, skip))
        assert.same({ keep = 1, id = "x", status = "done", tickets = src.tickets }, dst)
        assert.equal(src.tickets, dst.tickets) -- the values themselves, not copies
        assert.same({}, core.copy_fields({}, {}, {}))
    end)

    it("reads and writes raw, without metamethods", function()
        local seen = false
        local src = setmetatable({ a = 1 }, { __index = function() seen = true end })
        local dst = setmetatable({}, { __newindex = function() error("not raw") end })
        core.copy_fields(dst, src, setmetatable({}, { __index = function() return true end }))
        assert.equal(1, rawget(dst, "a"))
        assert.is_false(seen)
    end)

    it("raises on arguments of the wrong type", function()
        assert.has_error(function() core.copy_fields({}, nil, {}) end)
        assert.has_error(function() core.copy_fields({}, {}, nil) end)
        assert.has_error(function() core.copy_fields("x", {}, {}) end)
        assert.has_error(function() core.copy_fields(nil, {}, {}) end)
    end)
end)
