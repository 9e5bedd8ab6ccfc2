--- ticketscloud.refunds: the refund-request methods of the client (spec
-- §3.11, docs/refunds.md), installed on the client class by ticketscloud
-- (init.lua); the reference lists them with the client's other methods.
-- Each returns the refund request (the answer's data: id, status, culprit,
-- refund_nominal, customer_money, tickets, ...) with its refs in
-- refund.refs, or nil, err.
-- @module ticketscloud

local core = require "ticketscloud.core"
local answers = require "ticketscloud.answers"
local pages = require "ticketscloud.pages"
local rest = require "ticketscloud.rest"

local type = type

local check_arg = core.check_arg
local fail = core.fail

local _M = { _VERSION = core._VERSION }

local methods = {}

local REFUNDS = pages.list{
    name = "ticketscloud.RefundStream", noun = "refund request", what = "a refund request",
    missing = "RefundRequest",
    query = rest.refunds_query, request = rest.list_refunds, get = rest.get_refund,
    make = function(_, item, refs)
        item.refs = refs
        return item
    end,
}

-- The refund request of an answer, checked to be one (answers.item: the
-- one asked about when id is given) and to have status.
local function refund_of(doc, status, id)
    local ok, err = answers.item(doc, "refund request", id)
    if not ok then return nil, err end
    local r = doc.data
    if type(r.status) ~= "string" then
        return fail("api", "the answer's data is not a refund request")
    end
    if status and r.status ~= status then
        return fail("api", ("refund request %s is %s, not %s"):format(r.id, r.status, status))
    end
    r.refs = doc.refs
    return r
end

--- @type Client

--- Requests a refund of a `done` order, wholly or in part:
-- `POST /v2/resources/refund_requests` (spec §3.11, docs/refunds.md). The request starts `new`.
--
-- Every refund method returns the refund request: the answer's `data` (`id`, `status`,
-- `culprit`, `created_at`, `finished_at`, `requested_at`, `refund_nominal`, `delta`,
-- `customer_money`, `event`, `org`, `order`, `vendor`, `policy`, `tickets`) with the
-- answer's `refs` in `refund.refs`. The answer must hold one refund request with an
-- ObjectId (kind `"api"` otherwise); the service's refusals are kind `"api"` with its
-- messages, e.g. `wrong order (id: ...) status: executed`.
-- @function Client:create_refund
-- @tparam table args `{ order =, tickets =, culprit =, requested_at = }`: `order` the order's
--   id; `tickets` a non-empty list of ids of the order's tickets; `culprit` `"user"` or
--   `"org"`; `requested_at`, optional, Unix seconds or `"YYYY-MM-DDTHH:MM:SS"` (UTC)
-- @tparam[opt] table opts `headers`, `timeout`
-- @treturn table the refund request, status `new`
-- @return[2] nil
-- @treturn[2] Error err: kind `"invalid"` for arguments refused before sending
-- @raise when `args` is not a table or `opts` neither nil nor a table
-- @usage
-- local r = assert(client:create_refund{ order = ORDER_ID, tickets = { TICKET_ID },
--                                        culprit = "user", requested_at = os.time() })
-- print(r.id, r.status, r.refund_nominal, r.customer_money)   --> ... new 990.00 1089.00
function methods.create_refund(self, args, opts)
    check_arg(args, "table", "create_refund", 1)
    check_arg(opts, "table?", "create_refund", 2)
    local req, err = rest.create_refund(args)
    if not req then return nil, err end
    local doc
    doc, err = self:send(req, opts)
    if not doc then return nil, err end
    return refund_of(doc, "new")
end

