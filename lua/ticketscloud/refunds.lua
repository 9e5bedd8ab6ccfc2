-- ticketscloud.refunds: the refund-request methods of the client (spec
-- §3.11, docs/refunds.md), installed on the client class by ticketscloud
-- (init.lua). Each returns the refund request (the answer's data: id,
-- status, culprit, refund_nominal, customer_money, tickets, ...) with its
-- refs in refund.refs, or nil, err.

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

-- client:create_refund{ order = ID, tickets = { ID, ... }, culprit = "user" | "org",
--                       requested_at = Unix seconds or "YYYY-MM-DDTHH:MM:SS" (UTC) }
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

-- client:refund(id): GET /v2/resources/refund_requests/:id; when the
-- service does not serve that route (405, or a 404 that is not
-- "RefundRequest <id> not found") the list is scanned instead.
function methods.refund(self, id, opts)
    check_arg(id, "string", "refund", 1)
    check_arg(opts, "table?", "refund", 2)
    local doc, err = pages.read(self, REFUNDS, id, nil, opts)
    if not doc then return nil, err end
    return refund_of(doc, nil, id)
end

-- client:refunds{ status = { "new" }, events = { ID }, created_at = { from, to },
--                 finished_at = { from, to }, page_size = 50 }
-- -> a stream of refund requests, newest first, like client:orders.
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

-- client:approve_refund(id): status approved; the tickets go back on sale.
methods.approve_refund = finish_refund("approve_refund", "approved")

-- client:reject_refund(id): status rejected.
methods.reject_refund = finish_refund("reject_refund", "rejected")

-- client:create_refund and the others, copied into the client class by
-- ticketscloud (init.lua).
_M.methods = methods

return _M
