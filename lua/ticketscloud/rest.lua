--- The REST requests as pure functions, no I/O: the low level under the client, for
-- @{ticketscloud.Client:send} and for other transports.
--
-- Each request builder checks its arguments and returns a request
--
--     { method = "PATCH", path = "/v2/resources/orders/<id>", body = '{"tickets":[...]}' }
--
-- or nil, err (kind "invalid") when the data is wrong, so nothing is sent.
-- The client (ticketscloud) runs them with client:send; another transport
-- can run them over its own I/O and read the answer with rest.decode
-- (ticketscloud.answers). JSON goes through ticketscloud.json, re-exported
-- here: rest.encode, rest.decode_json, rest.null, rest.array.
--
-- A transport sends `Authorization: key <KEY>`, `Accept: application/json` and
-- `Content-Type: application/json`, and sends each request once (docs/openresty.md, "Without
-- blocking: the pure parts"). The module's constants: the paths `rest.ORDERS`, `rest.REFUNDS`,
-- `rest.PROMOCODE_CHECK`, `rest.MOSBILET`; the sets `rest.STATUSES`, `rest.REFUND_STATUSES`,
-- `rest.CULPRITS`; `rest.MAX_PAGE_SIZE` (200) and `rest.DEFAULT_PAGE_SIZE` (50). `rest.null`
-- is JSON `null` as answers decode it (`tc.null`, equal to lua-cjson's `cjson.null`).
-- @module ticketscloud.rest
-- @usage
-- local rest = require "ticketscloud.rest"
-- local req = assert(rest.patch_order(ORDER_ID, { status = "done" }))
-- -- req.method == "PATCH", req.path == "/v2/resources/orders/" .. ORDER_ID,
-- -- req.body == '{"status":"done"}'
-- local doc, err = rest.decode(my_http(req.method, req.path, req.body))   -- status, body

local core = require "ticketscloud.core"
local json = require "ticketscloud.json"
local answers = require "ticketscloud.answers"

local concat = table.concat
local ipairs = ipairs
local next = next
local os_date = os.date
local pairs = pairs
local tostring = tostring
local type = type

local check_id = core.check_id
local check_text = core.check_text
local check_count = core.check_count
local check_json = core.check_json
local check_settings = core.check_settings
local check_vendor_data = core.check_vendor_data
local fail = core.fail

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

_M.null = json.null
_M.array = json.array
_M.encode = json.encode
_M.decode_json = json.decode
_M.decode = answers.decode

local function request(method, path, body)
    local text, err
    if body ~= nil then
        text, err = json.encode(body)
        if not text then return nil, err end
    end
    return { method = method, path = path, body = text }
end

--- Marks a table as a JSON array, so that it is encoded as `[]` when empty (and not as `{}`).
-- @function array
-- @tparam[opt] table t the list (default a new empty one)
-- @treturn table `t`, marked
-- @usage
-- rest.encode{ tickets = rest.array() }   --> '{"tickets":[]}'

--- Encodes a value as JSON text, as the builders encode their bodies; the value is not
-- checked (the builders check theirs).
-- @function encode
-- @param value a table, string, number, boolean or `rest.null`
-- @treturn string the JSON text
-- @return[2] nil
-- @treturn[2] ticketscloud.Error err, kind `"invalid"`: the value cannot be encoded
-- @usage
-- rest.encode{ status = "done" }   --> '{"status":"done"}'

--- Decodes JSON text (the C core's decoder, over yajl): integer numbers are Lua integers
-- (on Lua 5.3+), `null` is `rest.null`, an empty array an empty table (marked as an array).
-- @function decode_json
-- @tparam string text JSON text
-- @return the value
-- @return[2] nil
-- @treturn[2] string the decoder's message
-- @usage
-- local v = rest.decode_json('{"a":["x","y"],"n":59807}')   --> { a = { "x", "y" }, n = 59807 }

--- Reads an answer as the client does: a 2xx answer must be a JSON object with `data`
-- (whose `id`, when present, is an ObjectId); any other status is an error of its kind (400
-- `api`, 401 and 403 `auth`, 404 `not_found`, 409 `conflict`, other `api`) with the service's
-- `errors` or `reason` as `messages`. It does not take the key out of messages, as the
-- client does (`client:send`).
-- @function decode
-- @tparam integer status the HTTP status
-- @tparam string body the answer's body
-- @tparam[opt] boolean no_data a request whose success has no body (its `req.no_data`): any
--   2xx gives `true`
-- @treturn table the JSON document (`data`, `refs`, `pagination`, ...), or `true`
-- @return[2] nil
-- @treturn[2] ticketscloud.Error err
-- @usage
-- local doc, err = rest.decode(200, '{"data": {"id": "5d7134962110d30a34e95b96"}}')
-- print(rest.decode(404, '{"errors": ["Order 5d71... not found"]}'))
-- --> nil  ticketscloud: not_found error (404): Order 5d71... not found

-- A list of ObjectIds: a table with 1..n, each an id. Returns a marked copy.
local function id_list(v, name)
    if type(v) ~= "table" then return fail("invalid", name .. ": a list of ids expected") end
    local n, out = 0, json.array()
    for _ in pairs(v) do n = n + 1 end
    if n ~= #v then return fail("invalid", name .. ": a list of ids expected") end
    for i = 1, n do
        local ok, err = check_id(v[i], name .. "[" .. i .. "]")
        if not ok then return nil, err end
        out[i] = v[i]
    end
    return out
end

-- A map set id -> count (>= min). Returns a copy with integer counts.
local function count_map(v, name, min)
    if type(v) ~= "table" then return fail("invalid", name .. ": a table set id -> count expected") end
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
    if type(v) ~= "table" or #v == 0 then return fail("invalid", name .. ": a list of strings expected") end
    local out = json.array()
    for i = 1, #v do
        local ok, err = check_text(v[i], name .. "[" .. i .. "]")
        if not ok then return nil, err end
        if v[i] == "" then return fail("invalid", name .. "[" .. i .. "]: empty") end
        out[i] = v[i]
    end
    return out
end

--- `POST /v2/resources/orders` (spec §3.3, §5.7): `{ event = ID, random = {...} }`,
-- `{ tickets = { ID, ... } }` or `{ event = ID }`; `all_or_nothing`, `settings` (customer,
-- send_tickets), `vendor_data` and `promocodes` checked as a PATCH would be (validate.c).
-- `tickets` and `random` together are refused (spec §5.4). This is the bare request:
-- @{ticketscloud.Client:create_order} adds the creation's tag and its exactly-once rule.
-- @tparam table args as @{ticketscloud.Client:create_order} takes them, without `request_id`
-- @treturn table the request
-- @return[2] nil
-- @treturn[2] ticketscloud.Error err, kind `"invalid"`
-- @usage
-- local req = assert(rest.create_order{ event = EVENT, random = { [FAN_SET] = 1 } })
function _M.create_order(args)
    local body, err = {}
    for k, v in pairs(args) do body[k] = v end
    if args.event ~= nil then
        local ok
        ok, err = check_id(args.event, "event")
        if not ok then return nil, err end
    end
    if args.tickets ~= nil and args.random ~= nil then
        return fail("invalid", "tickets and random cannot be sent together (spec §5.4)")
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
        return fail("invalid", "event, tickets or random is required")
    end
    if args.all_or_nothing ~= nil and type(args.all_or_nothing) ~= "boolean" then
        return fail("invalid", "all_or_nothing: a boolean expected")
    end
    if args.promocodes ~= nil then
        body.promocodes, err = text_list(args.promocodes, "promocodes")
        if not body.promocodes then return nil, err end
    end
    local ok = true
    if args.settings ~= nil then ok, err = check_settings(args.settings) end
    if ok and args.vendor_data ~= nil then ok, err = check_vendor_data(args.vendor_data) end
    if not ok then return nil, err end
    ok, err = check_json(body, "order")
    if not ok then return nil, err end
    return request("POST", _M.ORDERS, body)
end

--- `GET /v2/resources/orders/:id` (spec §3.8).
-- @tparam string id the order's id
-- @treturn table the request
-- @return[2] nil
-- @treturn[2] ticketscloud.Error err, kind `"invalid"`: not an ObjectId
-- @usage
-- local doc = assert(client:send(assert(rest.get_order(ORDER_ID))))
function _M.get_order(id)
    local ok, err = check_id(id, "order id")
    if not ok then return nil, err end
    return request("GET", _M.ORDERS .. "/" .. id)
end

--- `PATCH /v2/resources/orders/:id` with a whole body (spec §3.4). The body must not be empty,
-- and its strings must be free of control characters.
-- @tparam string id the order's id
-- @tparam table body the desired state
-- @treturn table the request
-- @return[2] nil
-- @treturn[2] ticketscloud.Error err, kind `"invalid"`
-- @usage
-- local req = assert(rest.patch_order(ORDER_ID, { status = "cancelled" }))
function _M.patch_order(id, body)
    local ok, err = check_id(id, "order id")
    if not ok then return nil, err end
    if next(body) == nil then return fail("invalid", "the body is empty: nothing to change") end
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
        if v ~= v or v < 0 or v >= 253402300800 then return fail("invalid", name .. ": out of range") end
        return os_date("!%Y-%m-%dT%H:%M:%S", v - v % 1)
    elseif type(v) == "string" and v:find(ISO) then
        return v
    end
    return fail("invalid", name .. ": Unix seconds or 'YYYY-MM-DDTHH:MM:SS' (UTC) expected")
end

-- A range { from, to } (or { from =, to = }) as "from,to" for a query.
local function range_value(range, name)
    if type(range) ~= "table" then return fail("invalid", name .. ": { from, to } expected") end
    local from, err = datetime(range[1] or range.from, name .. ".from")
    if not from then return nil, err end
    local to
    to, err = datetime(range[2] or range.to, name .. ".to")
    if not to then return nil, err end
    return escape(from) .. "," .. escape(to)
end

-- The query of a list without the page. kind: statuses (the allowed
-- values), noun (for messages), ranges (date-time range filters),
-- customer (whether only_with_customer applies) and keys (every key the
-- filter may have). A key it may not have is refused rather than ignored:
-- a misspelt filter (statuses =, evnts =) would otherwise list everything.
local function list_query(filter, kind)
    for name in pairs(filter) do
        if not kind.keys[name] then
            return fail("invalid", "filter: unknown key " .. tostring(name) .. " (" .. kind.known .. ")")
        end
    end
    local q = {}
    local status = filter.status
    if type(status) == "string" then status = { status } end
    if status ~= nil then
        if type(status) ~= "table" or #status == 0 then
            return fail("invalid", "status: a status or a list of them expected")
        end
        for i, s in ipairs(status) do
            if not kind.statuses[s] then
                return fail("invalid", "status[" .. i .. "]: not " .. kind.noun .. " status")
            end
        end
        q[#q + 1] = "status=" .. concat(status, ",")
    end
    local events = filter.events
    if type(events) == "string" then events = { events } end
    if events ~= nil then
        local list, err = id_list(events, "events")
        if not list then return nil, err end
        if #list == 0 then return fail("invalid", "events: an empty list") end
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
            return fail("invalid", "only_with_customer: a boolean expected")
        end
        q[#q + 1] = "only_with_customer=" .. tostring(filter.only_with_customer)
    end
    local size = _M.DEFAULT_PAGE_SIZE
    if filter.page_size ~= nil then
        local err
        size, err = check_count(filter.page_size, "page_size", 1)
        if not size then return nil, err end
        if size > _M.MAX_PAGE_SIZE then return fail("invalid", "page_size: at most 200") end
    end
    q[#q + 1] = "page_size=" .. size
    return concat(q, "&"), size
end

local ORDER_LIST = { statuses = _M.STATUSES, noun = "an order", ranges = { "created_at" },
                     customer = true }
local REFUND_LIST = { statuses = _M.REFUND_STATUSES, noun = "a refund request",
                      ranges = { "created_at", "finished_at" } }
for _, kind in ipairs{ ORDER_LIST, REFUND_LIST } do
    local names = { "status", "events" }
    for _, name in ipairs(kind.ranges) do names[#names + 1] = name end
    if kind.customer then names[#names + 1] = "only_with_customer" end
    names[#names + 1] = "page_size"
    kind.keys = {}
    for _, name in ipairs(names) do kind.keys[name] = true end
    kind.known = "known: " .. concat(names, ", ")
end

--- The filter of @{ticketscloud.Client:orders} as a query string without the page (spec §3.6):
-- `status`, `events`, `created_at = { from, to }`, `only_with_customer`, `page_size`; any
-- other key is refused.
-- @tparam table filter the filter
-- @treturn string the query
-- @treturn integer the page size
-- @return[2] nil
-- @treturn[2] ticketscloud.Error err, kind `"invalid"`
-- @usage
-- local query, size = assert(rest.orders_query{ status = "done", page_size = 100 })
-- --> "status=done&page_size=100", 100
function _M.orders_query(filter)
    return list_query(filter, ORDER_LIST)
end

--- The filter of @{ticketscloud.Client:refunds} as a query string without the page (spec
-- §3.11): `status` (`new`, `in_progress`, `approved`, `rejected`), `events`, `created_at` and
-- `finished_at = { from, to }`, `page_size`; any other key is refused.
-- @tparam table filter the filter
-- @treturn string the query
-- @treturn integer the page size
-- @return[2] nil
-- @treturn[2] ticketscloud.Error err, kind `"invalid"`
-- @usage
-- local query = assert(rest.refunds_query{ status = { "new", "approved" } })
function _M.refunds_query(filter)
    return list_query(filter, REFUND_LIST)
end

--- `GET /v2/resources/orders?<query>&page=n`: one page of the list.
-- @tparam string query a query of @{orders_query}
-- @tparam integer page the page, from 1
-- @treturn table the request
-- @usage
-- local query = assert(rest.orders_query{ status = "done" })
-- local doc = assert(client:send(rest.list_orders(query, 1)))
function _M.list_orders(query, page)
    return request("GET", _M.ORDERS .. "?" .. query .. "&page=" .. page)
end

--- `GET /v2/resources/refund_requests?<query>&page=n`: one page of the list.
-- @tparam string query a query of @{refunds_query}
-- @tparam integer page the page, from 1
-- @treturn table the request
-- @usage
-- local doc = assert(client:send(rest.list_refunds(assert(rest.refunds_query{}), 1)))
function _M.list_refunds(query, page)
    return request("GET", _M.REFUNDS .. "?" .. query .. "&page=" .. page)
end

--- `POST /v2/resources/refund_requests` (spec §3.11).
-- @tparam table args `order` (an id), `tickets` (a non-empty list of ids), `culprit` (`"user"`
--   or `"org"`), `requested_at` (optional: Unix seconds or `"YYYY-MM-DDTHH:MM:SS"`, UTC)
-- @treturn table the request
-- @return[2] nil
-- @treturn[2] ticketscloud.Error err, kind `"invalid"`
-- @usage
-- local req = assert(rest.create_refund{ order = ORDER_ID, tickets = { TICKET_ID },
--                                        culprit = "org" })
function _M.create_refund(args)
    local ok, err = check_id(args.order, "order")
    if not ok then return nil, err end
    if args.culprit == nil then return fail("invalid", "culprit: \"user\" or \"org\" is required") end
    if not _M.CULPRITS[args.culprit] then
        return fail("invalid", "culprit: \"user\" or \"org\" expected, got " .. tostring(args.culprit))
    end
    if args.tickets == nil then return fail("invalid", "tickets: a list of ticket ids is required") end
    local tickets
    tickets, err = id_list(args.tickets, "tickets")
    if not tickets then return nil, err end
    if #tickets == 0 then return fail("invalid", "tickets: at least one ticket to refund") end
    local body = { order = args.order, culprit = args.culprit, tickets = tickets }
    if args.requested_at ~= nil then
        body.requested_at, err = datetime(args.requested_at, "requested_at")
        if not body.requested_at then return nil, err end
    end
    return request("POST", _M.REFUNDS, body)
end

--- `GET /v2/resources/refund_requests/:id` (served by tc-sandbox; the service documents no such
-- route, see docs/refunds.md).
-- @tparam string id the refund request's id
-- @treturn table the request
-- @return[2] nil
-- @treturn[2] ticketscloud.Error err, kind `"invalid"`
-- @usage
-- local req = assert(rest.get_refund(REFUND_ID))
function _M.get_refund(id)
    local ok, err = check_id(id, "refund id")
    if not ok then return nil, err end
    return request("GET", _M.REFUNDS .. "/" .. id)
end

--- `PATCH /v2/resources/refund_requests/:id` `{ status = "approved" | "rejected" }`.
-- @tparam string id the refund request's id
-- @tparam string status `"approved"` or `"rejected"`
-- @treturn table the request
-- @return[2] nil
-- @treturn[2] ticketscloud.Error err, kind `"invalid"`
-- @usage
-- local req = assert(rest.patch_refund(REFUND_ID, "approved"))
function _M.patch_refund(id, status)
    local ok, err = check_id(id, "refund id")
    if not ok then return nil, err end
    if status ~= "approved" and status ~= "rejected" then
        return fail("invalid", "status: \"approved\" or \"rejected\" expected")
    end
    return request("PATCH", _M.REFUNDS .. "/" .. id, { status = status })
end

local VISITOR = { ticket_id = "id", user_id = "text", name = "text", surname = "text",
                  middle_name = "text" }
local VISITOR_REQUIRED = { "user_id", "name", "surname" }

--- `PUT /v2/services/orders/mosbilet/user_data` (spec §3.10). The answer is 202 without a
-- body: the request has `no_data = true` (see @{decode}).
-- @tparam string order the order's id
-- @tparam table visitors a non-empty list of tables with `ticket_id`, `user_id`, `name`,
--   `surname`, `middle_name` (`user_id`, `name`, `surname` required, `ticket_id` an id)
-- @treturn table the request
-- @return[2] nil
-- @treturn[2] ticketscloud.Error err, kind `"invalid"`
-- @usage
-- local req = assert(rest.mosbilet_user_data(ORDER_ID, {
--     { ticket_id = TICKET_ID, user_id = "42", name = "Ivan", surname = "Petrov" } }))
function _M.mosbilet_user_data(order, visitors)
    local ok, err = check_id(order, "order")
    if not ok then return nil, err end
    if type(visitors) ~= "table" or #visitors == 0 then
        return fail("invalid", "visitors: a non-empty list expected")
    end
    local list = json.array()
    for i, v in ipairs(visitors) do
        local name = "visitors[" .. i .. "]"
        if type(v) ~= "table" then return fail("invalid", name .. ": a table expected") end
        local item = {}
        for k, value in pairs(v) do
            local kind = VISITOR[k]
            if not kind then return fail("invalid", name .. ": unknown field " .. tostring(k)) end
            if kind == "id" then
                ok, err = check_id(value, name .. "." .. k)
            else
                ok, err = check_text(value, name .. "." .. k)
                if ok and value == "" then ok, err = fail("invalid", name .. "." .. k .. ": empty") end
            end
            if not ok then return nil, err end
            item[k] = value
        end
        for _, k in ipairs(VISITOR_REQUIRED) do
            if item[k] == nil then return fail("invalid", name .. "." .. k .. ": required") end
        end
        list[i] = item
    end
    if #list ~= #visitors then return fail("invalid", "visitors: a list expected") end
    local req
    req, err = request("PUT", _M.MOSBILET, { order = order, user_data = list })
    if req then req.no_data = true end
    return req, err
end

--- `POST /v2/services/promocodes/check` (spec §3.9).
-- @tparam table args `{ event = ID, code = "PROMO" }`
-- @treturn table the request
-- @return[2] nil
-- @treturn[2] ticketscloud.Error err, kind `"invalid"`
-- @usage
-- local req = assert(rest.check_promocode{ event = EVENT, code = "SPRING" })
function _M.check_promocode(args)
    local ok, err = check_id(args.event, "event")
    if not ok then return nil, err end
    ok, err = check_text(args.code, "code")
    if not ok then return nil, err end
    if args.code == "" then return fail("invalid", "code: empty") end
    return request("POST", _M.PROMOCODE_CHECK, { event = args.event, code = args.code })
end

return _M
