-- Orders under a bad network (docs/reliability.md): the client against
-- tc-sandbox --faults over real sockets. Each test starts a sandbox whose
-- faults hit one route every time (probability 1) or, with a fixed seed,
-- some of the time, and checks both what the caller is told and what the
-- service holds afterwards, read through a client without faults.

local cjson = require "cjson"
local core = require "ticketscloud.core"
local flows = require "ticketscloud.flows"
local faulty = require "helpers.faulty"
local tc = require "ticketscloud"

local EVENT = "5d7134962110d30a34e95b96"
local FAN = "5d7135112110d30a34e97e2d"   -- "Фан зона", unseated
local SEAT = "5d7134962110d30a34e95cfe"  -- A2, row 2 seat 14
local SEAT2 = "5d7134962110d30a34e95cff"

-- A sandbox whose faults are SPEC, seed 7.
local function start(faults) return faulty.start(faults, 7) end

-- A client with short pauses; requests count the PATCHes and POSTs sent.
local function client_of(sb, opts)
    local sent = {}
    local c = assert(tc.new{ key = sb.key, api = sb.api, simple = sb.simple, timeout = 0.5,
                             retry = { attempts = 8, base = 0.01, max = 0.05 },
                             deadline = opts and opts.deadline or 10,
                             trace = function(method, path) sent[#sent + 1] = method .. " " .. path end })
    return c, sent
end

local function count(list, method)
    local n = 0
    for _, r in ipairs(list) do
        if r:find("^" .. method .. " ") then n = n + 1 end
    end
    return n
end

-- Every order at the service, read by a sandbox client the faults do not
-- touch: the gRPC catalogue is not faulted, so the truth about a seat is
-- there; the order list is read with GET, retried until it answers.
local function orders_at(sb)
    local c = assert(tc.new{ key = sb.key, api = sb.api, simple = sb.simple, timeout = 2,
                             retry = { attempts = 50, base = 0.01, max = 0.02 } })
    for _ = 1, 50 do
        local list = assert(c:orders{ events = { EVENT }, page_size = 200 })
        local all = {}
        for o in list do all[#all + 1] = o end
        if not list:error() then
            c:close()
            return all
        end
    end
    error("the order list never answered")
end

local function seat_status(sb, ticket)
    local c = assert(tc.new{ key = sb.key, api = sb.api, simple = sb.simple })
    local seat = assert(c:seats{ event = EVENT, tickets = { ticket } })()
    c:close()
    return seat.status
end

describe("orders under faults", function()
    after_each(faulty.stop_all)

    it("echoes the creation's tag: POST stores vendor_data", function()
        local sb = start(nil)
        local c = client_of(sb)
        local order = assert(c:create_order{ event = EVENT, random = { [FAN] = 1 },
                                             vendor_data = { order_id = "shop-1", raw = { a = "b" } },
                                             request_id = "shop-1-try" })
        assert.same({ order_id = "shop-1", raw = { a = "b", tc_request_id = "shop-1-try" } },
                    order.vendor_data)
        assert.equal(order.id, assert(c:find_created("shop-1-try", { event = EVENT })).id)
        local none, err = c:find_created("nobody", { event = EVENT })
        assert.is_nil(none)
        assert.equal("not_found", err.kind)
        c:close()
    end)

    it("creates once when the answer to the creation is lost", function()
        local sb = start("orders.create:drop_after=1")
        local c, sent = client_of(sb)
        local order = assert(c:create_order{ event = EVENT, random = { [FAN] = 2 } })
        assert.equal(1, count(sent, "POST"))
        local all = orders_at(sb)
        assert.equal(1, #all)
        assert.equal(order.id, all[1].id)
        assert.equal(2, #order.tickets)
        c:close()
    end)

    it("creates nothing, and says so, when no creation reaches the service", function()
        local sb = start("orders.create:drop_before=1")
        local c, sent = client_of(sb, { deadline = 1 })
        local order, err = c:create_order{ event = EVENT, random = { [FAN] = 1 } }
        assert.is_nil(order)
        assert.equal("transport", err.kind)
        assert.is_string(err.request_id)
        assert.is_true(count(sent, "POST") >= 2)
        assert.same({}, orders_at(sb))
        c:close()
    end)

    it("is unknown, with the request id, when the order list cannot be read", function()
        local sb = start("orders.create:drop_after=1,orders.list:503=1")
        local c = client_of(sb, { deadline = 1 })
        local order, err = c:create_order{ tickets = { SEAT } }
        assert.is_nil(order)
        assert.equal("unknown", err.kind)
        assert.matches("^%x+$", err.request_id)
        assert.matches("find_created", tostring(err))
        -- The order does exist: its seat is held.
        assert.equal("RESERVED", seat_status(sb, SEAT))
        c:close()
    end)

    -- A service that drops vendor_data given with a POST (the contract leaves
    -- it open, spec §3.3), in front of the sandbox: the answer of POST
    -- number `lose` is lost after the service made the order.
    local function dropping_tags(sb, lose)
        local inner = assert(core.http{ api = sb.api, key = sb.key, timeout = 2 })
        local posts = 0
        return {
            request = function(_, method, path, body, opts)
                if method ~= "POST" or path ~= "/v2/resources/orders" then
                    return inner:request(method, path, body, opts)
                end
                local doc = cjson.decode(body)
                doc.vendor_data = nil
                posts = posts + 1
                local status, text = inner:request(method, path, cjson.encode(doc), opts)
                if posts ~= lose or not status then return status, text end
                local _, err = core.fail("transport", "the answer was lost")
                err.sent = true
                return nil, err
            end,
            close = function() return inner:close() end,
        }
    end

    it("creates once without a tag kept: the order holding the seat is the one", function()
        local sb = start(nil)
        local c = assert(tc.new{ key = sb.key, api = sb.api, transport = dropping_tags(sb, 1),
                                 retry = { attempts = 4, base = 0.01, max = 0.02 } })
        local order = assert(c:create_order{ tickets = { SEAT } })
        assert.equal(SEAT, order.tickets[1].id)
        local all = orders_at(sb)
        assert.equal(1, #all)
        assert.equal(order.id, all[1].id)
        c:close()
    end)

    it("is unknown, never a second order, when untagged orders look alike", function()
        local sb = start(nil)
        local c = assert(tc.new{ key = sb.key, api = sb.api, transport = dropping_tags(sb, 2),
                                 retry = { attempts = 4, base = 0.01, max = 0.02 } })
        assert(c:create_order{ event = EVENT, random = { [FAN] = 1 } })
        local order, err = c:create_order{ event = EVENT, random = { [FAN] = 1 } }
        assert.is_nil(order)
        assert.equal("unknown", err.kind)
        assert.is_string(err.request_id)
        assert.equal(2, #orders_at(sb))
        c:close()
    end)

    it("finishes once when the answer to the finish is lost", function()
        local sb = start("orders.patch:drop_after=1")
        local c, sent = client_of(sb)
        local order = assert(c:create_order{ tickets = { SEAT } })
        assert(order:finish())
        assert.equal("done", order.status)
        assert.equal(1, count(sent, "PATCH"))
        assert.equal("SOLD", seat_status(sb, SEAT))
        c:close()
    end)

    it("adds unseated tickets once when the answer to the add is lost", function()
        local sb = start("orders.patch:drop_after=1")
        local c, sent = client_of(sb)
        local order = assert(c:create_order{ tickets = { SEAT } })
        assert(order:add_random{ [FAN] = 2 })
        assert.equal(1, count(sent, "PATCH"))
        local fan = 0
        for _, t in ipairs(order.tickets) do
            if t.set == FAN then fan = fan + 1 end
        end
        assert.equal(2, fan)
        assert.equal(3, #order.tickets)
        c:close()
    end)

    it("retries a change after 5xx answers, on the order read anew", function()
        local sb = start("orders.patch:503=0.8")
        local c, sent = client_of(sb)
        local order = assert(c:create_order{ event = EVENT, random = { [FAN] = 1 } })
        for _, t in ipairs{ SEAT, SEAT2 } do assert(order:add_tickets{ t }) end
        assert(order:finish())
        assert.equal("done", order.status)
        assert.equal(3, #order.tickets)
        assert.is_true(count(sent, "PATCH") > 3) -- some were refused and sent again
        c:close()
    end)

    it("does not send a refused change again", function()
        local sb = start(nil)
        local c, sent = client_of(sb)
        local order = assert(c:create_order{ event = EVENT })
        local ok, err = order:add_tickets{ "ffffffffffffffffffffffff" }
        assert.is_nil(ok)
        assert.equal("api", err.kind)
        assert.equal(1, count(sent, "PATCH"))
        c:close()
    end)

    it("a flow whose finish keeps failing cancels its order and says so", function()
        local sb = start("orders.patch:drop_before=0.3")
        local c = client_of(sb)
        local order, err
        -- The seed makes the same PATCHes fail every run; some flow meets a
        -- finish that never goes through within its attempts.
        for i = 1, 20 do
            order, err = flows.mixed_order(c, { event = EVENT, seats = { i % 2 == 0 and SEAT or SEAT2 },
                                                random = { [FAN] = 1 }, finish = true })
            if order then assert(order:refresh()) assert.equal("done", order.status) end
            if order then break end
        end
        assert.is_not_nil(order, tostring(err))
        local held = 0
        for _, o in ipairs(orders_at(sb)) do
            if o.status == "executed" then held = held + 1 end
        end
        assert.equal(0, held)
        c:close()
    end)

    it("a flow that fails after a lost creation leaves nothing holding tickets", function()
        -- The creation's answer is lost, the seat is then taken: the flow's
        -- add of the seat fails, and the order it found by its tag is cancelled.
        local sb = start("orders.create:drop_after=1")
        local c = client_of(sb)
        local other = assert(c:create_order{ tickets = { SEAT } })
        local order, err = flows.mixed_order(c, { event = EVENT, seats = { SEAT },
                                                  random = { [FAN] = 1 }, finish = true })
        assert.is_nil(order)
        assert.is_true(err.cancelled)
        assert.matches("cancelled", tostring(err))
        for _, o in ipairs(orders_at(sb)) do
            if o.id ~= other.id then assert.equal("cancelled", o.status) end
        end
        assert(other:cancel())
        c:close()
    end)
end)
