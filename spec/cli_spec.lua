-- cli_spec: the tc command (bin/tc) run as a user runs it: a child process
-- of the specs' own interpreter against a real sandbox. Its tables, its
-- --json (parsed), its exit codes, failures as one line without a
-- traceback, and the key never in its output.
local tc = require "ticketscloud"
local sandbox = require "ticketscloud.sandbox"
local cjson = require "cjson"

local LUA = arg and arg[-1] or "lua5.4" -- the interpreter running the specs (the sanitizer step's host too)
local EVENT = "5d7134962110d30a34e95b96"
local FAN_SET = "5d7135112110d30a34e97e2d"
local SEAT = "5d7134962110d30a34e95cfe"   -- the order example's seat, row 2 seat 14
-- A key of this spec's own, so that it can be looked for in every output.
local KEY = "cli5pec0key0never0printed0here42"

local function quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function read(path)
    local f = assert(io.open(path, "r"))
    local s = f:read("a")
    f:close()
    return s
end

-- The interpreter's full path: a run with PATH emptied must still start it.
local function interpreter()
    if LUA:find("/", 1, true) then return LUA end
    local p = io.popen("command -v " .. quote(LUA))
    local path = p:read("l")
    p:close()
    return path
end

local outputs = {} -- every stdout and stderr, checked for the key at the end

-- Runs tc with args (a list) and env (TC_* variables; others unset).
-- Returns its stdout, stderr and exit code.
local function run(args, env, prefix)
    env = env or {}
    local vars, unset = { "LUA_PATH=" .. quote(env.LUA_PATH or package.path),
                          "LUA_CPATH=" .. quote(package.cpath) }, {}
    for _, k in ipairs{ "TC_KEY", "TC_API", "TC_SIMPLE", "TC_DEBUG", "PATH" } do
        if env[k] then vars[#vars + 1] = k .. "=" .. quote(env[k])
        elseif k ~= "PATH" then unset[#unset + 1] = "-u " .. k end
    end
    local argv = {}
    for i, a in ipairs(args) do argv[i] = quote(a) end
    local errfile = os.tmpname()
    local cmd = ("%senv %s %s %s bin/tc %s 2>%s; echo \"exit=$?\""):format(
        prefix or "timeout 60 ", table.concat(unset, " "), table.concat(vars, " "),
        quote(interpreter()), table.concat(argv, " "), errfile)
    local p = io.popen(cmd)
    local out = p:read("a")
    p:close()
    local err = read(errfile)
    os.remove(errfile)
    local code = tonumber(out:match("exit=(%d+)\n$"))
    out = out:gsub("exit=%d+\n$", "")
    outputs[#outputs + 1] = out
    outputs[#outputs + 1] = err
    return out, err, code
end

-- A failure: exit code, and stderr one line "tc: ..." without a traceback.
local function assert_failure(code, pattern, out, err, got)
    assert.equal(code, got, err)
    assert.equal("", out)
    assert.matches("^tc: [^\n]+\n$", err)
    assert.is_nil(err:find("traceback", 1, true), err)
    assert.is_nil(err:find("%.lua:%d+:"), err)
    if pattern then assert.matches(pattern, err) end
end

describe("tc", function()
    local sb, env

    setup(function()
        sb = assert(sandbox.start{ key = KEY, log = "/dev/null" })
        env = { TC_KEY = KEY, TC_API = sb.api, TC_SIMPLE = sb.simple }
    end)

    teardown(function()
        assert.is_true(sb:stop())
        for _, text in ipairs(outputs) do
            assert.is_nil(text:find(KEY, 1, true), "the key was printed: " .. text)
        end
    end)

    it("--help lists the commands and the exit codes", function()
        local out, err, code = run({ "--help" }, env)
        assert.equal(0, code, err)
        for _, command in ipairs{ "events", "seats", "map", "order", "orders", "sandbox" } do
            assert.matches("\n   " .. command .. " ", out, 1, true)
        end
        assert.matches("Exit codes:", out, 1, true)
        out, err, code = run({ "order", "create", "--help" }, env)
        assert.equal(0, code, err)
        assert.matches("--adjacent", out, 1, true)
    end)

    it("a wrong command line is exit 2 and one line", function()
        assert_failure(2, "unknown command 'bogus'", run({ "bogus" }, env))
        assert_failure(2, "missing argument 'event'", run({ "seats" }, env))
        assert_failure(2, "--adjacent: an integer >= 1", run({ "seats", EVENT, "--adjacent", "0" }, env))
        assert_failure(2, "not an event id", run({ "seats", "Slipknot" }, env))
        assert_failure(2, "not an order id", run({ "order", "show", "42" }, env))
        assert_failure(2, "no sector \"B9\" %(the map has: Фан зона, VIP, A2%)",
                       run({ "seats", EVENT, "--sector", "B9" }, env))
        assert_failure(2, "no API key: set TC_KEY", run({ "events" }, {}))
    end)

    it("events: a table, and --json for scripts", function()
        local out, err, code = run({ "events" }, env)
        assert.equal(0, code, err)
        assert.matches("^EVENT%s+START %(UTC%)%s+STATUS%s+FREE%s+NAME\n", out)
        assert.matches(EVENT .. "  2020%-06%-12 15:00  PUBLIC%s+330/330  Slipknot\n", out)
        out, err, code = run({ "events", "--json" }, env)
        assert.equal(0, code, err)
        local list = cjson.decode(out)
        assert.equal(7, #list)
        local found
        for _, e in ipairs(list) do
            if e.id == EVENT then found = e end
        end
        assert.equal("Slipknot", found.name)
        assert.equal(3, #found.sets)
        -- The options go after the command as well as before it.
        local before = run({ "--json", "events", "--status", "stand_by" }, env)
        assert.equal(1, #cjson.decode(before))
    end)

    it("seats: in natural order, by sector name, with prices; --vacant --json", function()
        local out, err, code = run({ "seats", EVENT, "--sector", "A2", "--row", "2" }, env)
        assert.equal(0, code, err)
        local numbers = {}
        for n in out:gmatch("\nA2%s+2%s+(%d+)%s+vacant%s+990%.00%s+A2%s+%x+") do
            numbers[#numbers + 1] = tonumber(n)
        end
        assert.equal(20, #numbers)
        for i, n in ipairs(numbers) do assert.equal(i, n) end
        assert.matches("\n20 seats: 20 vacant\n$", out)
        out, err, code = run({ "seats", EVENT, "--vacant", "--json" }, env)
        assert.equal(0, code, err)
        local seats = cjson.decode(out)
        assert.equal(100, #seats)
        assert.equal("VACANT", seats[1].status)
        assert.same({ "1", "1" }, { seats[1].row, seats[1].number })
    end)

    it("seats --adjacent: the best blocks side by side", function()
        local out, err, code = run({ "seats", EVENT, "--adjacent", "3", "--limit", "2", "--json" }, env)
        assert.equal(0, code, err)
        local blocks = cjson.decode(out)
        assert.equal(2, #blocks)
        assert.equal("A2", blocks[1].sector_name)
        assert.equal("3", blocks[1].row)
        assert.same({ "9", "10", "11" }, blocks[1].numbers)
        assert.equal("2970.00", blocks[1].price)
        out, err, code = run({ "seats", EVENT, "--adjacent", "2", "--max-price", "100.00" }, env)
        assert.equal(0, code, err)
        assert.equal("no 2 vacant seats side by side\n", out)
    end)

    describe("order", function()
        it("create with the best seats and random tickets; customer, finish, show", function()
            local out, err, code = run({ "--json", "order", "create", EVENT, "--adjacent", "2",
                                         "--sector", "A2", "--random", "Фан зона=1" }, env)
            assert.equal(0, code, err)
            local order = cjson.decode(out)
            assert.equal("executed", order.status)
            assert.equal(3, #order.tickets)
            -- 2 x A2 (990.00 + 10 %) + one Фан зона (5600.00 + 10 %).
            assert.equal("8338.00", order.values.full)
            local id = order.id

            out, err, code = run({ "order", "customer", id, "--name", "Ivan", "--email",
                                   "ivan@example.com" }, env)
            assert.equal(0, code, err)
            assert.matches("customer Ivan, ivan@example.com\n", out)

            out, err, code = run({ "order", "finish", id }, env)
            assert.equal(0, code, err)
            assert.matches("^order " .. id .. "  done  event " .. EVENT .. " Slipknot\n", out)
            assert.matches("\ncode %w+\n", out)
            assert.matches("\ntotal%s+7580%.00%s+758%.00%s+8338%.00\n$", out)
            local barcodes = 0
            for barcode in out:gmatch("%s(%d+)\n") do
                assert.equal(17, #barcode)
                barcodes = barcodes + 1
            end
            assert.equal(3, barcodes)

            out, err, code = run({ "order", "show", id, "--json" }, env)
            assert.equal(0, code, err)
            assert.equal("done", cjson.decode(out).status)
            -- A done order cannot change: refused before sending.
            assert_failure(2, "is done: it cannot be changed", run({ "order", "cancel", id }, env))
        end)

        it("create with a ticket, add one, add random, cancel", function()
            local out, err, code = run({ "--json", "order", "create", EVENT, SEAT }, env)
            assert.equal(0, code, err)
            local id = cjson.decode(out).id
            local other = "5d7134962110d30a34e95cff"   -- row 2 seat 15
            out, err, code = run({ "--json", "order", "add", id, other }, env)
            assert.equal(0, code, err)
            assert.equal(2, #cjson.decode(out).tickets)
            out, err, code = run({ "--json", "order", "random", id, FAN_SET .. "=2" }, env)
            assert.equal(0, code, err)
            assert.equal(4, #cjson.decode(out).tickets)
            out, err, code = run({ "order", "cancel", id }, env)
            assert.equal(0, code, err)
            assert.matches("^order " .. id .. "  cancelled", out)
        end)

        it("refusals of the service are exit 1, one line", function()
            assert_failure(1, "Order 5d7134962110d30a34e9ffff not found",
                           run({ "order", "show", "5d7134962110d30a34e9ffff" }, env))
            -- An event without a deal: the service refuses the order.
            assert_failure(1, "Deal not found",
                           run({ "order", "create", "5e0a1b2c3d4e5f6071829304", "--random", "Вход=1" }, env))
            assert_failure(2, "no set \"Партер\" in the event",
                           run({ "order", "create", EVENT, "--random", "Партер=1" }, env))
        end)
    end)

    it("orders: a list, filters, and --sum in exact money", function()
        local out, err, code = run({ "orders", "--json" }, env)
        assert.equal(0, code, err)
        local list = cjson.decode(out)
        assert.is_true(#list >= 2)
        local want = { 0, 0 }
        for _, o in ipairs(list) do
            if o.status == "done" and o.event == EVENT then
                want[1] = tc.money.add(want[1], o.values.full)
                want[2] = want[2] + 1
            end
        end
        out, err, code = run({ "orders", "--event", EVENT, "--status", "done", "--sum", "--json" }, env)
        assert.equal(0, code, err)
        local sum = cjson.decode(out)
        assert.equal(want[2], sum.orders)
        assert.equal(tc.money.format(want[1]), sum.full)
        assert.equal("8338.00", sum.full)
        assert.equal("0.00", sum.discount)
        out, err, code = run({ "orders", "--status", "done,cancelled", "--sum" }, env)
        assert.equal(0, code, err)
        assert.matches("^ORDERS%s+TICKETS%s+PRICE%s+DISCOUNT%s+NOMINAL%s+EXTRA%s+FULL\n", out)
        out, err, code = run({ "orders", "--status", "cancelled" }, env)
        assert.equal(0, code, err)
        assert.matches("\n%x+  %d+%-%d+%-%d+ [%d:]+  cancelled%s+4%s+[%d.]+  Slipknot\n", out)
        assert_failure(2, "status", run({ "orders", "--status", "paid" }, env))
    end)

    describe("map", function()
        local function circles(svg)
            local counts = {}
            for status in svg:gmatch('<circle class="seat (%a+)') do
                counts[status] = (counts[status] or 0) + 1
            end
            return counts
        end

        it("writes the hall as SVG: its seats are the event's seats by status", function()
            local path = os.tmpname() .. ".svg"
            local out, err, code = run({ "map", EVENT, "-o", path, "--adjacent", "2" }, env)
            assert.equal(0, code, err)
            assert.matches("^" .. path:gsub("%p", "%%%0") .. ": Slipknot, 100 seats "
                           .. "%(%d+ vacant, %d+ reserved, %d+ sold%), 2 selected\n$", out)
            local svg = read(path)
            os.remove(path)
            local seats = cjson.decode((run({ "seats", EVENT, "--json" }, env)))
            local want = {}
            for _, s in ipairs(seats) do
                local k = s.status:lower()
                want[k] = (want[k] or 0) + 1
            end
            assert.same(want, circles(svg))
            assert.equal(2, select(2, svg:gsub(' selected"', "")))
            -- Without -o, the SVG on stdout.
            out, err, code = run({ "map", EVENT }, env)
            assert.equal(0, code, err)
            assert.matches("^<%?xml", out)
            assert.same(want, circles(out))
        end)

        it("writes PNG with rsvg-convert, and says so in one line when it is missing", function()
            local path = os.tmpname() .. ".png"
            local p = io.popen("command -v rsvg-convert")
            local found = p:read("a") ~= ""
            p:close()
            if found then
                local out, err, code = run({ "map", EVENT, "-o", path, "--json" }, env)
                assert.equal(0, code, err)
                assert.equal("png", cjson.decode(out).format)
                assert.equal("\137PNG", read(path):sub(1, 4))
                os.remove(path)
            end
            local bare = {}
            for k, v in pairs(env) do bare[k] = v end
            bare.PATH = "/nonexistent"
            assert_failure(2, "needs rsvg%-convert %(Debian: librsvg2%-bin%)",
                           run({ "map", EVENT, "-o", path }, bare, ""))
            assert_failure(2, "must end in .svg or .png", run({ "map", EVENT, "-o", "hall.gif" }, env))
            assert_failure(1, "has no hall map", run({ "map", "5d31fbdd27649b0dff076117" }, env))
        end)
    end)

    it("snapshot: a catalog that another sandbox serves as this one does", function()
        local path = os.tmpname()
        -- The seats sold here (by the order specs above), as the copy must give them.
        local function sold_seats(s)
            local c = assert(tc.new{ key = s.key, api = s.api, simple = s.simple })
            local sold = {}
            for seat in assert(c:seats{ event = EVENT, status = "SOLD" }) do sold[#sold + 1] = seat.ticket end
            c:close()
            table.sort(sold)
            return sold
        end
        local here = sold_seats(sb)
        assert.is_true(#here > 0)
        local out, err, code = run({ "snapshot", "--event", EVENT, "-o", path }, env)
        assert.equal(0, code, err)
        assert.equal(("%s: 1 event, 100 seats (%d sold); tc-sandbox --catalog %s serves it\n")
                     :format(path, #here, path), out)
        local copy = assert(sandbox.start{ catalog = path, log = "/dev/null" })
        assert.same(here, sold_seats(copy))
        assert.is_true(copy:stop())

        out, err, code = run({ "snapshot", "--event", EVENT, "--reset", "-o", path, "--json" }, env)
        assert.equal(0, code, err)
        assert.same({ file = path, events = 1, seats = 100, sold = 0 }, cjson.decode(out))
        local text = run({ "snapshot", "--event", EVENT }, env)
        assert.equal(EVENT, cjson.decode(text).events[1].id)
        os.remove(path)

        assert_failure(1, "no event 5d7134962110d30a34e95b00",
                       run({ "snapshot", "--event", "5d7134962110d30a34e95b00" }, env))
        assert_failure(2, "%-%-event x: an event id", run({ "snapshot", "--event", "x" }, env))
        assert_failure(2, nil, run({ "snapshot" }, env))
        assert_failure(2, "holds", run({ "snapshot", "--event", EVENT, "--holds", "keep" }, env))
        assert_failure(1, "cannot write",
                       run({ "snapshot", "--event", EVENT, "-o", "/nonexistent/x.json" }, env))
    end)

    it("a progress line on stderr only when stderr is a terminal", function()
        local _, err, code = run({ "seats", EVENT }, env)
        assert.equal(0, code)
        assert.equal("", err)
        local p = io.popen("command -v script")
        local found = p:read("a") ~= ""
        p:close()
        if not found then return end
        -- script(1) gives tc a terminal; stdout and stderr both go to it.
        local vars = { "LUA_PATH=" .. quote(package.path), "LUA_CPATH=" .. quote(package.cpath),
                       "TC_KEY=" .. quote(KEY), "TC_API=" .. quote(sb.api), "TC_SIMPLE=" .. quote(sb.simple) }
        local cmd = ("env %s %s bin/tc seats %s"):format(table.concat(vars, " "), quote(interpreter()), EVENT)
        p = io.popen("timeout 60 script -qec " .. quote(cmd) .. " /dev/null < /dev/null")
        local tty = p:read("a")
        p:close()
        outputs[#outputs + 1] = tty
        assert.matches("\r100 seats%.%.%.", tty)
    end)

    it("failures of the network and of the key are exit 4 and 3, one line", function()
        local dead = { TC_KEY = KEY, TC_API = "http://127.0.0.1:1", TC_SIMPLE = "http://127.0.0.1:1" }
        assert_failure(4, "transport", run({ "orders" }, dead))
        assert_failure(4, nil, run({ "events" }, dead))
        local wrong = { TC_KEY = "wrong0key0of0the0right0shape123", TC_API = sb.api, TC_SIMPLE = sb.simple }
        assert_failure(3, "auth", run({ "events" }, wrong))
        assert_failure(3, "auth", run({ "orders" }, wrong))
        -- A bad key given as a flag is refused before anything is sent.
        assert_failure(2, "key", run({ "--key", "two words", "events" }, env))
    end)

    it("a module that cannot be loaded is exit 70, one line", function()
        assert_failure(70, "cannot load ticketscloud.cli",
                       run({ "events" }, { LUA_PATH = "/nonexistent/?.lua" }))
    end)

    it("sandbox: starts one, prints how to reach it, and ends when it is stopped", function()
        local vars = { "LUA_PATH=" .. quote(package.path), "LUA_CPATH=" .. quote(package.cpath) }
        if os.getenv("TC_SANDBOX") then vars[#vars + 1] = "TC_SANDBOX=" .. quote(os.getenv("TC_SANDBOX")) end
        local p = io.popen(("timeout 60 env %s %s bin/tc sandbox --json; echo \"exit=$?\""):format(
            table.concat(vars, " "), quote(interpreter())))
        local reach = cjson.decode(p:read("l"))
        assert.equal(sandbox.DEFAULT_KEY, reach.key)
        assert.matches("^http://127%.0%.0%.1:%d+$", reach.api)
        local out, err, code = run({ "--json", "events" }, { TC_KEY = reach.key, TC_API = reach.api,
                                                              TC_SIMPLE = reach.simple })
        assert.equal(0, code, err)
        assert.equal(7, #cjson.decode(out))
        os.execute(("kill %d"):format(reach.pid))
        local rest = p:read("a")
        p:close()
        assert.equal("exit=0\n", rest)
    end)
end)
