-- money_spec: tc.money parses, formats and adds money exactly (pure, no I/O).
local core = require "ticketscloud.core"
local money = core.money

describe("money.parse", function()
    it("reads the service's two-decimal strings as integer minor units", function()
        assert.equal(560000, money.parse("5600.00"))
        assert.equal(4612, money.parse("46.12"))
        assert.equal(0, money.parse("0.00"))
        assert.equal(-2500, money.parse("-25.00"))
        assert.equal(-25, money.parse("-0.25"))
    end)

    it("accepts whole amounts and one fraction digit", function()
        assert.equal(560000, money.parse("5600"))
        assert.equal(560050, money.parse("5600.5"))
        assert.equal(7, money.parse("0.07"))
    end)

    it("returns an integer, never a float", function()
        local v = money.parse("990.00")
        assert.equal("number", type(v))
        if math.type then assert.equal("integer", math.type(v)) end
    end)

    it("refuses what is not a well-formed decimal with invalid errors", function()
        for _, s in ipairs{ "", "-", ".5", "5.", "5.123", "1e3", "+5", " 5", "5 ", "5,00",
                            "0x10", "12a", "1.2.3", "--1", "5\0", "inf", "nan" } do
            local v, err = money.parse(s)
            assert.is_nil(v, s)
            assert.equal("invalid", err.kind, s)
            assert.matches("not a money amount", tostring(err))
        end
    end)

    it("keeps to the range every VM holds exactly", function()
        assert.equal(money.MAX, money.parse("90071992547409.91"))
        assert.equal(-money.MAX, money.parse("-90071992547409.91"))
        assert.is_nil((money.parse("90071992547409.92")))
        assert.is_nil((money.parse("99999999999999999999999.00")))
    end)

    it("raises on argument type mistakes", function()
        assert.has_error(function() money.parse(5600) end)
        assert.has_error(function() money.parse(nil) end)
    end)
end)

describe("money.format", function()
    it("writes two decimals", function()
        assert.equal("5600.00", money.format(560000))
        assert.equal("46.12", money.format(4612))
        assert.equal("0.00", money.format(0))
        assert.equal("0.05", money.format(5))
        assert.equal("7249.00", money.format(724900))
    end)

    it("writes negative amounts", function()
        assert.equal("-0.05", money.format(-5))
        assert.equal("-25.00", money.format(-2500))
        assert.equal("-90071992547409.91", money.format(-money.MAX))
    end)

    it("round-trips with parse", function()
        for _, s in ipairs{ "0.00", "0.01", "0.99", "1.00", "5600.00", "-1089.00", "46.12",
                            "90071992547409.91" } do
            assert.equal(s, money.format(money.parse(s)))
        end
    end)

    it("raises for fractions and out-of-range values", function()
        assert.has_error(function() money.format(1.5) end)
        assert.has_error(function() money.format("5600.00") end)
        assert.has_error(function() money.format(money.MAX + 1) end)
        assert.has_error(function() money.format(0 / 0) end)
        assert.has_error(function() money.format(math.huge) end)
    end)

    it("accepts a float with an integral value", function()
        assert.equal("5600.00", money.format(560000.0))
    end)
end)

describe("money.add", function()
    it("adds exactly where floating point would not", function()
        -- 0.1 + 0.2 in floats is 0.30000000000000004
        assert.equal(30, money.add("0.10", "0.20"))
        assert.equal("7249.00", money.format(money.add("6160.00", "1089.00")))
        assert.equal(659 * 100, money.add("560.00", "99.00"))
    end)

    it("mixes minor units and strings, and sums nothing to 0", function()
        assert.equal(0, money.add())
        assert.equal(724900, money.add(616000, "1089.00"))
        assert.equal(-100, money.add(100, "-2.00"))
    end)

    it("adds many small amounts without drift", function()
        local args = {}
        for i = 1, 1000 do args[i] = "0.01" end
        assert.equal(1000, money.add((table.unpack or unpack)(args)))
    end)

    it("reports malformed strings and overflow as invalid", function()
        local v, err = money.add("1.00", "abc")
        assert.is_nil(v)
        assert.equal("invalid", err.kind)
        assert.matches("argument #2", tostring(err))
        v, err = money.add(money.MAX, 1)
        assert.is_nil(v)
        assert.equal("invalid", err.kind)
        assert.matches("out of range", tostring(err))
    end)

    it("raises on argument type mistakes", function()
        assert.has_error(function() money.add({}) end)
        assert.has_error(function() money.add(1.5) end)
    end)
end)
