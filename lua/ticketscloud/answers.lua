-- ticketscloud.answers: what an answer of the REST API means, no I/O. A
-- 2xx answer is the decoded document; any other status is an error whose
-- kind comes from the status (spec §3.2); a few errors are recognised by
-- their messages. What a 2xx answer must hold is checked here too: an
-- order (answers.order), one item (answers.item), a page of a list
-- (answers.list); anything else is kind "api".

local core = require "ticketscloud.core"
local json = require "ticketscloud.json"

local ipairs = ipairs
local pairs = pairs
local type = type

local check_id = core.check_id
local core_error = core.error
local fail = core.fail

local _M = { _VERSION = core._VERSION }

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
-- success has no body, such as rest.mosbilet_user_data) any 2xx gives true.
function _M.decode(status, body, no_data)
    local doc = json.decode(body)
    if no_data and status >= 200 and status <= 299 then return true end
    if status < 200 or status > 299 then
        return nil, _M.http_error(status, doc)
    end
    if type(doc) ~= "table" or type(doc.data) ~= "table" then
        return fail("api", ("HTTP %d: the answer is not the expected JSON object with data")
                    :format(status), status)
    end
    -- One item (an order, a refund request): its id, when it has one, must
    -- be an ObjectId. Whether it must have one is up to answers.item.
    local id = doc.data.id
    if id ~= nil and not check_id(id) then
        local _, err = check_id(id, "the answer's data.id")
        return fail("api", ("HTTP %d: %s"):format(status, err.messages[1]), status)
    end
    return doc
end

-- Whether t is a list: its keys are exactly 1..n. (A JSON array decodes so;
-- an empty table may have been [] or {}, and counts as an empty list.)
local function is_list(t)
    if type(t) ~= "table" then return false end
    local n = 0
    for _ in pairs(t) do n = n + 1 end
    for i = 1, n do
        if t[i] == nil then return false end
    end
    return true
end

-- Whether t is a JSON object (not a non-empty list).
local function is_object(t)
    return type(t) == "table" and t[1] == nil
end

-- The "api" error for an id that is not an ObjectId, named as what.
local function bad_id(v, what)
    local _, err = check_id(v, what)
    return fail("api", err.messages[1])
end

-- answers.item(doc, noun, id) -> doc | nil, err (kind "api"): an answer of
-- one item (noun "order", "refund request") must hold it in data, an
-- object whose id is an ObjectId: the id asked about, when id is given.
function _M.item(doc, noun, id)
    local data = doc.data
    if not is_object(data) then return fail("api", "the answer's data is not one " .. noun) end
    if not check_id(data.id) then return bad_id(data.id, "the answer's " .. noun .. " id") end
    if id ~= nil and data.id ~= id and data.id:lower() ~= id:lower() then
        return fail("api", ("asked about %s %s, the answer is for %s %s"):format(
            noun, id, noun, data.id))
    end
    return doc
end

-- answers.order(doc, id) -> doc | nil, err (kind "api"): an answer about
-- an order (POST, PATCH, GET, or the item the list gave) holds an order:
-- answers.item's rules, and its tickets are a list.
function _M.order(doc, id)
    local ok, err = _M.item(doc, "order", id)
    if not ok then return nil, err end
    if not is_list(doc.data.tickets) then
        return fail("api", ("order %s: its tickets are not a list"):format(doc.data.id))
    end
    return doc
end

-- answers.list(doc, noun, what) -> items | nil, err (kind "api"): the data
-- of a page of a list (noun "order", what "an order") must be a list of
-- objects whose ids are ObjectIds. A JSON object is not an empty page.
function _M.list(doc, noun, what)
    local items = doc.data
    if not is_list(items) then
        return fail("api", ("the %s list's data is not a list"):format(noun))
    end
    for i, item in ipairs(items) do
        if not is_object(item) then
            return fail("api", ("the %s list's data[%d] is not %s"):format(noun, i, what))
        end
        if not check_id(item.id) then
            return bad_id(item.id, ("the %s list's data[%d].id"):format(noun, i))
        end
    end
    return items
end

-- Whether a 404 for GET of one item (noun "Order", "RefundRequest") is the
-- service saying that item id does not exist ("Order <id> not found"),
-- rather than that it does not serve the route: then the client reads the
-- list instead (spec §3.8).
function _M.is_missing(err, noun, id)
    if err.status ~= 404 then return false end
    local text = noun .. " " .. id .. " not found"
    for _, m in ipairs(err.messages or {}) do
        if m == text then return true end
    end
    return false
end

-- Whether a request that failed with err may have been applied all the
-- same: no answer came although the request may have reached the service
-- (err.sent is false only when nothing left this machine), or a 5xx, which
-- a proxy may give after the service applied the request.
function _M.maybe_applied(err)
    local kind = err.kind
    if kind == "transport" or kind == "timeout" then return err.sent ~= false end
    return type(err.status) == "number" and err.status >= 500
end

-- Whether a request that failed with err is worth sending again after the
-- order was read anew: another change was in flight (409), or the network
-- or the service failed (above). Any other 4xx would fail again.
function _M.retryable(err)
    if err.kind == "conflict" then return true end
    if err.kind == "transport" or err.kind == "timeout" then return true end
    return type(err.status) == "number" and err.status >= 500
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
