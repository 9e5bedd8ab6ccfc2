-- refunds_spec: refund requests (spec §3.11) end to end over real sockets:
-- the client's create_refund / refund / refunds / approve_refund /
-- reject_refund against tc-sandbox, the amounts of a refund of a done mixed
-- order, the inventory after approval (gRPC Seats and set counters), every
-- documented error string the sandbox produces, and validation that sends
-- nothing.
local tc = require "ticketscloud"
local sandbox = require "ticketscloud.sandbox"
local rest = require "ticketscloud.rest"
local core = require "ticketscloud.core"

local EVENT = "5d7134962110d30a34e95b96"
local FAN = "5d7135112110d30a34e97e2d"    -- Фан зона, 5600.00, unseated
local A2 = "5d71353b2110d30a34e97e31"     -- A2, 990.00, seated
local UNKNOWN = "5d7134962110d30a34e9ffff"

-- A2 seats of row 1: 5d7134962110d30a34e95cdd, ...cde, ...
local function seat(i)
    return ("5d7134962110d30a34e95c%02x"):format(0xdc + i)
end

local function amounts(r)
    return { r.refund_nominal, r.delta, r.customer_money }
end

describe("refund requests", function()
    local sb, client, raw, requests
    local next_seat = 0

    lazy_setup(function()
        sb = assert(sandbox.start{ log = "/dev/null" })
        raw = assert(core.http{ api = sb.api, key = sb.key, timeout = 10 })
    end)

    lazy_teardown(function()
        raw:close()
        assert.is_true(sb:stop())
    end)

    before_each(function()
        requests = {}
        client = assert(tc.new{ key = sb.key, api = sb.api, simple = sb.simple,
            trace = function(method, path, body, status)
                requests[#requests + 1] = { method = method, path = path, body = body,
                                            status = status }
            end })
    end)

    after_each(function()
        client:close()
    end)

    -- A done mixed order: one Фан зона ticket (6160.00 full) and a fresh A2
    -- seat (1089.00 full). Returns the order, the fan ticket and the seat.
    local function done_order()
        next_seat = next_seat + 1
        local s = seat(next_seat)
        local order = assert(client:create_order{ event = EVENT, random = { [FAN] = 1 } })
        assert(order:add_tickets{ s })
        assert(order:finish())
        assert.equal("done", order.status)
        return order, order.tickets[1].id, s
    end

    -- The raw answer of the sandbox: status and decoded body.
    local function send(method, path, body)
        local status, text = raw:request(method, path, body and rest.encode(body) or nil)
        assert.is_number(status)
        return status, rest.decode_json(text)
    end

    local function seat_status(ticket)
        for s in assert(client:seats{ event = EVENT }) do
            if s.ticket == ticket then return s.status end
        end
        error("no seat " .. ticket)
    end

    local function vacant(set)
        local e = assert(client:events{ ids = { EVENT } })()
        for _, s in ipairs(e.sets) do
            if s.id == set then return s.amount_vacant end
        end
        error("no set " .. set)
    end

    it("refunds one ticket of a done mixed order with exact amounts", function()
        local order, fan, s = done_order()
        requests = {}
        local r = assert(client:create_refund{ order = order.id, tickets = { s },
                                               culprit = "user",
                                               requested_at = "2019-12-15T13:01:02" })
        assert.equal(1, #requests)
        assert.equal("POST", requests[1].method)
        assert.equal("/v2/resources/refund_requests", requests[1].path)
        assert.same({ order = order.id, tickets = { s }, culprit = "user",
                      requested_at = "2019-12-15T13:01:02" }, rest.decode_json(requests[1].body))
        assert.matches("^%w+$", r.id)
        assert.equal(24, #r.id)
        assert.equal("new", r.status)
        assert.equal("user", r.culprit)
        assert.same({ "990.00", "990.00", "1089.00" }, amounts(r))
        assert.same({ s }, r.tickets)
        assert.equal(order.id, r.order)
        assert.equal(EVENT, r.event)
        assert.equal(order.org, r.org)
        assert.equal(order.vendor, r.vendor)
        assert.equal("general", r.policy)
        assert.equal("2019-12-15 13:01:02", r.requested_at)
        assert.matches("^%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d$", r.created_at)
        assert.equal(tc.null, r.finished_at)
        -- refs: the order whole, its event and partners, the ticket without seat/barcode.
        assert.equal("done", r.refs.orders[order.id].status)
        assert.equal("7249.00", r.refs.orders[order.id].values.full)
        assert.equal("Slipknot", r.refs.events[EVENT].title.text)
        assert.is_table(r.refs.partners[order.org])
        local t = r.refs.tickets[s]
        assert.equal(A2, t.set)
        assert.equal("1089.00", t.full)
        assert.is_nil(t.seat)
        assert.is_nil(t.barcode)
        assert.is_nil(r.refs.tickets[fan])

        -- The other ticket, requested_at as Unix seconds, culprit org.
        requests = {}
        local r2 = assert(client:create_refund{ order = order.id, tickets = { fan },
                                                culprit = "org", requested_at = 1576414862 })
        assert.equal("2019-12-15T13:01:02", rest.decode_json(requests[1].body).requested_at)
        assert.equal("2019-12-15 13:01:02", r2.requested_at)
        assert.equal("org", r2.culprit)
        assert.same({ "5600.00", "5600.00", "6160.00" }, amounts(r2))
    end)

    it("sums every ticket of a refund, duplicates counted once", function()
        local order, fan, s = done_order()
        local r = assert(client:create_refund{ order = order.id, tickets = { fan, s, fan },
                                               culprit = "user" })
        assert.same({ "6590.00", "6590.00", "7249.00" }, amounts(r))
        assert.same({ fan, s }, r.tickets)
        assert.equal(r.created_at, r.requested_at) -- not sent: the moment of the request
    end)

    it("approves: the seat is VACANT again, the counters follow, it can be sold again", function()
        local order, _, s = done_order()
        assert.equal("SOLD", seat_status(s))
        local a2_before = vacant(A2)
        local r = assert(client:create_refund{ order = order.id, tickets = { s },
                                               culprit = "user" })
        assert.equal("SOLD", seat_status(s)) -- a new refund request changes nothing yet
        assert.equal(a2_before, vacant(A2))
        requests = {}
        local done = assert(client:approve_refund(r.id))
        assert.same({ status = "approved" }, rest.decode_json(requests[1].body))
        assert.equal("PATCH", requests[1].method)
        assert.equal("/v2/resources/refund_requests/" .. r.id, requests[1].path)
        assert.equal("approved", done.status)
        assert.equal(r.id, done.id)
        assert.matches("^%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d$", done.finished_at)
        assert.same({ "990.00", "990.00", "1089.00" }, amounts(done))
        assert.equal("VACANT", seat_status(s))
        assert.equal(a2_before + 1, vacant(A2))
        -- The order is still done and still lists the ticket.
        local again = assert(client:order(order.id))
        assert.equal("done", again.status)
        assert.equal(2, #again.tickets)
        -- Approving twice, rejecting afterwards.
        local ok, err = client:approve_refund(r.id)
        assert.is_nil(ok)
        assert.equal("api", err.kind)
        assert.equal(400, err.status)
        assert.same({ "RefundRequest in wrong status `approved` for approve" }, err.messages)
        ok, err = client:reject_refund(r.id)
        assert.is_nil(ok)
        assert.same({ "Failed to reject refund request " .. r.id }, err.messages)
        -- The ticket cannot be refunded twice from the same order.
        ok, err = client:create_refund{ order = order.id, tickets = { s }, culprit = "user" }
        assert.is_nil(ok)
        assert.same({ "Some tickets already use in another refund request" }, err.messages)
        -- The seat is on sale: another order buys it.
        local other = assert(client:create_order{ tickets = { s } })
        assert.equal(s, other.tickets[1].id)
        assert(other:finish())
        assert.equal("SOLD", seat_status(s))
        assert.equal(a2_before, vacant(A2))
        -- and that order can refund it in turn.
        assert(client:create_refund{ order = other.id, tickets = { s }, culprit = "user" })
    end)

    it("rejects: the ticket stays sold and may be asked for again", function()
        local order, fan = done_order()
        local fan_before = vacant(FAN)
        local r = assert(client:create_refund{ order = order.id, tickets = { fan },
                                               culprit = "user" })
        local done = assert(client:reject_refund(r.id))
        assert.equal("rejected", done.status)
        assert.is_string(done.finished_at)
        assert.equal(fan_before, vacant(FAN))
        local ok, err = client:approve_refund(r.id)
        assert.is_nil(ok)
        assert.same({ "RefundRequest in wrong status `rejected` for approve" }, err.messages)
        ok, err = client:reject_refund(r.id)
        assert.is_nil(ok)
        assert.same({ "Failed to reject refund request " .. r.id }, err.messages)
        -- A rejected request does not hold its tickets.
        local r2 = assert(client:create_refund{ order = order.id, tickets = { fan },
                                                culprit = "org" })
        assert(client:approve_refund(r2.id))
        assert.equal(fan_before + 1, vacant(FAN))
    end)

    it("reads one refund request and lists them with filters and pages", function()
        local order, fan, s = done_order()
        local r1 = assert(client:create_refund{ order = order.id, tickets = { fan },
                                                culprit = "user" })
        local r2 = assert(client:create_refund{ order = order.id, tickets = { s },
                                                culprit = "user" })
        assert(client:approve_refund(r2.id))
        local one = assert(client:refund(r1.id))
        assert.equal(r1.id, one.id)
        assert.equal("new", one.status)
        assert.equal("done", one.refs.orders[order.id].status)
        local ok, err = client:refund(UNKNOWN)
        assert.is_nil(ok)
        assert.equal("not_found", err.kind)
        assert.same({ "RefundRequest " .. UNKNOWN .. " not found" }, err.messages)

        -- All of them, one per page: newest first, total counted.
        local stream = assert(client:refunds{ page_size = 1 })
        local seen = {}
        for r in stream do seen[#seen + 1] = r end
        assert.is_nil(stream:error())
        assert.equal(stream.total, #seen)
        assert.equal(r2.id, seen[1].id)
        assert.equal(r1.id, seen[2].id)
        assert.is_table(seen[1].refs.orders[order.id])
        assert.equal(rest.REFUNDS .. ("?page_size=1&page=%d"):format(#seen),
                     requests[#requests].path)

        local approved = {}
        for r in assert(client:refunds{ status = { "approved" } }) do
            assert.equal("approved", r.status)
            approved[r.id] = true
        end
        assert.is_true(approved[r2.id])
        assert.is_nil(approved[r1.id])
        local both = 0
        for r in assert(client:refunds{ status = { "new", "approved" }, events = { EVENT } }) do
            if r.id == r1.id or r.id == r2.id then both = both + 1 end
        end
        assert.equal(2, both)
        local none = assert(client:refunds{ events = { UNKNOWN } })
        assert.is_nil(none())
        assert.is_nil(none:error())
        assert.equal(0, none.total)
        local future = assert(client:refunds{ created_at = { "2100-01-01T00:00:00",
                                                             "2100-12-31T00:00:00" } })
        assert.is_nil(future())
        assert.equal(0, future.total)
        assert.is_nil(assert(client:refunds{ status = "in_progress" })())
    end)

    it("reads one from the list when the service does not serve GET by id", function()
        local order, fan = done_order()
        local r = assert(client:create_refund{ order = order.id, tickets = { fan },
                                               culprit = "org" })
        -- A server without the route: a 404 that does not name the request.
        local inner = assert(core.http{ api = sb.api, key = sb.key })
        local gets = 0
        local c = assert(tc.new{ key = sb.key, api = sb.api, transport = {
            request = function(_, method, path, body, opts)
                if method == "GET" and path:find("^/v2/resources/refund_requests/%w+$") then
                    gets = gets + 1
                    return 404, '{"errors": ["Not Found"]}'
                end
                return inner:request(method, path, body, opts)
            end,
            close = function() return inner:close() end } })
        local one = assert(c:refund(r.id))
        assert.equal(1, gets)
        assert.equal(r.id, one.id)
        assert.equal("new", one.status)
        assert.equal("done", one.refs.orders[order.id].status)
        local none, err = c:refund(UNKNOWN)
        assert.is_nil(none)
        assert.equal("not_found", err.kind)
        assert.equal(404, err.status)
        assert.same({ "RefundRequest " .. UNKNOWN .. " not found" }, err.messages)
        assert(c:reject_refund(r.id))
        c:close()
    end)

    describe("errors with their exact strings", function()
        it("names every missing field", function()
            local status, doc = send("POST", rest.REFUNDS, {})
            assert.equal(400, status)
            assert.same({ errors = { "order is required", "culprit is required",
                                     "tickets is required" } }, doc)
        end)

        it("refuses a culprit not in the list, and an empty ticket list", function()
            local order = done_order()
            local status, doc = send("POST", rest.REFUNDS, { order = order.id, culprit = "core",
                                                             tickets = { UNKNOWN } })
            assert.equal(400, status)
            assert.same({ "culprit Value 'core' not in list of avaiable values ['user', 'org']" },
                        doc.errors)
            status, doc = send("POST", rest.REFUNDS, { order = order.id, culprit = "user",
                                                       tickets = rest.array() })
            assert.equal(400, status)
            assert.same({ "tickets list length is less than 1", "Empty tickets for refund" },
                        doc.errors)
        end)

        it("refuses an unknown order and an order that is not done", function()
            local status, doc = send("POST", rest.REFUNDS .. "/", { order = UNKNOWN,
                                     culprit = "user", tickets = { seat(90) } })
            assert.equal(400, status)
            assert.same({ "Order " .. UNKNOWN .. " not found" }, doc.errors)
            local open = assert(client:create_order{ event = EVENT, random = { [FAN] = 1 } })
            local ok, err = client:create_refund{ order = open.id, culprit = "user",
                                                  tickets = { open.tickets[1].id } }
            assert.is_nil(ok)
            assert.equal("api", err.kind)
            assert.same({ ("wrong order (id: %s) status: executed"):format(open.id) },
                        err.messages)
            assert(open:cancel())
            ok, err = client:create_refund{ order = open.id, culprit = "user",
                                            tickets = { open.tickets[1].id } }
            assert.is_nil(ok)
            assert.same({ ("wrong order (id: %s) status: cancelled"):format(open.id) },
                        err.messages)
        end)

        it("refuses tickets that are not the order's", function()
            local order = done_order()
            local _, _, other_seat = done_order()
            for _, tickets in ipairs{ { other_seat }, { order.tickets[1].id, other_seat },
                                      { UNKNOWN } } do
                local ok, err = client:create_refund{ order = order.id, culprit = "user",
                                                      tickets = tickets }
                assert.is_nil(ok)
                assert.equal(400, err.status)
                assert.same({ "bad tickets" }, err.messages)
            end
        end)

        it("refuses a ticket already in a refund request that is not rejected", function()
            local order, fan, s = done_order()
            assert(client:create_refund{ order = order.id, culprit = "user", tickets = { fan } })
            local ok, err = client:create_refund{ order = order.id, culprit = "org",
                                                  tickets = { s, fan } }
            assert.is_nil(ok)
            assert.same({ "Some tickets already use in another refund request" }, err.messages)
            assert(client:create_refund{ order = order.id, culprit = "org", tickets = { s } })
        end)

        it("answers a wrong status, an unknown refund request and a wrong method", function()
            local order, fan = done_order()
            local r = assert(client:create_refund{ order = order.id, culprit = "user",
                                                   tickets = { fan } })
            local status, doc = send("PATCH", rest.REFUNDS .. "/" .. r.id, { status = "done" })
            assert.equal(400, status)
            assert.same({ "Incorrect status done for this operation" }, doc.errors)
            status, doc = send("PATCH", rest.REFUNDS .. "/" .. r.id, { culprit = "org" })
            assert.equal(400, status)
            assert.same({ "status is required" }, doc.errors)
            status, doc = send("PATCH", rest.REFUNDS .. "/" .. UNKNOWN, { status = "approved" })
            assert.equal(404, status)
            assert.same({ "RefundRequest " .. UNKNOWN .. " not found" }, doc.errors)
            status = send("DELETE", rest.REFUNDS .. "/" .. r.id)
            assert.equal(405, status)
            status, doc = send("GET", rest.REFUNDS .. "?status=done")
            assert.equal(400, status)
            assert.same({ "status: unknown refund request status 'done'" }, doc.errors)
            -- Nothing of it changed the request.
            assert.equal("new", assert(client:refund(r.id)).status)
        end)
    end)

    it("checks the arguments before sending anything", function()
        local id = seat(1)
        local cases = {
            { "create_refund", { tickets = { id }, culprit = "user" }, "order" },
            { "create_refund", { order = "x", tickets = { id }, culprit = "user" }, "order" },
            { "create_refund", { order = id, tickets = { id } }, "culprit" },
            { "create_refund", { order = id, tickets = { id }, culprit = "core" }, "culprit" },
            { "create_refund", { order = id, culprit = "user" }, "tickets" },
            { "create_refund", { order = id, tickets = {}, culprit = "user" }, "tickets" },
            { "create_refund", { order = id, tickets = { "nope" }, culprit = "user" }, "tickets%[1%]" },
            { "create_refund", { order = id, tickets = { id }, culprit = "user",
                                 requested_at = "15.12.2019" }, "requested_at" },
            { "refund", "x", "refund id" },
            { "approve_refund", "5d7134962110d30a34e9fff", "refund id" },
            { "reject_refund", "5d7134962110d30a34e9fff!", "refund id" },
            { "refunds", { status = { "done" } }, "status%[1%]" },
            { "refunds", { events = { "x" } }, "events" },
            { "refunds", { finished_at = { "yesterday", 0 } }, "finished_at" },
            { "refunds", { page_size = 201 }, "page_size" },
            { "refunds", { statuses = { "new" } }, "unknown key statuses" },
            { "refunds", { status = "new", only_with_customer = true }, "unknown key only_with_customer" },
        }
        for _, case in ipairs(cases) do
            local ok, err = client[case[1]](client, case[2])
            assert.is_nil(ok, case[1])
            assert.equal("invalid", err.kind)
            assert.matches(case[3], tostring(err))
        end
        assert.equal(0, #requests)
        assert.has_error(function() client:create_refund("x") end)
        assert.has_error(function() client:approve_refund(nil) end)
        assert.equal(0, #requests)
    end)

    it("builds the requests without I/O", function()
        local id = seat(1)
        assert.same({ method = "PATCH", path = rest.REFUNDS .. "/" .. id,
                      body = '{"status":"rejected"}' }, rest.patch_refund(id, "rejected"))
        assert.same({ method = "GET", path = rest.REFUNDS .. "/" .. id }, rest.get_refund(id))
        assert.same({ method = "GET", path = rest.REFUNDS .. "?status=new&page_size=50&page=2" },
                    rest.list_refunds(rest.refunds_query{ status = "new" }, 2))
        local q = rest.refunds_query{ finished_at = { 0, 86400 } }
        assert.equal("finished_at=1970-01-01T00%3A00%3A00,1970-01-02T00%3A00%3A00&page_size=50", q)
        assert.is_nil(rest.patch_refund(id, "done"))
    end)
end)
