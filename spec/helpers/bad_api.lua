-- A keep-alive HTTP server on loopback that answers the order and refund
-- requests of the REST API as a broken service might: lists without end,
-- pages that make no progress, answers about another order. tc-sandbox
-- never gives these; spec/lists_spec.lua and spec/answers_spec.lua do.
--
--   lua5.4 spec/helpers/bad_api.lua MODE
--
-- Prints "port N", then serves connections one after another, and exits
-- once none has come for a second (20 s before the first). It answers
-- every list request (orders, refund requests) with a page of the mode,
-- GET of one item with 405 (so the client scans the list) except in the
-- modes of one item (the last two), and prints "requests N" when it exits.
-- Modes:
--
--   endless      every page is full of items never listed before, no total
--   repeat       every page lists the same items
--   wrong_page   items never listed before, but pagination.page is 1
--   shifted      3 pages (pagination.total), each starting with the last
--                item of the one before, as when items are added meanwhile
--   object       data is a JSON object holding items, not a list
--   other        GET or PATCH of order (or refund request) A answers with
--                OTHER
--   id_number, id_missing, id_huge, tickets_object
--                GET or PATCH of an order, or POST of a new one, answers
--                with an order whose id is a number, missing, or 1 MB long;
--                or whose tickets are an object
local socket = require "socket"
local cjson = require "cjson"

local MODE = arg[1]
local OTHER = "0123456789abcdef01234567"
local EVENT = "5d7134962110d30a34e95b96"

local function item(id, refund)
    if refund then return { id = id, status = "new", tickets = {} } end
    return { id = id, status = "executed", event = EVENT, tickets = { { id = id, set = id } } }
end

-- The answer to GET of a page of a list.
local function page(path)
    local refund = path:find("^/v2/resources/refund_requests") ~= nil
    local n = tonumber(path:match("[?&]page=(%d+)")) or 1
    local size = tonumber(path:match("[?&]page_size=(%d+)")) or 50
    local items = {}
    for i = 1, size do
        local p, k = MODE == "repeat" and 1 or n, i
        if MODE == "shifted" then p, k = 0, (n - 1) * (size - 1) + i end
        items[i] = item(("%012x%012x"):format(p, k), refund)
    end
    local data = items
    if MODE == "object" then data = { first = items[1], second = items[2] } end
    local pagination = { page = MODE == "wrong_page" and 1 or n, page_size = size }
    if MODE == "shifted" then pagination.total = 3 * size end
    return 200, { data = data, refs = {}, pagination = pagination }
end

-- The answer to GET or PATCH of one order (or refund request).
local function one(id, refund)
    local o = item(MODE == "other" and OTHER or id, refund)
    if MODE == "id_number" then o.id = 12345 end
    if MODE == "id_missing" then o.id = nil end
    if MODE == "id_huge" then o.id = ("a"):rep(1024 * 1024) end
    if MODE == "tickets_object" then o.tickets = { first = o.tickets[1] } end
    return 200, { data = o, refs = {} }
end

local ONE_MODES = { other = true, id_number = true, id_missing = true, id_huge = true,
                    tickets_object = true }

local function answer(method, path)
    local what, id = path:match("^/v2/resources/([%a_]+)/(%x+)$")
    if id and ONE_MODES[MODE] and (method == "GET" or method == "PATCH") then
        return one(id, what == "refund_requests")
    end
    if path == "/v2/resources/orders" and ONE_MODES[MODE] and method == "POST" then
        return one("5d7134962110d30a34e9aaaa")
    end
    if method == "GET" and path:find("^/v2/resources/[%a_]+%?") then return page(path) end
    if method == "GET" then return 405, { errors = { "Method Not Allowed" } } end
    return 400, { errors = { "not served by bad_api.lua" } }
end

local requests = 0

-- Serves the requests of one connection until the client closes it.
local function serve(conn)
    while true do
        local line = conn:receive("*l")
        if not line then return end
        local method, path = line:match("^(%u+) (%S+) HTTP/1%.1$")
        local length = 0
        repeat
            local h = conn:receive("*l")
            if not h then return end
            local l = h:match("^[Cc]ontent%-[Ll]ength:%s*(%d+)")
            if l then length = tonumber(l) end
        until h == ""
        if length > 0 and not conn:receive(length) then return end
        requests = requests + 1
        local status, doc = answer(method, path or "")
        local body = cjson.encode(doc)
        local ok = conn:send(("HTTP/1.1 %d Bad API\r\nContent-Type: application/json\r\n"
                              .. "Content-Length: %d\r\n\r\n"):format(status, #body) .. body)
        if not ok then return end
    end
end

local server = assert(socket.bind("127.0.0.1", 0))
local _, port = server:getsockname()
io.stdout:write("port ", port, "\n")
io.stdout:flush()
server:settimeout(20)
while true do
    local conn = server:accept()
    if not conn then break end
    conn:settimeout(10)
    serve(conn)
    conn:close()
    server:settimeout(1)
end
server:close()
io.stdout:write("requests ", requests, "\n")
