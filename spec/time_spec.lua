-- tc.time: the order times ("YYYY-MM-DD HH:MM:SS", UTC) and the catalogue
-- times (Unix seconds), one rule both ways (lua/ticketscloud/time.lua).

local tc = require "ticketscloud"
local time = tc.time

describe("tc.time", function()
    it("parses and formats known times", function()
        assert.equal(0, time.parse("1970-01-01 00:00:00"))
        assert.equal(1567684800, time.parse("2019-09-05 12:00:00"))
        assert.equal(951782400, time.parse("2000-02-29 00:00:00"))
        assert.equal(-1, time.parse("1969-12-31 23:59:59"))
        assert.equal("2019-09-05 12:00:00", time.format(1567684800))
        assert.equal("1969-12-31 23:59:59", time.format(-1))
        assert.equal("2019-09-05 12:00:00", time.format(1567684800.9))
        assert.equal("0000-01-01 00:00:00", time.format(time.parse("0000-01-01 00:00:00")))
        assert.equal("9999-12-31 23:59:59", time.format(time.parse("9999-12-31 23:59:59")))
    end)

    it("agrees with os.date and round-trips", function()
        math.randomseed(42)
        for _ = 1, 2000 do
            local t = math.random(0, 2 ^ 31 - 1) * 2 -- to the year 2106
            local s = time.format(t)
            assert.equal(os.date("!%Y-%m-%d %H:%M:%S", t), s)
            assert.equal(t, time.parse(s))
        end
    end)

    it("writes RFC 3339 for the catalog's Timestamps", function()
        assert.equal("2019-09-05T12:00:00Z", time.rfc3339(1567684800))
        assert.equal("2019-09-05T12:00:00.25Z", time.rfc3339(1567684800.25))
        assert.equal("1970-01-01T00:00:00.000000001Z", time.rfc3339(1e-9))
        assert.equal("1969-12-31T23:59:58.5Z", time.rfc3339(-1.5))
        local s, err = time.rfc3339(1 / 0)
        assert.is_nil(s)
        assert.equal("invalid", err.kind)
        assert.has_error(function() time.rfc3339("0") end)
    end)

    it("refuses what is not a time with nil, err", function()
        for _, bad in ipairs{ "", "2019-09-05T12:00:00", "2019-09-05 12:00", "2019-9-05 12:00:00",
                              "2019-13-01 00:00:00", "2019-00-01 00:00:00", "2019-02-29 00:00:00",
                              "2100-02-29 00:00:00", "2019-04-31 00:00:00", "2019-09-05 24:00:00",
                              "2019-09-05 12:60:00", "2019-09-05 12:00:60", " 2019-09-05 12:00:00" } do
            local t, err = time.parse(bad)
            assert.is_nil(t, bad)
            assert.equal("invalid", err.kind)
        end
        for _, bad in ipairs{ 0 / 0, math.huge, -math.huge, 253402300800, -62167219201 } do
            local s, err = time.format(bad)
            assert.is_nil(s)
            assert.equal("invalid", err.kind)
        end
        assert.has_error(function() time.parse(1) end)
        assert.has_error(function() time.format("1") end)
    end)

    it("gives integers on Lua 5.4", function()
        if math.type then assert.equal("integer", math.type(time.parse("2019-09-05 12:00:00"))) end
    end)
end)
