-- request_checks_spec: an order's data fields are checked in the C core
-- (validate.c) before anything is sent: settings and its customer, vendor
-- data, the ticket lists of add_tickets and remove_tickets. The checks
-- alone, then through the client against tc-sandbox over real sockets,
-- counting the requests with the trace option.
local tc = require "ticketscloud"
local core = require "ticketscloud.core"
local sandbox = require "ticketscloud.sandbox"
local cjson = require "cjson"

local EVENT = "5d7134962110d30a34e95b96"
local FAN = "5d7135112110d30a34e97e2d" -- Фан зона, unseated

-- v is refused with kind "invalid" and exactly this message.
local function refused(check, v, message)
    local ok, err = check(v)
    assert.is_nil(ok, message)
    assert.equal("invalid", err.kind)
    assert.equal("ticketscloud: invalid error: " .. message, tostring(err))
end

describe("core.check_customer", function()
    it("takes name, email, phone and lang", function()
        local c = { name = "Иван Петров", email = "ivan@example.com", phone = "+79991234576",
                    lang = "en" }
        assert.equal(c, core.check_customer(c))
        assert.same({}, core.check_customer({}))
    end)

    it("refuses anything else, naming it", function()
        local check = core.check_customer
        refused(check, { x = 1 }, "customer: unknown field x")
        refused(check, { "a" }, "customer: unknown field 1")
        refused(check, { name = 5 }, "customer.name: 5 is not a string")
        refused(check, { phone = "1\n2" }, "customer.phone: contains a control character")
        refused(check, { lang = "de" }, 'customer.lang: "ru" or "en" expected')
        for _, email in ipairs{ "a@b@c", "ab", "@b", "a@", "a b@c", "" } do
            refused(check, { email = email }, "customer.email: not an e-mail address")
        end
        refused(check, "x", 'customer: "x" is not a table')
        assert.has_error(function() core.check_customer() end)
    end)
end)

describe("core.check_vendor_data", function()
    it("takes order_id and raw within their limits, counted in characters", function()
        local v = { order_id = ("я"):rep(64), raw = { [("ключ"):rep(10)] = ("з"):rep(128),
                                                        n = 3, yes = true } }
        assert.equal(v, core.check_vendor_data(v))
        local raw = {}
        for i = 1, 20 do raw["k" .. i] = i end
        assert.truthy(core.check_vendor_data{ raw = raw })
    end)

    it("refuses anything else, naming it", function()
        local check = core.check_vendor_data
        refused(check, { x = 1 }, "vendor_data: unknown field x")
        for _, id in ipairs{ ("я"):rep(65), 5, cjson.null } do
            refused(check, { order_id = id },
                    "vendor_data: order_id must be a string of at most 64 characters")
        end
        refused(check, { raw = "x" }, "vendor_data: raw must be a table")
        for _, raw in ipairs{ { [("k"):rep(41)] = "v" }, { "v" } } do
            refused(check, { raw = raw }, "vendor_data: raw keys must be strings of at most 40 characters")
        end
        refused(check, { raw = { k = ("v"):rep(129) } }, "vendor_data: raw.k is longer than 128 characters")
        for _, v in ipairs{ {}, cjson.null, print } do
            refused(check, { raw = { k = v } },
                    "vendor_data: raw.k must be a string, a number or a boolean")
        end
        local raw = {}
        for i = 1, 21 do raw["k" .. i] = i end
        refused(check, { raw = raw }, "vendor_data: raw has more than 20 keys")
        -- then JSON, as any body
        refused(check, { order_id = "a\0b" }, "vendor_data.order_id: contains a control character")
        refused(check, { raw = { k = 0 / 0 } }, "vendor_data.raw.k: " .. tostring(0 / 0)
                .. " is not a finite number")
        refused(check, 7, "vendor_data: 7 is not a table")
        assert.has_error(function() core.check_vendor_data() end)
    end)
end)

describe("core.check_settings", function()
    it("takes customer and send_tickets", function()
        local s = { customer = { email = "a@b.c" }, send_tickets = true }
        assert.equal(s, core.check_settings(s))
    end)

    it("refuses anything else, naming it", function()
        local check = core.check_settings
        refused(check, { send_tickets = "yes" }, 'settings.send_tickets: "yes" is not a boolean')
        refused(check, { invitation = true }, "settings: unknown field invitation")
        refused(check, { customer = { lang = "de" } }, 'customer.lang: "ru" or "en" expected')
        refused(check, { customer = "me" }, 'customer: "me" is not a table')
        refused(check, true, "settings: boolean is not a table")
        assert.has_error(function() core.check_settings() end)
    end)
end)

describe("nothing is sent for bad data", function()
    local sb, client, sent

    lazy_setup(function()
        sb = assert(sandbox.start{ log = "/dev/null" })
    end)

    lazy_teardown(function()
        assert.is_true(sb:stop())
    end)

    before_each(function()
        sent = 0
        client = assert(tc.new{ key = sb.key, api = sb.api, simple = sb.simple,
                                trace = function() sent = sent + 1 end })
    end)

    after_each(function()
        client:close()
    end)

    it("by create_order: settings and vendor_data are checked as a change's", function()
        for _, args in ipairs{
            { settings = { customer = { lang = "de" } } },
            { settings = { send_tickets = "yes" } },
            { settings = { invitation = true } },
            { settings = "none" },
            { vendor_data = { order_id = ("x"):rep(65) } },
            { vendor_data = { raw = { k = {} } } },
            { vendor_data = { extra = 1 } },
        } do
            args.event, args.random = EVENT, { [FAN] = 1 }
            local order, err = client:create_order(args)
            assert.is_nil(order)
            assert.equal("invalid", err.kind)
        end
        assert.equal(0, sent)
        local order = assert(client:create_order{ event = EVENT, random = { [FAN] = 1 },
            settings = { customer = { email = "ivan@example.com", lang = "ru" }, send_tickets = false },
            vendor_data = { order_id = "A-1", raw = { n = 3 } } })
        assert.equal(1, sent)
        assert.equal("ivan@example.com", order.settings.customer.email)
        assert.equal("A-1", order.vendor_data.order_id)
        assert(order:cancel())
    end)

    it("by add_tickets and remove_tickets: a table that is not a list of ids", function()
        local order = assert(client:create_order{ event = EVENT, random = { [FAN] = 1 } })
        sent = 0
        for _, call in ipairs{
            function() return order:add_tickets{ a = 1 } end,
            function() return order:remove_tickets{ a = 1 } end,
            function() return order:add_tickets{} end,
            function() return order:remove_tickets{ order.tickets[1].id, x = true } end,
        } do
            local ok, err = call()
            assert.is_nil(ok)
            assert.equal("invalid", err.kind)
            assert.equal(order, err.order)
        end
        assert.equal(0, sent)
        assert.equal(1, #order.tickets)
        assert(order:cancel())
    end)

    it("by set_customer and set_vendor_data, with the messages of the C checks", function()
        local order = assert(client:create_order{ event = EVENT })
        sent = 0
        local ok, err = order:set_customer{ email = "not an address" }
        assert.is_nil(ok)
        assert.equal("ticketscloud: invalid error: customer.email: not an e-mail address", tostring(err))
        ok, err = order:set_vendor_data{ order_id = ("x"):rep(65) }
        assert.is_nil(ok)
        assert.matches("vendor_data: order_id must be a string of at most 64 characters", tostring(err))
        assert.equal(0, sent)
        assert(order:cancel())
    end)
end)
