-- lists_spec: every walk of a list ends, whatever the server answers. Over
-- real sockets against spec/helpers/bad_api.lua, a server that answers lists
-- as no good service would: a list without end stops at list_timeout (kind
-- "timeout"), a page that makes no progress and data that is not a list
-- are refused (kind "api").
local tc = require "ticketscloud"
local core = require "ticketscloud.core"

local bad_api = require "helpers.bad_api_client"

local ORDER = "5d7134962110d30a34e9ffff"

-- Runs fn(), returns its results and the seconds it took.
local function timed(fn)
    local t0 = core.now()
    local a, b = fn()
    return a, b, core.now() - t0
end

-- Reads a stream to its end; returns the number of items and its error.
local function drain(stream)
    local n = 0
    for _ in stream do n = n + 1 end
    return n, stream:error()
end

-- A list without end is cut at list_timeout; the margin covers a slow machine.
local MARGIN = 3

describe("core.now", function()
    it("is a monotonic clock in seconds, with sub-second resolution", function()
        local t0 = core.now()
        core.sleep(0.05)
        local t1 = core.now()
        assert.is_number(t0)
        assert.is_true(t1 - t0 >= 0.05 and t1 - t0 < 1, tostring(t1 - t0))
        assert.has_error(function() core.now(1) end, "bad argument #1 to 'now' (no argument expected)")
    end)
end)

describe("a list without end", function()
    it("ends client:orders with a timeout error at the client's list_timeout", function()
        local client, stop = bad_api("endless", { list_timeout = 1 })
        local stream = assert(client:orders{ page_size = 200 })
        local n, err, took = timed(function() return drain(stream) end)
        assert.equal("timeout", err.kind)
        assert.matches("the order list: list_timeout %(1 s%) passed after %d+ pages", tostring(err))
        assert.is_true(n > 200, "items listed: " .. n)
        assert.is_true(took >= 0.9 and took < 1 + MARGIN, "took " .. took)
        -- the stream keeps its error
        local again, err2 = stream()
        assert.is_nil(again)
        assert.equal(err, err2)
        assert.is_true(stop() > 1)
    end)

    it("ends client:order's scan of the list at 6 times the timeout by default", function()
        local client, stop = bad_api("endless", { timeout = 0.25 })
        assert.equal(1.5, client.list_timeout)
        local order, err, took = timed(function() return client:order(ORDER) end)
        assert.is_nil(order)
        assert.equal("timeout", err.kind)
        assert.is_true(took >= 1.4 and took < 1.5 + MARGIN, "took " .. took)
        stop()
    end)

    it("ends client:refunds and client:refund at the call's list_timeout", function()
        local client, stop = bad_api("endless", { list_timeout = 60 })
        local stream = assert(client:refunds({}, { list_timeout = 0.5 }))
        local _, err, took = timed(function() return drain(stream) end)
        assert.equal("timeout", err.kind)
        assert.matches("the refund request list", tostring(err))
        assert.is_true(took < 0.5 + MARGIN, "took " .. took)
        local refund
        refund, err, took = timed(function() return client:refund(ORDER, { list_timeout = 0.5 }) end)
        assert.is_nil(refund)
        assert.equal("timeout", err.kind)
        assert.is_true(took < 0.5 + MARGIN, "took " .. took)
        stop()
    end)

    it("list_timeout must be seconds in (0, 86400], nothing is sent otherwise", function()
        for _, v in ipairs{ 0, -1, 86401, 0 / 0, "1", true } do
            local c, err = tc.new{ key = "test-key", list_timeout = v }
            assert.is_nil(c)
            assert.equal("invalid", err.kind)
            assert.matches("list_timeout: a number of seconds in %(0, 86400%] expected", tostring(err))
        end
        local sent = 0
        local client = assert(tc.new{ key = "test-key", api = "http://127.0.0.1:1",
                                      trace = function() sent = sent + 1 end })
        for _, v in ipairs{ 0, -1, "x" } do
            local stream, err = client:orders({}, { list_timeout = v })
            assert.is_nil(stream)
            assert.equal("invalid", err.kind)
            local order
            order, err = client:find_order(ORDER, nil, { list_timeout = v })
            assert.is_nil(order)
            assert.equal("invalid", err.kind)
        end
        assert.equal(0, sent)
        client:close()
    end)
end)

describe("a page that makes no progress", function()
    it("is refused when it lists only items listed before", function()
        local client, stop = bad_api("repeat")
        local n, err = drain(assert(client:orders{ page_size = 10 }))
        assert.equal(10, n)
        assert.equal("api", err.kind)
        assert.matches("page 2 of the order list holds only items listed before", tostring(err))
        -- the scan of client:order and client:refunds the same
        local order
        order, err = client:order(ORDER)
        assert.is_nil(order)
        assert.equal("api", err.kind)
        n, err = drain(assert(client:refunds{ page_size = 5 }))
        assert.equal(5, n)
        assert.matches("page 2 of the refund request list", tostring(err))
        assert.equal(2 + 3 + 2, stop())
    end)

    it("is refused when the server answers another page than the one asked for", function()
        local client, stop = bad_api("wrong_page")
        local n, err = drain(assert(client:orders{ page_size = 10 }))
        assert.equal(10, n)
        assert.equal("api", err.kind)
        assert.matches("the order list answered page 1 when asked for page 2", tostring(err))
        assert.equal(2, stop())
    end)

    it("lists an item the list shifted onto the next page once, and stops at total", function()
        local client, stop = bad_api("shifted")
        local ids, seen = {}, {}
        for order in assert(client:orders{ page_size = 10 }) do
            assert.is_nil(seen[order.id], order.id)
            seen[order.id] = true
            ids[#ids + 1] = order.id
        end
        assert.equal(28, #ids) -- 3 pages of 10 that overlap by one
        -- the scan finds an id written in either case
        assert.equal("00000000000000000000000a", ids[10])
        assert.equal(ids[10], assert(client:find_order(ids[10]:upper())).id)
        assert.equal(4, stop())
    end)
end)

describe("data that is not a list", function()
    it("is an api error, not an empty listing", function()
        local client, stop = bad_api("object")
        local stream = assert(client:orders())
        local order, err = stream()
        assert.is_nil(order)
        assert.equal("api", err.kind)
        assert.matches("the order list's data is not a list", tostring(err))
        local n
        n, err = drain(assert(client:refunds()))
        assert.equal(0, n)
        assert.matches("the refund request list's data is not a list", tostring(err))
        order, err = client:order(ORDER)
        assert.is_nil(order)
        assert.equal("api", err.kind)
        stop()
    end)
end)