--- Reads a refund request: `GET /v2/resources/refund_requests/:id`. The service documents no
-- such route: when it answers 405, or a 404 that is not `RefundRequest <id> not found`, the
-- list is scanned instead (bounded by `list_timeout`).
-- @function Client:refund
-- @tparam string id the refund request's id
-- @tparam[opt] table opts `headers`, `timeout`, `list_timeout`
-- @treturn table the refund request (see @{Client:create_refund})
-- @return[2] nil
-- @treturn[2] Error err: kind `"not_found"` when there is none
-- @raise when `id` is not a string or `opts` neither nil nor a table
-- @usage
-- local r = assert(client:refund(REFUND_ID))
-- print(r.status, r.finished_at)
function methods.refund(self, id, opts)
    check_arg(id, "string", "refund", 1)
    check_arg(opts, "table?", "refund", 2)
    local doc, err = pages.read(self, REFUNDS, id, nil, opts)
    if not doc then return nil, err end
    return refund_of(doc, nil, id)
end

--- Lists refund requests, newest first: `GET /v2/resources/refund_requests`, page by page,
-- as @{Client:orders} lists orders (an unknown filter key or value is refused, nothing sent).
-- @function Client:refunds
-- @tparam[opt] table filter every key optional
-- @tparam[opt] string|table filter.status `new`, `in_progress`, `approved`, `rejected`, one or
--   a list
-- @tparam[opt] string|table filter.events an event id or a list of them
-- @tparam[opt] table filter.created_at `{ from, to }`: Unix seconds or `"YYYY-MM-DDTHH:MM:SS"`
--   (UTC)
-- @tparam[opt] table filter.finished_at the same
-- @tparam[opt=50] integer filter.page_size 1 to 200
-- @tparam[opt] table opts `headers` and `timeout` of each page's request, `list_timeout`
-- @treturn ListStream a stream of refund requests
-- @return[2] nil
-- @treturn[2] Error err, kind `"invalid"`
-- @raise when `filter` or `opts` is neither nil nor a table
-- @usage
-- local list = assert(client:refunds{ status = "new", events = { EVENT } })
-- for refund in list do print(refund.id, refund.status, refund.customer_money) end
-- assert(not list:error())
function methods.refunds(self, filter, opts)
    check_arg(filter, "table?", "refunds", 1)
    check_arg(opts, "table?", "refunds", 2)
    return pages.stream(self, REFUNDS, filter, opts)
end

-- The method name that PATCHes a refund request to status.
local function finish_refund(name, status)
    return function(self, id, opts)
        check_arg(id, "string", name, 1)
        check_arg(opts, "table?", name, 2)
        local req, err = rest.patch_refund(id, status)
        if not req then return nil, err end
        local doc
        doc, err = self:send(req, opts)
        if not doc then return nil, err end
        return refund_of(doc, status, id)
    end
end

--- Approves a refund request: `PATCH /v2/resources/refund_requests/:id`
-- `{"status": "approved"}`. The tickets go back on sale. The answer must show status
-- `approved` (kind `"api"` otherwise).
-- @function Client:approve_refund
-- @tparam string id the refund request's id
-- @tparam[opt] table opts `headers`, `timeout`
-- @treturn table the refund request, status `approved`
-- @return[2] nil
-- @treturn[2] Error err; a request that is not `new` is refused by the service (kind `"api"`)
-- @raise when `id` is not a string or `opts` neither nil nor a table
-- @usage
-- assert(client:approve_refund(r.id))
methods.approve_refund = finish_refund("approve_refund", "approved")

--- Rejects a refund request: `PATCH /v2/resources/refund_requests/:id`
-- `{"status": "rejected"}`. The answer must show status `rejected` (kind `"api"` otherwise).
-- @function Client:reject_refund
-- @tparam string id the refund request's id
-- @tparam[opt] table opts `headers`, `timeout`
-- @treturn table the refund request, status `rejected`
-- @return[2] nil
-- @treturn[2] Error err
-- @raise when `id` is not a string or `opts` neither nil nor a table
-- @usage
-- assert(client:reject_refund(r.id))
methods.reject_refund = finish_refund("reject_refund", "rejected")

-- client:create_refund and the others, copied into the client class by
-- ticketscloud (init.lua).
_M.methods = methods

return _M
