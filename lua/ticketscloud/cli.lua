--- The `tc` command line: the catalogue, seats, halls and orders from a shell.
--
-- `bin/tc` runs `cli.main(arg)`. Every command is short composition of the
-- client (`tc.new`, the catalogue streams, the order helpers, `flows`),
-- `ticketscloud.seating` and `tc.money`: the rules stay where they are
-- owned. Tables for people, `--json` for scripts; every failure is one line
-- on stderr and an exit code (docs/cli.md):
--
--   0 done; 1 the service refused, or something asked for is not there;
--   2 usage: the command line or a setting is wrong, nothing was sent;
--   3 the key was refused; 4 no answer (network, timeout); 5 unknown: a
--   change whose outcome could not be learnt (look before trying again);
--   70 tc itself failed (a bug, a missing module); 130 interrupted.
--
-- @module ticketscloud.cli

local argparse = require "argparse"
local tc = require "ticketscloud"
local core = require "ticketscloud.core"
local flows = require "ticketscloud.flows"
local json = require "ticketscloud.json"
local seating = require "ticketscloud.seating"
local snapshot = require "ticketscloud.snapshot"

local concat = table.concat
local debug_traceback = debug.traceback
local error = error
local getmetatable = getmetatable
local huge = math.huge
local io_open = io.open
local io_popen = io.popen
local io_stderr = io.stderr
local io_stdout = io.stdout
local ipairs = ipairs
local next = next
local os_execute = os.execute
local os_getenv = os.getenv
local os_remove = os.remove
local os_tmpname = os.tmpname
local pairs = pairs
local pcall = pcall
local select = select
local setmetatable = setmetatable
local sort = table.sort
local tonumber = tonumber
local tostring = tostring
local type = type
local xpcall = xpcall

local money = tc.money

local _M = { _VERSION = core._VERSION }

_M.EXIT = { ok = 0, failed = 1, usage = 2, auth = 3, network = 4, unknown = 5, internal = 70,
            interrupted = 130 }
local EXIT = _M.EXIT
-- An error's kind -> the exit code; any other kind is 1.
local KIND_EXIT = { invalid = EXIT.usage, auth = EXIT.auth, transport = EXIT.network,
                    timeout = EXIT.network, unknown = EXIT.unknown }

local ID = "^%x+$" -- with a length of 24: an ObjectId

-- A failure the commands raise: caught by main, printed as one line.
local Failure = {}
Failure.__index = Failure

local function failure(code, message)
    return setmetatable({ code = code, message = message }, Failure)
end

-- Stops the command: an error table of the client (its kind gives the
-- exit code) or a message with an exit code.
local function stop(err, code)
    if type(err) == "table" and getmetatable(err) ~= Failure then
        local text = tostring(err):gsub("^ticketscloud: ", "")
        error(failure(code or KIND_EXIT[err.kind] or EXIT.failed, text), 0)
    end
    error(failure(code or EXIT.failed, tostring(err)), 0)
end

local function usage(message) stop(message, EXIT.usage) end

-- An environment variable; empty counts as unset.
local function env(name)
    local v = os_getenv(name)
    if v ~= nil and v ~= "" then return v end
end

local function is_id(s)
    return type(s) == "string" and #s == 24 and s:find(ID) ~= nil
end

-- Output ---------------------------------------------------------------

local function out(...)
    io_stdout:write(...)
end

-- Width of a string in characters (UTF-8), for columns.
local function width(s)
    return select(2, s:gsub("[^\128-\191]", ""))
end

-- Prints rows under headers in aligned columns; columns named in `right`
-- (by index) are right-aligned (money, counts).
local function print_table(headers, rows, right)
    right = right or {}
    local widths = {}
    for i, h in ipairs(headers) do widths[i] = width(h) end
    for _, r in ipairs(rows) do
        for i = 1, #headers do
            r[i] = r[i] == nil and "" or tostring(r[i])
            if width(r[i]) > widths[i] then widths[i] = width(r[i]) end
        end
    end
    local function line(cells)
        local parts = {}
        for i = 1, #headers do
            local c = cells[i] or ""
            local pad = (" "):rep(widths[i] - width(c))
            parts[i] = right[i] and pad .. c or c .. pad
        end
        out((concat(parts, "  "):gsub("%s+$", "")), "\n")
    end
    line(headers)
    for _, r in ipairs(rows) do line(r) end
