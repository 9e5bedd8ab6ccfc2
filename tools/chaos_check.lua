-- tools/chaos_check.lua: the checker of the chaos run (tools/chaos.lua).
--
-- After the workers end it reads what the callers believe (their lines in
-- worker-N.tsv) and what the service holds (every order of the event over
-- REST, the seats and the sets' counters over gRPC), then compares them:
--
--   1. every order the callers believe done is done at the service;
--   2. every order done at the service is one a caller believes done;
--   3. every done order holds exactly what its attempt asked: those seats
--      and, per unseated set, that many tickets;
--   4. no request id is on two orders, and no attempt made two orders;
--   5. no order is left holding tickets (executed, or expired) at the end;
--   6. no ticket is in two orders that hold it (done or executed);
--   7. every seat's gRPC status is what the orders say: SOLD in a done
--      order, RESERVED in an executed one, VACANT otherwise;
--   8. every set's counters (gRPC Events: amount, amount_vacant) add up
--      with the orders' tickets, and so do the event's totals;
--   9. every order the callers believe cancelled is cancelled;
--  10. every unknown outcome can be resolved: by the order id the caller
--      holds, else with client:find_created(request id), which must agree
--      with the request ids the orders carry;
--  11. the client returned nil, err and never raised.
--
-- The checker only reads. Its client's transport refuses anything but GET
-- and retries a GET that failed (reads are safe to repeat), since the
-- sandbox's faults apply to its reads too. check() is a pure function of
-- what was read, so spec/chaos_check_spec.lua can show that each check
-- fails when it should.

local core = require "ticketscloud.core"

local _M = {}

_M.EXAMPLES = 5 -- examples shown per kind of violation

local ipairs, pairs, tostring, type = ipairs, pairs, tostring, type
local concat, sort = table.concat, table.sort

-- ---- reading -------------------------------------------------------------

-- A REST transport for tc.new{ transport = ... } that sends GETs only and
-- tries each up to `tries` times until it gets an answer below 500.
function _M.reading_transport(options, tries)
    local http = assert(core.http(options))
    local t = { retried = 0 }
    function t.request(_, method, path, body, opts)
        if method ~= "GET" then
            error(("the checker only reads, it does not send %s %s"):format(method, path), 2)
        end
        local status, answer
        for attempt = 1, tries or 20 do
            status, answer = http:request(method, path, body, opts)
            if status and status < 500 then break end
            t.retried = t.retried + 1
            core.sleep(0.02 * attempt)
        end
        return status, answer
    end
    function t.stats() return http:stats() end
    function t.close() return http:close() end
    return t
end

-- A client of the sandbox sb for the checker: reads only, retried.
function _M.reader(sb, timeout)
    local tc = require "ticketscloud"
    local opts = { key = sb.key, api = sb.api, simple = sb.simple, timeout = timeout or 30 }
    local options = assert(core.options(opts))
    opts.transport = _M.reading_transport(options)
    return assert(tc.new(opts))
end

-- Walks a stream to its end: the list of its items, or nil, err. A stream
-- that ends on an error is walked again from the start, up to 5 times.
local function walk(open, convert)
    local err
    for _ = 1, 5 do
        local stream
        stream, err = open()
        if stream then
            local items = {}
            for item in stream do items[#items + 1] = convert and convert(item) or item end
            err = stream:error()
            if not err then return items, stream end
        end
    end
    return nil, err
end

local function split(text, sep)
    local out = {}
    if text == nil or text == "-" or text == "" then return out end
    for part in (text .. sep):gmatch("(.-)" .. sep) do out[#out + 1] = part end
    return out
end

-- The attempts of the workers' files: { id, first, intent, seats = { ID },
-- random = { [SET] = n }, belief, order, request, kind, error }.
function _M.read_attempts(paths)
    local attempts = {}
    for _, path in ipairs(paths) do
        local n = 0
        for line in io.lines(path) do
            n = n + 1
            if line:sub(1, 1) ~= "#" then
                local f = split(line, "\t")
                if #f ~= 10 then
                    error(("%s:%d: %d fields, not 10"):format(path, n, #f))
                end
                local function opt(v) if v ~= "-" then return v end end
                local a = { id = f[1], first = f[2], intent = f[3], seats = split(f[4], ","),
                            random = {}, belief = f[6], order = opt(f[7]), request = opt(f[8]),
                            kind = opt(f[9]), error = opt(f[10]) }
                for _, pair in ipairs(split(f[5], ",")) do
                    local set, count = pair:match("^(%w+)=(%d+)$")
                    if not set then error(("%s:%d: bad random %q"):format(path, n, pair)) end
                    a.random[set] = tonumber(count)
                end
                attempts[#attempts + 1] = a
            end
        end
    end
    return attempts
end

-- An order as the checker keeps it: id, status, tickets = { { id, set } },
-- tag = vendor_data.order_id, request = vendor_data.raw.tc_request_id.
local function plain_order(order)
    local tickets = {}
    for i, t in ipairs(order.tickets or {}) do tickets[i] = { id = t.id, set = t.set } end
    local vd = type(order.vendor_data) == "table" and order.vendor_data or {}
    local raw = type(vd.raw) == "table" and vd.raw or {}
    return { id = order.id, status = order.status, tickets = tickets,
             tag = type(vd.order_id) == "string" and vd.order_id or nil,
             request = type(raw.tc_request_id) == "string" and raw.tc_request_id or nil }
end
_M.plain_order = plain_order

-- Everything the service holds about the event: { orders, seats, event },
-- or nil, err.
function _M.read_service(client, event_id)
    local orders, stream = walk(function()
        return client:orders{ events = { event_id }, page_size = 200 }
    end, plain_order)
    if not orders then return nil, "the order list: " .. tostring(stream) end
    if stream.total and stream.total ~= #orders then
        return nil, ("the order list gave %d orders, its total says %d"):format(#orders, stream.total)
    end
    local seats, err = walk(function() return client:seats{ event = event_id } end, function(s)
        return { ticket = s.ticket, status = s.status, set = s.set }
    end)
    if not seats then return nil, "Seats: " .. tostring(err) end
    local events
    events, err = walk(function() return client:events{ ids = { event_id } } end)
    if not events then return nil, "Events: " .. tostring(err) end
    if #events ~= 1 then return nil, ("Events gave %d events, not 1"):format(#events) end
    return { orders = orders, seats = seats, event = events[1] }
end

-- Writes the orders read from the service to path, one line each, for
-- whoever looks into a violation: id, status, vendor_data.order_id, request
-- id, tickets (id:set).
function _M.write_orders(path, orders)
    local f = assert(io.open(path, "w"))
    f:write("# order\tstatus\tvendor order_id\trequest\ttickets\n")
    for _, o in ipairs(orders) do
        local tickets = {}
        for i, t in ipairs(o.tickets) do tickets[i] = t.id .. ":" .. t.set end
        f:write(concat({ o.id, o.status, o.tag or "-", o.request or "-",
                         #tickets > 0 and concat(tickets, ",") or "-" }, "\t"), "\n")
    end
    f:close()
end

-- Resolves the unknown outcomes that only a request id can resolve, as
-- their caller would: client:find_created(request_id, { event =, since = }).
-- Returns { [attempt id] = { order =, status = } | { none = true } |
-- { error = message } }.
function _M.resolve(client, attempts, event_id, since)
    local out = {}
    for _, a in ipairs(attempts) do
        if a.belief == "unknown" and not a.order and a.request then
            if type(client.find_created) ~= "function" then
                out[a.id] = { error = "this client has no find_created" }
            else
                local ok, order, err = pcall(client.find_created, client, a.request,
                                             { event = event_id, since = since })
                if not ok then
                    out[a.id] = { error = "find_created raised: " .. tostring(order) }
                elseif order then
                    out[a.id] = { order = order.id, status = order.status }
                elseif type(err) == "table" and err.kind == "not_found" then
                    out[a.id] = { none = true }
                else
                    out[a.id] = { error = "find_created: " .. tostring(err) }
                end
            end
        end
    end
    return out
end

-- ---- checking ------------------------------------------------------------

local function sorted_keys(t)
    local keys = {}
    for k in pairs(t) do keys[#keys + 1] = k end
    sort(keys, function(x, y) return tostring(x) < tostring(y) end)
    return keys
end

local function count_by(list, key)
    local out = {}
    for _, item in ipairs(list) do
        local v = item[key] or "-"
        out[v] = (out[v] or 0) + 1
    end
    return out
end

-- What is wrong with the tickets of done order o for attempt a: a list of
-- problems, empty when it holds exactly the seats asked and, per set, the
-- count asked.
local function ticket_problems(a, o)
    local asked = {}
    for _, s in ipairs(a.seats) do asked[s] = "asked" end
    local counts = {}
    for _, t in ipairs(o.tickets) do
        if asked[t.id] == "asked" then
            asked[t.id] = "held"
        else
            counts[t.set] = (counts[t.set] or 0) + 1
        end
    end
    local problems = {}
    for _, s in ipairs(sorted_keys(asked)) do
        if asked[s] ~= "held" then problems[#problems + 1] = "seat " .. s .. " missing" end
    end
    for _, set in ipairs(sorted_keys(a.random)) do
        if (counts[set] or 0) ~= a.random[set] then
            problems[#problems + 1] = ("set %s: %d tickets, asked %d"):format(
                set, counts[set] or 0, a.random[set])
        end
    end
    for _, set in ipairs(sorted_keys(counts)) do
        if not a.random[set] then
            problems[#problems + 1] = ("set %s: %d tickets not asked for"):format(set, counts[set])
        end
    end
    return problems
end

-- check(run) -> checks, figures. run = {
--   attempts = read_attempts(...), resolved = resolve(...),
--   orders, seats, event = read_service(...),
--   amounts = { [SET] = tickets the catalog gives the set },
-- }
-- checks is a list of { name =, n = violations, examples = { text } } in
-- the order above; figures are the counts the report prints.
function _M.check(run)
    local attempts, orders, seats, event = run.attempts, run.orders, run.seats, run.event
    local resolved = run.resolved or {}
    local checks = {}
    local function new(name)
        local c = { name = name, n = 0, examples = {} }
        checks[#checks + 1] = c
        return function(fmt, ...)
            c.n = c.n + 1
            if #c.examples < _M.EXAMPLES then c.examples[#c.examples + 1] = fmt:format(...) end
        end
    end
    local lost = new("believed done, not done at the service")
    local unbelieved = new("done at the service, not believed done")
    local wrong = new("done orders with other tickets than asked")
    local shared = new("request ids on more than one order")
    local twice = new("attempts with more than one order")
    local holding = new("orders left holding tickets (executed or expired)")
    local double = new("tickets in two orders that hold them")
    local seat_status = new("seat statuses that disagree with the orders")
    local counters = new("set counters that disagree with the orders")
    local uncancelled = new("believed cancelled, not cancelled at the service")
    local unresolved = new("unknown outcomes not resolved")
    local raised = new("client errors raised instead of returned")

    -- Indexes.
    local order_by_id, by_request = {}, {}
    for _, o in ipairs(orders) do
        order_by_id[o.id] = o
        if o.request then
            by_request[o.request] = by_request[o.request] or {}
            local list = by_request[o.request]
            list[#list + 1] = o
        end
    end
    local attempt_by_id, attempt_by_order, attempt_by_request, attempt_by_seat = {}, {}, {}, {}
    for _, a in ipairs(attempts) do
        attempt_by_id[a.id] = a
        if a.order then attempt_by_order[a.order] = a end
        if a.request then
            local other = attempt_by_request[a.request]
            if other then
                shared("request id %s recorded by attempts %s and %s", a.request, other.id, a.id)
            end
            attempt_by_request[a.request] = a
        end
        for _, s in ipairs(a.seats) do
            local other = attempt_by_seat[s]
            if other == nil then
                attempt_by_seat[s] = a
            elseif other and other ~= a then
                attempt_by_seat[s] = false -- asked by two attempts: says nothing
            end
        end
        if a.kind == "raised" then raised("%s: %s", a.id, tostring(a.error)) end
    end

    -- What each caller ends up believing: unknowns resolved by the order id
    -- the caller holds, else by find_created.
    for _, a in ipairs(attempts) do
        a.final, a.final_order = a.belief, a.order
        if a.belief == "unknown" then
            a.final = "unresolved"
            local tagged = a.request and by_request[a.request] or {}
            local r = resolved[a.id]
            if a.order then
                local o = order_by_id[a.order]
                a.final = o and o.status == "done" and "done" or "not done"
            elseif not a.request then
                unresolved("%s (%s): neither an order id nor a request id", a.id, a.kind or "?")
            elseif not r or r.error then
                unresolved("%s: request id %s: %s", a.id, a.request,
                           r and r.error or "not looked up")
            elseif r.none then
                if #tagged > 0 then
                    unresolved("%s: find_created found no order for %s; order %s carries it",
                               a.id, a.request, tagged[1].id)
                else
                    a.final = "not done"
                end
            else
                local carries = false
                for _, o in ipairs(tagged) do carries = carries or o.id == r.order end
                if not carries then
                    unresolved("%s: find_created gave order %s, which does not carry request id %s",
                               a.id, r.order, a.request)
                else
                    a.final_order = r.order
                    attempt_by_order[r.order] = attempt_by_order[r.order] or a
                    local o = order_by_id[r.order]
                    a.final = o and o.status == "done" and "done" or "not done"
                end
            end
        end
    end

    -- Which attempt an order was made for: its vendor_data.order_id, else
    -- its request id, else the order id a caller holds, else its seats
    -- (those only one attempt asked for, all pointing at the same one).
    local function owner(o)
        if o.tag and attempt_by_id[o.tag] then return attempt_by_id[o.tag] end
        if o.request and attempt_by_request[o.request] then return attempt_by_request[o.request] end
        if attempt_by_order[o.id] then return attempt_by_order[o.id] end
        local found
        for _, t in ipairs(o.tickets) do
            local a = attempt_by_seat[t.id]
            if a then
                if found and found ~= a then return nil end
                found = a
            end
        end
        return found
    end
    local function tickets(o)
        return #o.tickets == 1 and "1 ticket" or #o.tickets .. " tickets"
    end
    local function whose(o)
        local a = owner(o)
        if not a then return "no attempt" end
        return ("attempt %s, believed %s%s"):format(a.id, a.belief,
                                                     a.kind and " (" .. a.kind .. ")" or "")
    end

    -- 1, 3, 9: what the callers believe against the service.
    local claimed = {}
    for _, a in ipairs(attempts) do
        if a.final == "done" and not a.final_order then
            lost("%s: believed done, without an order id", a.id)
        elseif a.final == "done" then
            local o = order_by_id[a.final_order]
            if claimed[a.final_order] then
                lost("%s and %s both believe order %s is theirs", claimed[a.final_order].id, a.id,
                     a.final_order)
            end
            claimed[a.final_order] = a
            if not o then
                lost("%s: order %s is not at the service", a.id, a.final_order)
            elseif o.status ~= "done" then
                lost("%s: order %s is %s", a.id, o.id, o.status)
            else
                local problems = ticket_problems(a, o)
                if #problems > 0 then
                    wrong("%s: order %s: %s", a.id, o.id, concat(problems, "; "))
                end
            end
        elseif a.belief == "cancelled" then
            local o = order_by_id[a.order]
            if not o or o.status ~= "cancelled" then
                uncancelled("%s: order %s is %s", a.id, a.order, o and o.status or "not at the service")
            end
        end
    end

    -- 2, 4, 5, 6: every order at the service.
    local holder = {}   -- ticket id -> the order holding it
    local by_attempt = {}
    for _, o in ipairs(orders) do
        if o.status == "done" and not claimed[o.id] then
            unbelieved("order %s, %s (%s)", o.id, tickets(o), whose(o))
        end
        if o.status == "executed" or o.status == "expired" then
            holding("order %s %s, %s (%s)", o.id, o.status, tickets(o), whose(o))
        end
        if o.status == "done" or o.status == "executed" then
            for _, t in ipairs(o.tickets) do
                local other = holder[t.id]
                if other then
                    double("ticket %s: order %s (%s) and order %s (%s)", t.id, other.id,
                           other.status, o.id, o.status)
                else
                    holder[t.id] = o
                end
            end
        end
        local a = owner(o)
        if a then
            by_attempt[a.id] = by_attempt[a.id] or {}
            local list = by_attempt[a.id]
            list[#list + 1] = o
        end
    end
    local function list_orders(list)
        local parts = {}
        for _, o in ipairs(list) do parts[#parts + 1] = o.id .. " (" .. o.status .. ")" end
        return concat(parts, ", ")
    end
    for _, request in ipairs(sorted_keys(by_request)) do
        local list = by_request[request]
        if #list > 1 then shared("request id %s: orders %s", request, list_orders(list)) end
    end
    for _, id in ipairs(sorted_keys(by_attempt)) do
        local list = by_attempt[id]
        if #list > 1 then
            twice("%s (believed %s): orders %s", id, attempt_by_id[id].belief, list_orders(list))
        end
    end

    -- 7: the seats.
    local EXPECT = { done = "SOLD", executed = "RESERVED" }
    local seat_of, seated_vacant = {}, {}
    for _, s in ipairs(seats) do
        seat_of[s.ticket] = s
        local o = holder[s.ticket]
        local want = o and EXPECT[o.status] or "VACANT"
        if s.status ~= want then
            seat_status("seat %s is %s, the orders say %s%s", s.ticket, s.status, want,
                        o and (" (order " .. o.id .. ")") or "")
        end
        if s.status == "VACANT" then seated_vacant[s.set] = (seated_vacant[s.set] or 0) + 1 end
    end

    -- 8: the sets' counters.
    local sold, reserved, with_seats = {}, {}, {}
    for _, set in ipairs(event.sets) do
        sold[set.id], reserved[set.id] = 0, 0
        with_seats[set.id] = set.with_seats
    end
    for _, o in ipairs(orders) do
        local into = o.status == "done" and sold or o.status == "executed" and reserved or nil
        for _, t in ipairs(into and o.tickets or {}) do
            if into[t.set] == nil then
                counters("ticket %s of order %s: set %s is not one of the event's", t.id, o.id, t.set)
                into[t.set] = 0
            end
            into[t.set] = into[t.set] + 1
            if with_seats[t.set] and not seat_of[t.id] then
                seat_status("ticket %s of order %s (%s) is not among the event's seats", t.id, o.id,
                            o.status)
            end
        end
    end
    local amount, vacant = 0, 0
    for _, set in ipairs(event.sets) do
        local want_amount = run.amounts and run.amounts[set.id]
        if want_amount and set.amount ~= want_amount then
            counters("set %s: amount %d, the catalog gives it %d", set.id, set.amount, want_amount)
        end
        local want_vacant = set.amount - sold[set.id] - reserved[set.id]
        if set.amount_vacant ~= want_vacant then
            counters("set %s: amount_vacant %d; amount %d - sold %d - reserved %d = %d", set.id,
                     set.amount_vacant, set.amount, sold[set.id], reserved[set.id], want_vacant)
        end
        if set.with_seats and (seated_vacant[set.id] or 0) ~= set.amount_vacant then
            counters("set %s: amount_vacant %d, Seats lists %d VACANT", set.id, set.amount_vacant,
                     seated_vacant[set.id] or 0)
        end
        amount, vacant = amount + set.amount, vacant + set.amount_vacant
    end
    if event.tickets_amount ~= amount or event.tickets_amount_vacant ~= vacant then
        counters("event: tickets_amount %d, tickets_amount_vacant %d; its sets add up to %d, %d",
                 event.tickets_amount, event.tickets_amount_vacant, amount, vacant)
    end

    -- The figures of the report.
    local failed, unknown = {}, {}
    for _, a in ipairs(attempts) do
        if a.belief == "failed" then failed[#failed + 1] = a end
        if a.belief == "unknown" then unknown[#unknown + 1] = a end
    end
    local contested = 0
    for _, a in pairs(attempt_by_seat) do if a == false then contested = contested + 1 end end
    local figures = {
        attempts = #attempts,
        beliefs = count_by(attempts, "belief"),
        intents = count_by(attempts, "intent"),
        failed_kinds = count_by(failed, "kind"),
        unknown_kinds = count_by(unknown, "kind"),
        resolved = count_by(unknown, "final"),
        orders = #orders,
        statuses = count_by(orders, "status"),
        contested = contested,
        sold = sold,
        reserved = reserved,
        with_seats = with_seats,
    }
    return checks, figures
end

return _M
