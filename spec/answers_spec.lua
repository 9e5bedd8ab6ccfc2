-- answers_spec: a 2xx answer is checked before the client believes it
-- (ticketscloud.answers): an order answer must be an order, with an id that
-- is an ObjectId, the one asked about, and a list of tickets. Pure checks
-- first, then over real sockets against spec/helpers/bad_api.lua.
local answers = require "ticketscloud.answers"
local rest = require "ticketscloud.rest"
local bad_api = require "helpers.bad_api_client"

local A = "5d7134962110d30a34e9ffff"
local OTHER = "0123456789abcdef01234567" -- the order bad_api.lua's "other" mode answers with

local function refused(pattern, ok, err)
    assert.is_nil(ok)
    assert.equal("api", err.kind)
    assert.matches(pattern, tostring(err))
end

describe("answers.order", function()
    local function doc(data) return { data = data, refs = {} } end

    it("takes an order with an ObjectId, the one asked about, and a list of tickets", function()
        local d = doc{ id = A, tickets = {} }
        assert.equal(d, answers.order(d))
        assert.equal(d, answers.order(d, A))
        assert.equal(d, answers.order(d, A:upper())) -- the same ObjectId
        d = doc{ id = A, tickets = { { id = OTHER } } }
        assert.equal(d, answers.order(d, A))
    end)

    it("refuses an answer about another order, naming both", function()
        refused("asked about order " .. A .. ", the answer is for order " .. OTHER,
                answers.order(doc{ id = OTHER, tickets = {} }, A))
    end)

    it("refuses an id that is not an ObjectId", function()
        for _, id in ipairs{ 12, false, "x", A .. "0", ("a"):rep(1024 * 1024), rest.null } do
            refused("the answer's order id: .* is not an ObjectId", answers.order(doc{ id = id }))
        end
        refused("the answer's order id: nil is not an ObjectId", answers.order(doc{ tickets = {} }))
        local ok, err = answers.order(doc{ id = ("a"):rep(1024 * 1024) })
        assert.is_nil(ok)
        assert.is_true(#tostring(err) < 200) -- the id is not copied into the message
    end)

    it("refuses data that is not an order, and tickets that are not a list", function()
        refused("the answer's data is not one order", answers.order(doc{ { id = A } }))
        for _, tickets in ipairs{ "none", { first = {} }, { [1] = {}, [3] = {} } } do
            refused("order " .. A .. ": its tickets are not a list",
                    answers.order(doc{ id = A, tickets = tickets }))
        end
    end)

    it("decode refuses a 2xx answer whose data has an id that is not one", function()
        refused("HTTP 200: the answer's data.id: 5%.?0? is not an ObjectId", -- cjson: 5.0 on 5.4
                answers.decode(200, '{"data": {"id": 5}}'))
        refused("HTTP 201: the answer's data.id: null is not an ObjectId",
                answers.decode(201, '{"data": {"id": null}}'))
        -- data without an id is for the caller to judge (a promocode check has none)
        assert.is_table(answers.decode(200, '{"data": {"discount": {"fix": "1.00"}}}'))
    end)
end)

describe("the client refuses an order answer", function()
    it("about another order: client:order, client:patch_order, client:refund", function()
        local client, stop = bad_api("other")
        refused("asked about order " .. A .. ", the answer is for order " .. OTHER, client:order(A))
        refused("asked about order " .. A .. ", the answer is for order " .. OTHER,
                client:patch_order(A, { vendor_data = { order_id = "1" } }))
        refused("asked about refund request " .. A .. ", the answer is for refund request " .. OTHER,
                client:refund(A))
        refused("asked about refund request " .. A, client:approve_refund(A))
        assert.equal(4, stop())
    end)

    for mode, pattern in pairs{
        id_number = "HTTP 200: the answer's data.id: 12345%.?0? is not an ObjectId",
        id_missing = "the answer's order id: nil is not an ObjectId",
        id_huge = "HTTP 200: the answer's data.id: a string of 1048576 bytes is not an ObjectId",
        tickets_object = "order " .. A .. ": its tickets are not a list",
    } do
        it("with a bad id or tickets (" .. mode .. "): client:order, patch_order, create_order", function()
            local client, stop = bad_api(mode)
            refused(pattern, client:order(A))
            refused(pattern, client:patch_order(A, { vendor_data = { order_id = "1" } }))
            refused((pattern:gsub(A, "5d7134962110d30a34e9aaaa")),
                    client:create_order{ event = "5d7134962110d30a34e95b96" })
            assert.equal(3, stop())
        end)
    end
end)