end

-- Empty tables print as [] (the catalogue's repeated fields), except under
-- the keys that hold objects.
local OBJECT_KEYS = { svg = true, raw = true, refs = true, settings = true, customer = true,
                      vendor_data = true }

local function plain(v, key)
    if type(v) ~= "table" or v == tc.null then return v end
    local t = {}
    for k, item in pairs(v) do t[k] = plain(item, k) end
    if next(t) == nil and not OBJECT_KEYS[key] then return json.array(t) end
    return t
end

local function print_json(v)
    local text, err = json.encode(plain(v))
    if not text then stop(err, EXIT.internal) end
    out(text, "\n")
end

-- A progress line on stderr for long listings, when stderr is a terminal:
-- step() counts one item, at(n) says n items so far.
local function progress(what)
    local ok = os_execute("test -t 2")
    if not (ok == true or ok == 0) then
        return { step = function() end, at = function() end, done = function() end }
    end
    local n = 0
    local function show(total)
        io_stderr:write(("\r%d%s %s..."):format(n, total and "/" .. total or "", what))
        io_stderr:flush()
    end
    return {
        step = function(total)
            n = n + 1
            if n % 100 == 0 then show(total) end
        end,
        at = function(count)
            n = count
            show()
        end,
        done = function()
            if n >= 100 then io_stderr:write("\r\27[K") end
        end,
    }
end

-- Every item of a stream, or stop with its error.
local function all(stream, what, total_of)
    local p = progress(what)
    local items = {}
    for item in stream do
        items[#items + 1] = item
        p.step(total_of and total_of(stream))
    end
    p.done()
    local err = stream:error()
    if err then stop(err) end
    return items
end

local function fmt_money(minor)
    if minor == nil then return "" end
    return money.format(minor)
end

local function fmt_time(seconds)
    if type(seconds) ~= "number" then return "" end
    local s = tc.time.format(seconds)
    return s and s:sub(1, 16) or ""
end

-- The client ----------------------------------------------------------

local function client_of(args)
    local key = args.key or env("TC_KEY")
    if not key then
        usage("no API key: set TC_KEY or give --key (tc sandbox starts a local service)")
    end
    local opts = { key = key, api = args.api or env("TC_API"),
                   simple = args.simple or env("TC_SIMPLE") }
    if args.timeout then opts.timeout = args.timeout end
    local client, err = tc.new(opts)
    if not client then stop(err) end
    return client, key
end

local function event_of(client, id)
    if not is_id(id) then usage(("EVENT: %q is not an event id (24 hexadecimal digits)"):format(id)) end
    local events, err = client:events{ ids = { id } }
    if not events then stop(err) end
    local list = all(events, "events")
    if not list[1] then stop(("event %s not found"):format(id)) end
    return list[1]
end

-- The event's map, or nil when it has none.
local function map_of(client, event)
    if not event.map or event.map == "" then return nil end
    local maps, err = client:maps{ ids = { event.map } }
    if not maps then stop(err) end
    return all(maps, "maps")[1]
end

local function seats_of(client, request)
    local stream, err = client:seats(request)
    if not stream then stop(err) end
    return all(stream, "seats")
end

-- A sector id from an id or a name of the map's sectors.
local function sector_id(map, s)
    if is_id(s) then return s end
    local names = {}
    for _, sector in ipairs(map and map.sectors or {}) do
        if sector.name == s then return sector.id end
        names[#names + 1] = sector.name
    end
    usage(("--sector: no sector %q%s"):format(s, #names > 0 and
        " (the map has: " .. concat(names, ", ") .. ")" or " (the event has no map)"))
end

local function sector_names(map)
    local names = {}
    for _, s in ipairs(map and map.sectors or {}) do names[s.id] = s.name end
    return names
end

local function set_names(event)
    local names = {}
    for _, s in ipairs(event.sets or {}) do names[s.id] = s.name end
    return names
end

-- SET=N pairs (SET an id or the name of one of the event's sets) -> { [id] = n }.
local function counts_of(pairs_list, event)
    local counts = {}
    for _, pair in ipairs(pairs_list or {}) do
        local set, n = pair:match("^(.+)=(%d+)$")
        if not set then usage(("%q: SET=COUNT expected, e.g. %q"):format(pair, "Фан зона=2")) end
        local id = is_id(set) and set or nil
        if not id then
            for _, s in ipairs(event and event.sets or {}) do
                if s.name == set then
                    if id then usage(("set name %q is ambiguous: use its id"):format(set)) end
                    id = s.id
                end
            end
        end
        if not id then usage(("no set %q in the event"):format(set)) end
        counts[id] = (counts[id] or 0) + tonumber(n)
    end
    return counts
end

-- Commands --------------------------------------------------------------

local commands = {}

function commands.events(args, client)
    local stream, err = client:events{ status = args.status and args.status:upper() or nil }
    if not stream then stop(err) end
    local list = all(stream, "events")
    sort(list, function(a, b)
        local sa, sb = a.lifetime and a.lifetime.start or 0, b.lifetime and b.lifetime.start or 0
        if sa ~= sb then return sa < sb end
        return a.id < b.id
    end)
    if args.json then return print_json(list) end
    local rows = {}
    for _, e in ipairs(list) do
        rows[#rows + 1] = { e.id, fmt_time(e.lifetime and e.lifetime.start), e.status,
                            ("%d/%d"):format(e.tickets_amount_vacant or 0, e.tickets_amount or 0),
                            e.name }
    end
    print_table({ "EVENT", "START (UTC)", "STATUS", "FREE", "NAME" }, rows, { [4] = true })
end

local STATUS_NAMES = { VACANT = "vacant", RESERVED = "reserved", SOLD = "sold" }

local function block_rows(blocks, sectors)
    local rows = {}
    for i, b in ipairs(blocks) do
        rows[#rows + 1] = { i, sectors[b.sector] or b.sector, b.row, concat(b.numbers, " "),
                            fmt_money(b.price), concat(b.tickets, " ") }
    end
    return rows
end

local function block_json(blocks, sectors)
    local list = {}
    for _, b in ipairs(blocks) do
        list[#list + 1] = { sector = b.sector, sector_name = sectors[b.sector], row = b.row,
                            numbers = b.numbers, tickets = b.tickets,
                            price = b.price and money.format(b.price) or nil,
                            distance = b.distance ~= huge and b.distance or nil }
    end
    return json.array(list)
end

-- The best blocks of n adjacent vacant seats (seats in any status).
local function best_blocks(args, seats, map, event, n)
    local blocks, err = seating.adjacent(seats, n, {
        map = map, event = event, sector = args.sector and sector_id(map, args.sector),
        max_price = args.max_price, limit = args.limit })
    if not blocks then stop(err) end
    return blocks
end

function commands.seats(args, client)
    local event = event_of(client, args.event)
    local map = map_of(client, event)
    local request = { event = event.id, row = args.row }
    if args.sector then request.sector = sector_id(map, args.sector) end
    local adjacent = args.adjacent
    if args.vacant and not adjacent then request.status = "VACANT" end
    local seats = seats_of(client, request)
    local sectors, sets = sector_names(map), set_names(event)
    local prices = seating.prices(event)

    if adjacent then
        args.limit = args.limit or 10
        local blocks = best_blocks(args, seats, map, event, adjacent)
        if args.json then return print_json(block_json(blocks, sectors)) end
        if #blocks == 0 then
            out(("no %d vacant seats side by side\n"):format(adjacent))
            return
        end
        return print_table({ "#", "SECTOR", "ROW", "SEATS", "PRICE", "TICKETS" },
                           block_rows(blocks, sectors), { [1] = true, [5] = true })
    end

    local rows, counts = {}, {}
    local ordered = {}
    for _, r in ipairs(seating.rows(seats, { map = map })) do
        for _, s in ipairs(r.seats) do ordered[#ordered + 1] = s end
    end
    if args.json then return print_json(json.array(ordered)) end
    for _, s in ipairs(ordered) do
        local status = STATUS_NAMES[s.status] or tostring(s.status)
        counts[status] = (counts[status] or 0) + 1
        rows[#rows + 1] = { sectors[s.sector] or s.sector, s.row, s.number, status,
                            fmt_money(prices[s.set]), sets[s.set] or s.set, s.ticket }
    end
    print_table({ "SECTOR", "ROW", "SEAT", "STATUS", "PRICE", "SET", "TICKET" }, rows,
                { [5] = true })
    local parts = {}
    for _, k in ipairs{ "vacant", "reserved", "sold" } do
        if counts[k] then parts[#parts + 1] = counts[k] .. " " .. k end
    end
    out(("%d seats%s\n"):format(#ordered, #parts > 0 and ": " .. concat(parts, ", ") or ""))
end

-- Whether a program is on PATH.
local function on_path(name)
    local p = io_popen("command -v " .. name .. " 2>/dev/null")
    if not p then return false end
    local found = p:read("*l")
    p:close()
    return found ~= nil and found ~= ""
end

local function quote(s)
    return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function write_file(path, text)
    local f, err = io_open(path, "w")
    if not f then stop("-o: " .. tostring(err)) end
    local ok, werr = f:write(text)
    f:close()
    if not ok then stop("-o: " .. tostring(werr)) end
end

function commands.map(args, client)
    local output = args.output
    local format = "svg"
    if output and output ~= "-" then
        format = output:lower():match("%.(%a+)$")
        if format ~= "svg" and format ~= "png" then
            usage("-o: the file name must end in .svg or .png")
        end
        if format == "png" and not on_path("rsvg-convert") then
            usage("-o " .. output .. ": writing PNG needs rsvg-convert (Debian: librsvg2-bin), " ..
                  "which is not on PATH; -o hall.svg writes SVG")
        end
    end
    local event = event_of(client, args.event)
    local map = map_of(client, event)
    if not map then stop(("event %s has no hall map"):format(event.id)) end
    local seats = seats_of(client, { event = event.id })
    local selected = {}
    for _, t in ipairs(args.select or {}) do selected[#selected + 1] = t end
    if args.adjacent then
        args.limit = 1
        local block = best_blocks(args, seats, map, event, args.adjacent)[1]
        if not block then stop(("no %d vacant seats side by side"):format(args.adjacent)) end
        for _, t in ipairs(block.tickets) do selected[#selected + 1] = t end
    end
    local svg = seating.svg(map, seats, { event = event, selected = selected })
    if not output or output == "-" then
        out(svg)
        return
    end
    if format == "svg" then
        write_file(output, svg)
    else
        local tmp = os_tmpname()
        write_file(tmp, svg)
        local ok = os_execute("rsvg-convert -f png -o " .. quote(output) .. " " .. quote(tmp))
        os_remove(tmp)
        if not (ok == true or ok == 0) then stop("rsvg-convert could not write " .. output) end
    end
    local counts = {}
    for _, s in ipairs(seats) do
        local k = STATUS_NAMES[s.status] or "sold"
        counts[k] = (counts[k] or 0) + 1
    end
    if args.json then
        return print_json{ file = output, format = format, seats = counts, selected = json.array(selected) }
    end
    out(("%s: %s, %d seats (%d vacant, %d reserved, %d sold)%s\n"):format(
        output, event.name, #seats, counts.vacant or 0, counts.reserved or 0, counts.sold or 0,
        #selected > 0 and ", " .. #selected .. " selected" or ""))
end

-- Orders ------------------------------------------------------------------

local function order_json(order)
    local t = {}
    for k, v in pairs(order) do t[k] = v end
    return t
end

local function show_order(args, order)
    if args.json then return print_json(order_json(order)) end
    local refs = order.refs or {}
    local sets = {}
    for id, set in pairs(refs.sets or {}) do sets[id] = set.name end
    local ev = refs.events and refs.events[order.event]
    local title = ev and ev.title and ev.title.text
    out(("order %s  %s  event %s%s\n"):format(order.id, order.status, tostring(order.event),
                                             title and " " .. title or ""))
    if order.status == "executed" and order.expired_after then
        out(("expires %s UTC\n"):format(order.expired_after))
    end
    local customer = order.settings and order.settings.customer
    if type(customer) == "table" and next(customer) then
        local parts = {}
        for _, k in ipairs{ "name", "email", "phone", "lang" } do
            if type(customer[k]) == "string" and customer[k] ~= "" then parts[#parts + 1] = customer[k] end
        end
        out("customer ", concat(parts, ", "), "\n")
    end
    if order.code and order.code ~= tc.null then out("code ", tostring(order.code), "\n") end
    local rows = {}
    for _, t in ipairs(order.tickets or {}) do
        local seat = type(t.seat) == "table" and ("row %s seat %s"):format(t.seat.row, t.seat.number) or ""
        local barcode = (t.barcode ~= nil and t.barcode ~= tc.null) and t.barcode or ""
        rows[#rows + 1] = { t.id, sets[t.set] or t.set, seat, t.price, t.extra, t.full, barcode }
    end
    local v = order.values or {}
    rows[#rows + 1] = { "total", "", "", v.price, v.extra, v.full, "" }
    print_table({ "TICKET", "SET", "SEAT", "PRICE", "EXTRA", "FULL", "BARCODE" }, rows,
                { [4] = true, [5] = true, [6] = true })
end

local function order_of(client, id)
    if not is_id(id) then usage(("ORDER: %q is not an order id (24 hexadecimal digits)"):format(id)) end
    local order, err = client:order(id)
    if not order then stop(err) end
    return order
end

local function customer_of(args)
    local c = {}
    for _, k in ipairs{ "name", "email", "phone", "lang" } do c[k] = args[k] end
    if next(c) then return c end
end

local order_commands = {}

function order_commands.create(args, client)
    local event = event_of(client, args.event)
    local tickets = {}
    for _, t in ipairs(args.tickets or {}) do tickets[#tickets + 1] = t end
    if args.adjacent then
        local map = map_of(client, event)
        args.limit = 1
        local block = best_blocks(args, seats_of(client, { event = event.id }), map, event, args.adjacent)[1]
        if not block then stop(("no %d vacant seats side by side"):format(args.adjacent)) end
        for _, t in ipairs(block.tickets) do tickets[#tickets + 1] = t end
    end
    local random = counts_of(args.random, event)
    -- flows.mixed_order: seats first when there are any (the event follows
    -- from them), else an order of the event with the unseated tickets; a
    -- step that fails cancels the order.
    local order, err = flows.mixed_order(client, {
        event = event.id, seats = tickets, random = random,
        first = #tickets > 0 and "seats" or "random",
        customer = customer_of(args), finish = args.finish,
    })
    if not order then stop(err) end
    show_order(args, order)
end

function order_commands.add(args, client)
    local order = order_of(client, args.order_id)
    local ok, err = order:add_tickets(args.tickets)
    if not ok then stop(err) end
    show_order(args, order)
end

function order_commands.random(args, client)
    local order = order_of(client, args.order_id)
    local ok, err = order:add_random(counts_of(args.counts, event_of(client, order.event)))
    if not ok then stop(err) end
    show_order(args, order)
end

function order_commands.customer(args, client)
    local customer = customer_of(args)
    if not customer then usage("order customer: give --name, --email, --phone or --lang") end
    local order = order_of(client, args.order_id)
    local ok, err = order:set_customer(customer)
    if not ok then stop(err) end
    show_order(args, order)
end

function order_commands.finish(args, client)
    local order = order_of(client, args.order_id)
    local ok, err = order:finish()
    if not ok then stop(err) end
    show_order(args, order)
end

function order_commands.cancel(args, client)
    local order = order_of(client, args.order_id)
    local ok, err = order:cancel()
    if not ok then stop(err) end
    show_order(args, order)
end

function order_commands.show(args, client)
    show_order(args, order_of(client, args.order_id))
end

function commands.order(args, client)
    return order_commands[args.order_command](args, client)
end

local VALUES = { "price", "discount", "nominal", "extra", "full" }

-- tc snapshot: a tc-sandbox catalog of events (ticketscloud.snapshot).
function commands.snapshot(args, client)
    for _, id in ipairs(args.event) do
        if not is_id(id) then usage("--event " .. id .. ": an event id (24 hexadecimal digits)") end
    end
    local p = progress("seats")
    local catalog, err = snapshot.take(client, {
        events = args.event, holds = args.holds, reset = args.reset,
        distributor = args.distributor, progress = function(_, n) p.at(n) end })
    p.done()
    if not catalog then stop(err) end
    local seats, sold = 0, 0
    for _, e in ipairs(catalog.events) do
        for _, set in ipairs(e.sets or {}) do
            for _, t in ipairs(set.tickets or {}) do
                if t.seat then
                    seats = seats + 1
                    if t.status == "SOLD" then sold = sold + 1 end
                end
            end
        end
    end
    if not args.output then
        local text
        text, err = json.encode(catalog, true)
        if not text then stop(err, EXIT.internal) end
        return out(text)
    end
    local ok
    ok, err = snapshot.write(catalog, args.output)
    if not ok then stop(err, EXIT.failed) end
    if args.json then
        return print_json{ file = args.output, events = #catalog.events, seats = seats, sold = sold }
    end
    out(("%s: %d event%s, %d seats (%d sold); tc-sandbox --catalog %s serves it\n"):format(
        args.output, #catalog.events, #catalog.events == 1 and "" or "s", seats, sold, args.output))
end

function commands.orders(args, client)
    local filter = { page_size = 200 }
    if args.event then
        if not is_id(args.event) then usage(("--event: %q is not an event id"):format(args.event)) end
        filter.events = { args.event }
    end
    local statuses = {}
    for _, s in ipairs(args.status or {}) do
        for one in s:gmatch("[^,%s]+") do statuses[#statuses + 1] = one end
    end
    if #statuses > 0 then filter.status = statuses end
    local stream, err = client:orders(filter)
    if not stream then stop(err) end
    local list = all(stream, "orders", function(s) return s.total end)

    if args.sum then
        -- Exact money: every amount through tc.money, never a float.
        local sums, tickets = {}, 0
        for _, k in ipairs(VALUES) do sums[k] = 0 end
        for _, o in ipairs(list) do
            tickets = tickets + #(o.tickets or {})
            for _, k in ipairs(VALUES) do
                local v = o.values and o.values[k]
                if v ~= nil then
                    local s, serr = money.add(sums[k], v)
                    if not s then stop(serr) end
                    sums[k] = s
                end
            end
        end
        local result = { orders = #list, tickets = tickets }
        for _, k in ipairs(VALUES) do result[k] = money.format(sums[k]) end
        if args.json then return print_json(result) end
        print_table({ "ORDERS", "TICKETS", "PRICE", "DISCOUNT", "NOMINAL", "EXTRA", "FULL" },
                    { { result.orders, result.tickets, result.price, result.discount,
                        result.nominal, result.extra, result.full } },
                    { true, true, true, true, true, true, true })
        return
    end

    if args.json then
        local docs = {}
        for i, o in ipairs(list) do docs[i] = order_json(o) end
        return print_json(json.array(docs))
    end
    local rows = {}
    for _, o in ipairs(list) do
        local ev = o.refs and o.refs.events and o.refs.events[o.event]
        rows[#rows + 1] = { o.id, o.created_at, o.status, #(o.tickets or {}),
                            o.values and o.values.full, ev and ev.title and ev.title.text or o.event }
    end
    print_table({ "ORDER", "CREATED (UTC)", "STATUS", "TICKETS", "FULL", "EVENT" }, rows,
                { [4] = true, [5] = true })
end

-- tc sandbox: runs until the sandbox stops (Ctrl-C, or SIGTERM to its pid).
local function run_sandbox(args)
    local sandbox = require "ticketscloud.sandbox"
    local sb, err = sandbox.start{ expire = args.expire, catalog = args.catalog,
                                   seed = args.seed, log = args.log or "/dev/null" }
    if not sb then stop(err) end
    if args.json then
        print_json{ pid = sb.pid, key = sb.key, api = sb.api, simple = sb.simple }
    else
        out(("tc-sandbox is running (pid %d). In another shell:\n"):format(sb.pid))
        out(("  export TC_KEY=%s TC_API=%s TC_SIMPLE=%s\n"):format(sb.key, sb.api, sb.simple))
        out("Ctrl-C (or kill ", tostring(sb.pid), ") stops it.\n")
    end
    io_stdout:flush()
    -- Wait for the sandbox to end; an interrupt (Ctrl-C reaches it too)
    -- stops it.
    local ok, e = pcall(function() return sb.proc:read("*a") end)
    local stopped = sb:stop()
    if not ok and not tostring(e):find("interrupted", 1, true) then error(e, 0) end
    if not stopped and ok then stop("tc-sandbox ended with an error (--log FILE keeps its log)") end
    if not args.json then out("tc-sandbox stopped\n") end
end

-- The command line ---------------------------------------------------------

local function positive(what)
    return function(s)
        local n = tonumber(s)
        if not n or n <= 0 then return nil, what .. ": a positive number expected" end
        return n
    end
end

local function count(what)
    return function(s)
        local n = tonumber(s)
        if not n or n < 1 or n % 1 ~= 0 then return nil, what .. ": an integer >= 1 expected" end
        return n
    end
end

local EPILOG = [[
Settings: TC_KEY (the API key), TC_API (REST, default https://ticketscloud.com) and
TC_SIMPLE (the catalogue, default simple.ticketscloud.com:443), or --key, --api, --simple.
Exit codes: 0 done, 1 refused or not found, 2 usage (nothing sent), 3 key refused,
4 no answer (network, timeout), 5 outcome unknown, 70 tc failed, 130 interrupted.
More: docs/cli.md.]]

local function parser()
    local p = argparse("tc", "Ticketscloud from the command line: events, seats, the hall, orders.")
        :epilog(EPILOG)
        :help_max_width(100)
    p:command_target("command")
    p:flag("--json", "Output JSON for scripts instead of tables.")
    p:option("--key", "The API key (default: $TC_KEY).")
    p:option("--api", "REST base URL (default: $TC_API, else https://ticketscloud.com).")
    p:option("--simple", "Catalogue gRPC target (default: $TC_SIMPLE, else simple.ticketscloud.com:443).")
    p:option("--timeout", "Seconds for each call (default 10).")
        :convert(positive("--timeout"))

    local events = p:command("events", "List the events.")
    events:option("--status", "Only events of this status: public, stand_by.")
        :choices{ "public", "stand_by", "any" }

    local seats = p:command("seats", "List the seats of an event, with their status and price.")
    seats:argument("event", "The event id.")
    seats:flag("--vacant", "Only vacant seats.")
    seats:option("--sector", "Only this sector (a name or an id).")
    seats:option("--row", "Only this row.")
    seats:option("--adjacent", "List the best blocks of N vacant seats side by side instead.")
        :argname("N"):convert(count("--adjacent"))
    seats:option("--max-price", "With --adjacent: at most this price per seat (e.g. 1000.00).")
    seats:option("--limit", "With --adjacent: at most this many blocks (default 10).")
        :convert(count("--limit"))

    local map = p:command("map", "Draw the hall of an event, its seats by status, as SVG or PNG.")
    map:argument("event", "The event id.")
    map:option("-o --output", "Write to FILE: .svg, or .png with rsvg-convert (default: SVG on stdout).")
        :argname("FILE")
    map:option("--select", "Show this ticket as selected (repeatable).")
        :argname("TICKET"):count("*")
    map:option("--adjacent", "Select the best block of N vacant seats side by side.")
        :argname("N"):convert(count("--adjacent"))
    map:option("--sector", "With --adjacent: in this sector (a name or an id).")
    map:option("--max-price", "With --adjacent: at most this price per seat.")

    local order = p:command("order", "Make, change and look at one order.")
    order:command_target("order_command")
    local function customer_options(c)
        c:option("--name", "The customer's name.")
        c:option("--email", "The customer's e-mail.")
        c:option("--phone", "The customer's phone.")
        c:option("--lang", "The customer's language: ru or en.")
    end
    local create = order:command("create", "Create an order: seated tickets, random unseated ones, or both.")
    create:argument("event", "The event id.")
    create:argument("tickets", "Seated tickets to hold."):args("*")
    create:option("--random", "SET=N: N unseated tickets of a set (its name or id); repeatable.")
        :count("*")
    create:option("--adjacent", "Hold the best block of N vacant seats side by side.")
        :argname("N"):convert(count("--adjacent"))
    create:option("--sector", "With --adjacent: in this sector (a name or an id).")
    create:option("--max-price", "With --adjacent: at most this price per seat.")
    customer_options(create)
    create:flag("--finish", "Finish the order too (status done: a sale).")
    local add = order:command("add", "Add seated tickets to an order.")
    add:argument("order", "The order id."):target("order_id")
    add:argument("tickets", "The tickets to add."):args("+")
    local random = order:command("random", "Add unseated tickets to an order.")
    random:argument("order", "The order id."):target("order_id")
    random:argument("counts", "SET=N: N more tickets of a set (its name or id)."):args("+")
    local customer = order:command("customer", "Set the customer of an order.")
    customer:argument("order", "The order id."):target("order_id")
    customer_options(customer)
    order:command("finish", "Finish an order (status done: a sale).")
        :argument("order", "The order id."):target("order_id")
    order:command("cancel", "Cancel an order: its tickets go back on sale.")
        :argument("order", "The order id."):target("order_id")
    order:command("show", "Show an order.")
        :argument("order", "The order id."):target("order_id")

    local orders = p:command("orders", "List orders; --sum adds up their money.")
    orders:option("--event", "Only orders of this event.")
    orders:option("--status", "Only orders of this status (executed, done, cancelled, expired); "
                  .. "repeatable or comma-separated."):count("*")
    orders:flag("--sum", "Print the number of orders and tickets and the sums of their money.")

    local snap = p:command("snapshot", "Copy events, their hall and every seat's status into a "
                           .. "tc-sandbox catalog.")
    snap:option("--event", "An event to copy (repeatable).")
        :count("+")
    snap:option("-o --output", "Write the catalog to FILE (default: stdout).")
        :argname("FILE")
    snap:option("--holds", "What a held seat becomes: vacant (default) or sold.")
        :choices{ "vacant", "sold" }
    snap:flag("--reset", "Start every ticket vacant.")
    snap:option("--distributor", "The partner id the sandbox's keys act as.")

    local sandbox = p:command("sandbox", "Start a local tc-sandbox and print how to reach it.")
    sandbox:option("--expire", "Seconds an unfinished order lives (default 900).")
        :convert(count("--expire"))
    sandbox:option("--catalog", "The catalog to serve (default: the example catalog).")
    sandbox:option("--seed", "Seed for ids and barcodes (default: from the clock).")
        :convert(count("--seed"))
    sandbox:option("--log", "Append the sandbox's log to FILE (default: none).")
    return p
end

-- One line: control characters (newlines too) become spaces, and the key,
-- should anything have echoed it, becomes <key> (core.scrub's rule).
local function one_line(s, key)
    s = tostring(s):gsub("%c+", " ")
    if key then s = core.scrub({ messages = { s } }, key).messages[1] end
    return s
end

--- Runs the `tc` command line.
-- Parses `argv`, runs the command and returns the exit code; output goes to
-- stdout, and a failure is one line on stderr (`tc: ...`), never a traceback
-- (set `TC_DEBUG=1` to see one for a failure of `tc` itself).
-- @tparam {string,...} argv the arguments, as the interpreter's `arg`
-- @treturn integer the exit code (`cli.EXIT`: 0 done, 1 refused, 2 usage, 3 auth,
-- 4 network, 5 unknown, 70 internal, 130 interrupted)
-- @usage os.exit(require("ticketscloud.cli").main(arg))
function _M.main(argv)
    local args_list = {}
    for i = 1, #(argv or {}) do args_list[i] = argv[i] end
    local client, key
    local ok, result = xpcall(function()
        local good, args = parser():pparse(args_list)
        if not good then usage(args .. " (tc --help)") end
        if args.command == "sandbox" then return run_sandbox(args) end
        client, key = client_of(args)
        return commands[args.command](args, client)
    end, function(e)
        if getmetatable(e) == Failure then return e end
        local text = tostring(e)
        if text:find("interrupted!", 1, true) then return failure(EXIT.interrupted, "interrupted") end
        if env("TC_DEBUG") then io_stderr:write(debug_traceback(text, 2), "\n") end
        return failure(EXIT.internal, "internal error: " .. text)
    end)
    if client then client:close() end
    if ok then return EXIT.ok end
    io_stdout:flush()
    io_stderr:write("tc: ", one_line(result.message, key), "\n")
    return result.code
end

return _M
