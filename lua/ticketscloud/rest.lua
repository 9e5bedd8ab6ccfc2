-- ticketscloud.rest: REST requests and responses as pure functions, no I/O.
--
-- Each request builder checks its arguments and returns a request
--
--     { method = "PATCH", path = "/v2/resources/orders/<id>", body = '{"tickets":[...]}' }
--
-- or nil, err (kind "invalid") when the data is wrong, so nothing is sent.
-- decode(status, body) turns an answer into the decoded JSON document or
-- nil, err. The client (ticketscloud) runs them over its libcurl transport;
-- another transport, such as OpenResty cosockets, can run them over its own.
--
-- JSON goes through a private lua-cjson instance. JSON null decodes as
-- cjson.null (a light userdata, `rest.null`); an empty JSON array decodes as
-- an empty table. Lists built here are marked with `rest.array` so that an
-- empty one is sent as [] and not as {}.

local core = require "ticketscloud.core"
local cjson = require "cjson.safe"

local concat = table.concat
local ipairs = ipairs
local next = next
local os_date = os.date
local pairs = pairs
local setmetatable = setmetatable
local getmetatable = getmetatable
local tostring = tostring
local type = type

local check_id = core.check_id
local check_text = core.check_text
local check_count = core.check_count
local check_json = core.check_json
local core_error = core.error

local _M = { _VERSION = core._VERSION }

_M.ORDERS = "/v2/resources/orders"
_M.PROMOCODE_CHECK = "/v2/services/promocodes/check"
_M.REFUNDS = "/v2/resources/refund_requests"
_M.MOSBILET = "/v2/services/orders/mosbilet/user_data"
_M.STATUSES = { executed = true, in_progress = true, done = true, cancelled = true,
                expired = true }
_M.REFUND_STATUSES = { new = true, in_progress = true, approved = true, rejected = true }
_M.CULPRITS = { user = true, org = true }
_M.MAX_PAGE_SIZE = 200
_M.DEFAULT_PAGE_SIZE = 50

local json = cjson.new()
_M.null = cjson.null

local function invalid(message)
    return nil, core_error{ kind = "invalid", messages = { message } }
end

-- Lists we build carry this metatable; an empty one is encoded as [].
local array_mt = { __name = "ticketscloud.array" }
_M.array_mt = array_mt

function _M.array(t)
    return setmetatable(t or {}, array_mt)
end

