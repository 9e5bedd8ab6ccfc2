-- mosbilet_spec: visitor data for AIS Mosbilet venues (spec §3.10) over real
-- sockets: order:set_visitors against tc-sandbox, the 202 only while the
-- order is executed, the sandbox's validation messages, and the client's
-- checks that send nothing.
local tc = require "ticketscloud"
local sandbox = require "ticketscloud.sandbox"
local rest = require "ticketscloud.rest"
local core = require "ticketscloud.core"

local EVENT = "5d7134962110d30a34e95b96"
local FAN = "5d7135112110d30a34e97e2d"    -- Фан зона, unseated
local UNKNOWN = "5d7134962110d30a34e9ffff"

describe("Mosbilet visitor data", function()
    local sb, client, raw, requests

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

    local function put(body)
        local status, text = raw:request("PUT", rest.MOSBILET, rest.encode(body))
        return status, text
    end

    local function visitors(order)
        return { { ticket_id = order.tickets[1].id, user_id = "u1", name = "Иван",
                   surname = "Иванов", middle_name = "Иванович" },
                 { user_id = "u2", name = "Мария", surname = "Петрова" } }
    end

    it("sends the visitors of an executed order and gets 202", function()
        local order = assert(client:create_order{ event = EVENT, random = { [FAN] = 2 } })
        requests = {}
        assert.equal(order, order:set_visitors(visitors(order)))
        assert.equal(1, #requests)
        assert.equal("PUT", requests[1].method)
        assert.equal("/v2/services/orders/mosbilet/user_data", requests[1].path)
        assert.equal(202, requests[1].status)
        assert.same({ order = order.id, user_data = visitors(order) },
                    rest.decode_json(requests[1].body))
        assert.equal("executed", order.status)
        local status, text = put{ order = order.id, user_data = visitors(order) }
        assert.equal(202, status)
        assert.equal("", text)
    end)

    it("is refused once the order is done, locally and by the sandbox", function()
        local order = assert(client:create_order{ event = EVENT, random = { [FAN] = 1 } })
        local v = visitors(order)
        assert(order:finish())
        requests = {}
        local ok, err = order:set_visitors(v)
        assert.is_nil(ok)
        assert.equal("invalid", err.kind)
        assert.equal(0, #requests)
        local status, text = put{ order = order.id, user_data = v }
        assert.equal(400, status)
        assert.same({ errors = { "Not allow to update order in status done" } },
                    rest.decode_json(text))
        -- The server's refusal comes back as an api error.
        local stale = assert(client:order(order.id))
        stale.status = "executed"
        ok, err = stale:set_visitors(v)
        assert.is_nil(ok)
        assert.equal("api", err.kind)
        assert.same({ "Not allow to update order in status done" }, err.messages)
    end)

    it("answers the sandbox's validation messages", function()
        local order = assert(client:create_order{ event = EVENT, random = { [FAN] = 1 } })
        local cases = {
            { {}, { "order is required", "user_data is required" } },
            { { order = order.id, user_data = rest.array() },
              { "user_data must be a non-empty list of visitors" } },
            { { order = order.id, user_data = { { name = "", nick = "x", ticket_id = "t" } } },
              { "user_data[0].nick is not a visitor field",
                "user_data[0].ticket_id must be a ticket id",
                "user_data[0].user_id is required",
                "user_data[0].name must be a string of 1 to 256 characters",
                "user_data[0].surname is required" } },
            { { order = UNKNOWN, user_data = { { user_id = "u", name = "n", surname = "s" } } },
              { "Order " .. UNKNOWN .. " not found" } },
            { { order = order.id, user_data = { { ticket_id = UNKNOWN, user_id = "u", name = "n",
                                                  surname = "s" } } },
              { ("ticket (id = %s) is not in order %s"):format(UNKNOWN, order.id) } },
        }
        for _, case in ipairs(cases) do
            local status, text = put(case[1])
            assert.equal(400, status)
            local errors = rest.decode_json(text).errors
            table.sort(errors)
            table.sort(case[2])
            assert.same(case[2], errors)
        end
    end)

    it("checks the visitors before sending anything", function()
        local order = assert(client:create_order{ event = EVENT, random = { [FAN] = 1 } })
        requests = {}
        local cases = {
            { {}, "non%-empty" },
            { { "x" }, "visitors%[1%]: a table" },
            { { { user_id = "u", name = "n" } }, "visitors%[1%].surname: required" },
            { { { user_id = "u", name = "", surname = "s" } }, "visitors%[1%].name: empty" },
            { { { user_id = "u", name = "n", surname = "s", ticket_id = "t" } }, "ticket_id" },
            { { { user_id = "u", name = "n", surname = "s", age = 3 } }, "unknown field age" },
            { { { user_id = "u", name = "n\1", surname = "s" } }, "visitors%[1%].name" },
        }
        for _, case in ipairs(cases) do
            local ok, err = order:set_visitors(case[1])
            assert.is_nil(ok)
            assert.equal("invalid", err.kind)
            assert.matches(case[2], tostring(err))
        end
        assert.equal(0, #requests)
        assert.has_error(function() order:set_visitors("x") end)
    end)
end)
