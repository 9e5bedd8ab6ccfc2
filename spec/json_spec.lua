-- The module's JSON (src/json.c over yajl, named by ticketscloud.json):
-- numbers read as Lua reads numerals, null, marked arrays, and the errors of
-- text that is not JSON and of values that have no JSON form.

local tc = require "ticketscloud"
local json = require "ticketscloud.json"
local sandbox = require "ticketscloud.sandbox"

local EVENT = "5d7134962110d30a34e95b96"
local FAN = "5d7135112110d30a34e97e2d"
local INTEGERS = math.type ~= nil -- Lua 5.3+; LuaJIT has one number type

describe("json.decode", function()
    it("reads integers as integers and the rest as floats", function()
        local v = assert(json.decode('[59807, -3, 0, 2.5, 1e3, 1.0, 9007199254740993, 12345678901234567890]'))
        assert.equal(59807, v[1])
        assert.equal(-3, v[2])
        assert.equal(2.5, v[4])
        assert.equal(1000, v[5])
        assert.equal(1, v[6])
        if INTEGERS then
            assert.equal("integer", math.type(v[1]))
            assert.equal("59807", tostring(v[1]))
            assert.equal("integer", math.type(v[3]))
            assert.equal("float", math.type(v[4]))
            assert.equal("float", math.type(v[5]))
            assert.equal("float", math.type(v[6]))
            assert.equal(9007199254740993, v[7]) -- exact: not rounded through a double
            assert.equal("float", math.type(v[8])) -- beyond 64 bits, as Lua reads it
        end
        assert.equal(1.2345678901234567e19, v[8])
    end)

    it("reads objects, arrays, strings, booleans and null", function()
        local v = assert(json.decode('{"a":{"b":[true,false,null,"\\u0416\\u0000x"]},"c":[],"d":{}}'))
        assert.equal(true, v.a.b[1])
        assert.equal(false, v.a.b[2])
        assert.equal(json.null, v.a.b[3])
        assert.equal(tc.null, v.a.b[3])
        assert.equal("Ж\0x", v.a.b[4])
        assert.equal(4, #v.a.b)
        assert.same({}, v.c)
        assert.same({}, v.d)
        assert.equal("[]", json.encode(v.c)) -- arrays stay arrays, even empty
        assert.equal("{}", json.encode(v.d))
        local again = json.encode(json.decode('{"b":[],"a":[[],{}]}'), true)
        assert.equal('{"a":[[],{}],"b":[]}', (again:gsub("%s", "")))
        assert.equal("text", json.decode('"text"'))
        assert.equal(7, json.decode(" 7 "))
    end)

    it("refuses what is not one JSON value with nil and a message", function()
        local cases = {
            [""] = "premature EOF", ["{"] = "premature EOF", ['{"a":1} x'] = "trailing garbage",
            ["[1,]"] = "", ["{'a':1}"] = "", ["nul"] = "", ['"\255"'] = "UTF8",
            ["[" .. ("1"):rep(200) .. "]"] = "too many digits", [("["):rep(129)] = "nested too deeply",
            ["1 2"] = "trailing garbage", ["// c\n1"] = "",
        }
        for text, words in pairs(cases) do
            local v, err = json.decode(text)
            assert.is_nil(v, text)
            assert.is_string(err, text)
            assert.matches("^JSON text: ", err)
            assert.is_truthy(err:find(words, 1, true), err)
        end
        assert.same({ { { 1 } } }, json.decode("[[[1]]]"))
        assert.is_table(json.decode(("["):rep(128) .. ("]"):rep(128)))
    end)

    it("decodes containers of any size, nested, with every value in place", function()
        -- Tables are made when their container ends, sized for it; a
        -- container of more than a thousand values gets its table earlier.
        for _, n in ipairs{ 0, 1, 2, 1023, 1024, 1025, 5000 } do
            local items, members = {}, {}
            for i = 1, n do
                items[i] = ('{"i":%d,"l":[%d,"x",null,{}]}'):format(i, i)
                members[i] = ('"k%d":[%d]'):format(i, i)
            end
            local text = ('{"a":[%s],"o":{%s},"z":true}'):format(table.concat(items, ","),
                                                              table.concat(members, ","))
            local v = assert(json.decode(text))
            assert.equal(n, #v.a)
            assert.is_true(v.z)
            local count = 0
            for _ in pairs(v.o) do count = count + 1 end
            assert.equal(n, count)
            for i = 1, n do
                assert.equal(i, v.a[i].i)
                assert.same({ i, "x", json.null, {} }, v.a[i].l)
                assert.same({ i }, v.o["k" .. i])
            end
        end
        assert.same({ a = 2 }, json.decode('{"a":1,"a":2}')) -- the last one wins, as before
    end)

    it("raises on an argument that is not text", function()
        assert.has_error(function() json.decode({}) end)
        assert.has_error(function() json.decode() end)
    end)

    it("gives every string its own bytes, whatever it decoded before", function()
        -- Ids of 16 to 40 bytes go through the decoder's cache of strings,
        -- by a hash of some of their bytes: these differ in bytes it does
        -- not read, and in those it does, and come back in every decoding.
        local values = {}
        for i = 1, 2000 do
            values[#values + 1] = ("AAAAAAAA%08xBBBBBBBB%08xCCCCCCCC"):format(i, i * 7)
            values[#values + 1] = ("%024x"):format(i)
            values[#values + 1] = ("%016d"):format(i)
            values[#values + 1] = ("%041d"):format(i) -- too long for the cache
        end
        local text = json.encode(values)
        for _ = 1, 3 do
            local got = assert(json.decode(text))
            assert.equal(#values, #got)
            for i, v in ipairs(values) do
                if got[i] ~= v then error(("value %d: %q, not %q"):format(i, got[i], v)) end
            end
            local keyed = assert(json.decode('{"' .. values[1] .. '":"' .. values[5] .. '"}'))
            assert.equal(values[5], keyed[values[1]])
        end
    end)

    it("decodes in a finalizer that runs during another decoding", function()
        -- With the collector always at work, finalizers run while the long
        -- text below is decoded; each decodes text of its own meanwhile.
        local items = {}
        for i = 1, 3000 do items[i] = ('{"id":%d,"name":"item %d","tags":["a","b"]}'):format(i, i) end
        local text = "[" .. table.concat(items, ",") .. "]"
        local inner, nested = {}, 0
        local running = false
        collectgarbage("collect")
        collectgarbage("stop")
        for i = 1, 200 do
            local function finalize()
                if running then nested = nested + 1 end
                inner[#inner + 1] = json.decode(('{"n":%d,"list":[1,2,3]}'):format(i))
            end
            if newproxy then -- LuaJIT: only userdata have finalizers
                getmetatable(newproxy(true)).__gc = finalize
            else
                setmetatable({}, { __gc = finalize })
            end
        end
        local pause = collectgarbage("setpause", 0)
        collectgarbage("restart")
        running = true
        local v = json.decode(text)
        running = false
        collectgarbage("setpause", pause)
        collectgarbage("collect")
        assert.equal(3000, #v)
        for i = 1, 3000 do
            assert.same({ id = i, name = "item " .. i, tags = { "a", "b" } }, v[i])
        end
        assert.equal(200, #inner)
        assert(nested > 0, "no finalizer ran during the decoding")
        for _, doc in ipairs(inner) do assert.same({ 1, 2, 3 }, doc.list) end
        assert.same({ ok = true }, json.decode('{"ok":true}')) -- and the next one as usual
    end)
end)

describe("json.encode", function()
    it("writes what decode reads back", function()
        local value = { number = 59807, price = "5600.00", ok = true, none = json.null,
                        list = { 1, 2, { x = "y" } }, empty = json.array(), object = {},
                        text = "кириллица \"quoted\" \\ \n", half = 0.5, tenth = 0.1 }
        local text = assert(json.encode(value))
        local back = assert(json.decode(text))
        assert.same(value.list, back.list)
        assert.equal(59807, back.number)
        assert.equal(json.null, back.none)
        assert.equal(value.text, back.text)
        assert.equal(0.1, back.tenth)
        assert.equal(0.5, back.half)
        assert.same({}, back.empty)
        assert.is_truthy(text:find('"empty":[]', 1, true))
        assert.is_truthy(text:find('"object":{}', 1, true))
    end)

    it("writes integral numbers as integers, whatever their Lua type", function()
        assert.equal("[3,-2,0,1.5]", json.encode{ 3.0, -2, 0, 1.5 })
        assert.equal("[9007199254740992]", json.encode{ 2 ^ 53 })
        assert.equal("[1e+300]", json.encode{ 1e300 })
    end)

    it("keeps empty marked lists as arrays and marks new ones", function()
        local t = {}
        assert.equal(t, json.array(t))
        assert.equal("[]", json.encode(t))
        assert.equal("{}", json.encode({}))
        assert.equal("[[],{}]", json.encode{ json.array(), {} })
        assert.equal("[1,2]", json.encode(json.array{ 1, 2 }))
        assert.has_error(function() json.array("x") end)
    end)

    it("writes sorted, indented text when asked, for files people diff", function()
        local value = { b = 1, a = { z = json.array{ 2, 3 }, y = "x" }, [""] = true }
        local text = assert(json.encode(value, true))
        assert.equal('{\n  "": true,\n  "a": {\n    "y": "x",\n    "z": [\n      2,\n      3\n'
                     .. '    ]\n  },\n  "b": 1\n}\n', text)
        assert.same(value, json.decode(text))
        assert.equal(text, json.encode(json.decode(text), true))
        local _, err = json.encode({ { 1, x = 1 } }, true)
        assert.equal("invalid", err.kind)
    end)

    it("refuses values with no JSON form with an invalid error", function()
        local cyclic = {}
        cyclic.self = cyclic
        local cases = {
            { { 1, nil, 3 }, "holes" },
            { { 1, x = 2 }, "mixes" },
            { { [true] = 1 }, "holes" },
            { { 0 / 0 }, "not finite" },
            { { math.huge }, "not finite" },
            { { "\255" }, "UTF-8" },
            { { print }, "type" },
            { cyclic, "nested too deeply" },
            { json.array{ 1, x = 2 }, "keys other than" },
        }
        for i, case in ipairs(cases) do
            local text, err = json.encode(case[1])
            assert.is_nil(text, i)
            assert.equal("invalid", err.kind, i)
            assert.matches("cannot be encoded as JSON", err.messages[1])
            assert.is_truthy(err.messages[1]:find(case[2], 1, true), err.messages[1])
            assert.matches("cannot be encoded", tostring(err))
        end
    end)
end)

describe("order answers", function()
    local sb, client

    lazy_setup(function()
        sb = assert(sandbox.start())
        client = assert(tc.new{ key = sb.key, api = sb.api, simple = sb.simple })
    end)

    lazy_teardown(function()
        client:close()
        assert.is_true(sb:stop())
    end)

    it("carry the order number as an integer", function()
        local order = assert(client:create_order{ event = EVENT, random = { [FAN] = 1 } })
        assert.is_number(order.number)
        if INTEGERS then
            assert.equal("integer", math.type(order.number))
            assert.not_matches("%.", tostring(order.number))
        end
        local again = assert(client:order(order.id))
        assert.equal(order.number, again.number)
        assert(order:cancel())
    end)
end)