-- lua-cjson 2.1.0 (Debian's) has no array metatable of its own: an empty
-- marked list is swapped for a placeholder string that cannot occur in
-- checked data (control characters are refused), then for [] in the text.
local EMPTY = "\1[]\1"
local EMPTY_JSON = json.encode(EMPTY)

local function mark_empty(v)
    if type(v) ~= "table" then return v, false end
    if next(v) == nil then
        if getmetatable(v) == array_mt then return EMPTY, true end
        return v, false
    end
    local copy, changed = {}, false
    for k, item in pairs(v) do
        local c, ch = mark_empty(item)
        copy[k] = c
        changed = changed or ch
    end
    if changed then return copy, true end
    return v, false
end

-- Encodes a checked body; returns the JSON text or nil, err.
function _M.encode(body)
    local value, changed = mark_empty(body)
    local text, err = json.encode(value)
    if not text then
        return invalid("the body cannot be encoded as JSON: " .. tostring(err))
    end
    if changed then
        text = text:gsub(EMPTY_JSON:gsub("%p", "%%%0"), "[]")
    end
    return text
end

function _M.decode_json(text)
    return json.decode(text)
end

local function request(method, path, body)
    local text, err
    if body ~= nil then
        text, err = _M.encode(body)
        if not text then return nil, err end
    end
    return { method = method, path = path, body = text }
end

-- A list of ObjectIds: a table with 1..n, each an id. Returns a marked copy.
local function id_list(v, name)
    if type(v) ~= "table" then return invalid(name .. ": a list of ids expected") end
    local n, out = 0, _M.array()
    for _ in pairs(v) do n = n + 1 end
    if n ~= #v then return invalid(name .. ": a list of ids expected") end
    for i = 1, n do
        local ok, err = check_id(v[i], name .. "[" .. i .. "]")
        if not ok then return nil, err end
        out[i] = v[i]
    end
    return out
end

-- A map set id -> count (>= min). Returns a copy with integer counts.
local function count_map(v, name, min)
    if type(v) ~= "table" then return invalid(name .. ": a table set id -> count expected") end
    local out = {}
    for set, n in pairs(v) do
        local ok, err = check_id(set, name .. ": the set id")
        if not ok then return nil, err end
        local count
        count, err = check_count(n, name .. "[" .. set .. "]", min)
        if not count then return nil, err end
        out[set] = count
    end
    return out
end

local function text_list(v, name)
    if type(v) ~= "table" or #v == 0 then return invalid(name .. ": a list of strings expected") end
    local out = _M.array()
    for i = 1, #v do
        local ok, err = check_text(v[i], name .. "[" .. i .. "]")
        if not ok then return nil, err end
        if v[i] == "" then return invalid(name .. "[" .. i .. "]: empty") end
        out[i] = v[i]
    end
    return out
end

-- POST /v2/resources/orders (spec §3.3, §5.7): { event = ID, random = {...} },
-- { tickets = { ID, ... } } or { event = ID }; all_or_nothing, settings,
-- vendor_data and promocodes pass through.
function _M.create_order(args)
    local body, err = {}
    for k, v in pairs(args) do body[k] = v end
    if args.event ~= nil then
        local ok
        ok, err = check_id(args.event, "event")
        if not ok then return nil, err end
    end
    if args.tickets ~= nil and args.random ~= nil then
        return invalid("tickets and random cannot be sent together (spec §5.4)")
    end
    if args.tickets ~= nil then
        body.tickets, err = id_list(args.tickets, "tickets")
        if not body.tickets then return nil, err end
    end
    if args.random ~= nil then
        body.random, err = count_map(args.random, "random", 1)
        if not body.random then return nil, err end
    end
    if args.event == nil and args.tickets == nil and args.random == nil then
        return invalid("event, tickets or random is required")
    end
    if args.all_or_nothing ~= nil and type(args.all_or_nothing) ~= "boolean" then
        return invalid("all_or_nothing: a boolean expected")
    end
    if args.promocodes ~= nil then
        body.promocodes, err = text_list(args.promocodes, "promocodes")
        if not body.promocodes then return nil, err end
    end
    local ok
    ok, err = check_json(body, "order")
    if not ok then return nil, err end
    return request("POST", _M.ORDERS, body)
end

-- GET /v2/resources/orders/:id (spec §3.8)
function _M.get_order(id)
    local ok, err = check_id(id, "order id")
    if not ok then return nil, err end
    return request("GET", _M.ORDERS .. "/" .. id)
end

-- PATCH /v2/resources/orders/:id with a whole body (spec §3.4)
function _M.patch_order(id, body)
    local ok, err = check_id(id, "order id")
    if not ok then return nil, err end
    if next(body) == nil then return invalid("the body is empty: nothing to change") end
    ok, err = check_json(body, "body")
    if not ok then return nil, err end
    return request("PATCH", _M.ORDERS .. "/" .. id, body)
end

-- Query values: unreserved characters stay, the rest is percent-encoded.
local function escape(s)
    return (s:gsub("[^%w%-%._~]", function(c) return ("%%%02X"):format(c:byte()) end))
end

local ISO = "^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d$"

local function datetime(v, name)
    if type(v) == "number" then
        if v ~= v or v < 0 or v >= 253402300800 then return invalid(name .. ": out of range") end
        return os_date("!%Y-%m-%dT%H:%M:%S", v - v % 1)
    elseif type(v) == "string" and v:find(ISO) then
        return v
    end
    return invalid(name .. ": Unix seconds or 'YYYY-MM-DDTHH:MM:SS' (UTC) expected")
end

-- A range { from, to } (or { from =, to = }) as "from,to" for a query.
local function range_value(range, name)
    if type(range) ~= "table" then return invalid(name .. ": { from, to } expected") end
    local from, err = datetime(range[1] or range.from, name .. ".from")
    if not from then return nil, err end
    local to
    to, err = datetime(range[2] or range.to, name .. ".to")
    if not to then return nil, err end
    return escape(from) .. "," .. escape(to)
end

-- The query of a list without the page. kind: statuses (the allowed
-- values), noun (for messages), ranges (date-time range filters) and
-- customer (whether only_with_customer applies).
local function list_query(filter, kind)
    local q = {}
    local status = filter.status
    if type(status) == "string" then status = { status } end
    if status ~= nil then
        if type(status) ~= "table" or #status == 0 then
            return invalid("status: a status or a list of them expected")
        end
        for i, s in ipairs(status) do
            if not kind.statuses[s] then
                return invalid("status[" .. i .. "]: not " .. kind.noun .. " status")
            end
        end
        q[#q + 1] = "status=" .. concat(status, ",")
    end
    local events = filter.events
    if type(events) == "string" then events = { events } end
    if events ~= nil then
        local list, err = id_list(events, "events")
        if not list then return nil, err end
        if #list == 0 then return invalid("events: an empty list") end
        q[#q + 1] = "events=" .. concat(list, ",")
    end
    for _, name in ipairs(kind.ranges) do
        if filter[name] ~= nil then
            local value, err = range_value(filter[name], name)
            if not value then return nil, err end
            q[#q + 1] = name .. "=" .. value
        end
    end
    if kind.customer and filter.only_with_customer ~= nil then
        if type(filter.only_with_customer) ~= "boolean" then
            return invalid("only_with_customer: a boolean expected")
        end
        q[#q + 1] = "only_with_customer=" .. tostring(filter.only_with_customer)
    end
    local size = _M.DEFAULT_PAGE_SIZE
    if filter.page_size ~= nil then
        local err
        size, err = check_count(filter.page_size, "page_size", 1)
        if not size then return nil, err end
        if size > _M.MAX_PAGE_SIZE then return invalid("page_size: at most 200") end
    end
    q[#q + 1] = "page_size=" .. size
    return concat(q, "&"), size
end

local ORDER_LIST = { statuses = _M.STATUSES, noun = "an order", ranges = { "created_at" },
                     customer = true }
local REFUND_LIST = { statuses = _M.REFUND_STATUSES, noun = "a refund request",
                      ranges = { "created_at", "finished_at" } }

-- The filter of client:orders as a query string without the page
-- (spec §3.6): status, events, created_at = { from, to },
-- only_with_customer, page_size. Returns query, page_size or nil, err.
function _M.orders_query(filter)
    return list_query(filter, ORDER_LIST)
end

-- The filter of client:refunds (spec §3.11): status (new, in_progress,
-- approved, rejected), events, created_at and finished_at = { from, to },
-- page_size. Returns query, page_size or nil, err.
function _M.refunds_query(filter)
    return list_query(filter, REFUND_LIST)
end

-- GET /v2/resources/orders?<query>&page=n
function _M.list_orders(query, page)
    return request("GET", _M.ORDERS .. "?" .. query .. "&page=" .. page)
end

-- GET /v2/resources/refund_requests?<query>&page=n
function _M.list_refunds(query, page)
    return request("GET", _M.REFUNDS .. "?" .. query .. "&page=" .. page)
end

-- POST /v2/resources/refund_requests (spec §3.11): { order = ID,
-- tickets = { ID, ... } (at least one), culprit = "user" | "org",
-- requested_at = Unix seconds or "YYYY-MM-DDTHH:MM:SS" (UTC, optional) }.
function _M.create_refund(args)
    local ok, err = check_id(args.order, "order")
    if not ok then return nil, err end
    if args.culprit == nil then return invalid("culprit: \"user\" or \"org\" is required") end
    if not _M.CULPRITS[args.culprit] then
        return invalid("culprit: \"user\" or \"org\" expected, got " .. tostring(args.culprit))
    end
    if args.tickets == nil then return invalid("tickets: a list of ticket ids is required") end
    local tickets
    tickets, err = id_list(args.tickets, "tickets")
    if not tickets then return nil, err end
    if #tickets == 0 then return invalid("tickets: at least one ticket to refund") end
    local body = { order = args.order, culprit = args.culprit, tickets = tickets }
    if args.requested_at ~= nil then
        body.requested_at, err = datetime(args.requested_at, "requested_at")
        if not body.requested_at then return nil, err end
    end
    return request("POST", _M.REFUNDS, body)
end

-- GET /v2/resources/refund_requests/:id (served by tc-sandbox; the service
-- documents no such route, see docs/refunds.md)
function _M.get_refund(id)
    local ok, err = check_id(id, "refund id")
    if not ok then return nil, err end
    return request("GET", _M.REFUNDS .. "/" .. id)
end

-- PATCH /v2/resources/refund_requests/:id { status = "approved" | "rejected" }
function _M.patch_refund(id, status)
    local ok, err = check_id(id, "refund id")
    if not ok then return nil, err end
    if status ~= "approved" and status ~= "rejected" then
        return invalid("status: \"approved\" or \"rejected\" expected")
    end
    return request("PATCH", _M.REFUNDS .. "/" .. id, { status = status })
end

-- Whether a 404 for GET /refund_requests/:id says the refund request does
-- not exist (tc-sandbox's message), rather than that the route is missing.
function _M.is_missing_refund(err, id)
    if err.status ~= 404 then return false end
    for _, m in ipairs(err.messages or {}) do
        if m == "RefundRequest " .. id .. " not found" then return true end
    end
    return false
end

local VISITOR = { ticket_id = "id", user_id = "text", name = "text", surname = "text",
                  middle_name = "text" }
local VISITOR_REQUIRED = { "user_id", "name", "surname" }

-- PUT /v2/services/orders/mosbilet/user_data (spec §3.10): the order id and
-- a non-empty list of { ticket_id =, user_id =, name =, surname =,
-- middle_name = } (user_id, name, surname required, ticket_id an id). The
-- answer is 202 without a body: the request has no_data set (see decode).
function _M.mosbilet_user_data(order, visitors)
    local ok, err = check_id(order, "order")
    if not ok then return nil, err end
    if type(visitors) ~= "table" or #visitors == 0 then
        return invalid("visitors: a non-empty list expected")
    end
    local list = _M.array()
    for i, v in ipairs(visitors) do
        local name = "visitors[" .. i .. "]"
        if type(v) ~= "table" then return invalid(name .. ": a table expected") end
        local item = {}
        for k, value in pairs(v) do
            local kind = VISITOR[k]
            if not kind then return invalid(name .. ": unknown field " .. tostring(k)) end
            if kind == "id" then
                ok, err = check_id(value, name .. "." .. k)
            else
                ok, err = check_text(value, name .. "." .. k)
                if ok and value == "" then ok, err = invalid(name .. "." .. k .. ": empty") end
            end
            if not ok then return nil, err end
            item[k] = value
        end
        for _, k in ipairs(VISITOR_REQUIRED) do
            if item[k] == nil then return invalid(name .. "." .. k .. ": required") end
        end
        list[i] = item
    end
    if #list ~= #visitors then return invalid("visitors: a list expected") end
    local req
    req, err = request("PUT", _M.MOSBILET, { order = order, user_data = list })
    if req then req.no_data = true end
    return req, err
end

-- POST /v2/services/promocodes/check (spec §3.9)
function _M.check_promocode(args)
    local ok, err = check_id(args.event, "event")
    if not ok then return nil, err end
    ok, err = check_text(args.code, "code")
    if not ok then return nil, err end
    if args.code == "" then return invalid("code: empty") end
    return request("POST", _M.PROMOCODE_CHECK, { event = args.event, code = args.code })
end

local KINDS = { [400] = "api", [401] = "auth", [403] = "auth", [404] = "not_found",
                [409] = "conflict" }

-- The error for a non-2xx answer (spec §3.2): the kind from the status and
-- the server's messages: its `errors` list (strings, or { code, msg }
-- objects), or the `reason` of the promocode check's shape.
function _M.http_error(status, doc)
    local messages
    if type(doc) == "table" then
        if type(doc.errors) == "table" and #doc.errors > 0 then
            messages = doc.errors
        elseif type(doc.reason) == "string" then
            messages = { doc.reason }
        end
    end
    if not messages then
        messages = { ("HTTP %d without the service's error list"):format(status) }
        if status >= 300 and status < 400 then
            messages[1] = ("HTTP %d: a redirect, not followed (is the api URL right?)")
                :format(status)
        end
    end
    return core_error{ kind = KINDS[status] or "api", status = status, messages = messages }
end

-- Decodes an answer. A 2xx answer must be a JSON object with a `data`
-- member; anything else is an error of its status (above), or kind "api"
-- when a 2xx body is not the expected JSON. With no_data (a request whose
-- success has no body, such as mosbilet_user_data) any 2xx gives true.
function _M.decode(status, body, no_data)
    local doc = json.decode(body)
    if no_data and status >= 200 and status <= 299 then return true end
    if status < 200 or status > 299 then
        return nil, _M.http_error(status, doc)
    end
    if type(doc) ~= "table" or type(doc.data) ~= "table" then
        return nil, core_error{ kind = "api", status = status, messages = {
            ("HTTP %d: the answer is not the expected JSON object with data"):format(status) } }
    end
    return doc
end

-- Whether a 404 for GET /orders/:id is the service saying that the order
-- does not exist, rather than that it does not serve the route (then the
-- client falls back to the list, spec §3.8).
function _M.is_missing_order(err, id)
    if err.status ~= 404 then return false end
    for _, m in ipairs(err.messages or {}) do
        if m == "Order " .. id .. " not found" then return true end
    end
    return false
end

-- Whether a 400 says the order has expired.
function _M.is_expired_error(err)
    if err.status ~= 400 then return false end
    for _, m in ipairs(err.messages or {}) do
        if type(m) == "string" and m:find("in status expired", 1, true) then return true end
    end
    return false
end

return _M
