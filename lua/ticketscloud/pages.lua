--- ticketscloud.pages: the paged lists of the REST API (orders, refund
-- requests) for the client: a stream that fetches pages as needed, and
-- reading one item by id with the list as the fallback. The module is
-- internal; the reference documents its stream with the client.
--
-- Every walk of a list is bounded, whatever the server answers: it ends at
-- a short or empty page or at pagination.total; a page that makes no
-- progress is refused (kind "api"); and the time it spends fetching pages
-- is limited by list_timeout (kind "timeout"). docs/client.md, "Lists".
-- @module ticketscloud

local core = require "ticketscloud.core"
local answers = require "ticketscloud.answers"
local rest = require "ticketscloud.rest"

local ipairs = ipairs
local pairs = pairs
local setmetatable = setmetatable
local tostring = tostring
local type = type

local fail = core.fail
local now = core.now

local _M = { _VERSION = core._VERSION }

-- Without a list_timeout option, a walk may spend this many times the
-- client's timeout fetching pages.
_M.LIST_TIMEOUT_FACTOR = 6

local Stream = {}

local function call(self)
    return self:next()
end

-- pages.check_list_timeout(v) -> v | nil, err (kind "invalid"): the
-- list_timeout option, seconds in (0, 86400].
function _M.check_list_timeout(v)
    return core.check_timeout(v, "list_timeout") -- options.c's rule
end

-- Describes a list: pages.list{
--   name    = "ticketscloud.OrderStream",  the streams' metatable name
--   noun    = "order", what = "an order",   for messages
--   missing = "Order",                      the noun of the service's 404
--   query   = rest.orders_query,            filter -> query, page size | nil, err
--   request = rest.list_orders,             query, page -> the request of a page
--   get     = rest.get_order,               id -> the request of one item | nil, err
--   make    = function(client, item, refs)  what a stream returns for an item
-- }
function _M.list(list)
    list.mt = { __index = Stream, __name = list.name, __call = call }
    return list
end

-- pages.stream(client, list, filter, opts) -> stream | nil, err (a filter
-- that list.query refuses, a bad opts.list_timeout). Calling the stream
-- gives the next item. opts go to every request (headers, timeout);
-- opts.list_timeout, else the client's, bounds the walk.
function _M.stream(client, list, filter, opts)
    local query, size = list.query(filter or {})
    if not query then return nil, size end
    local limit = client.list_timeout
    if opts and opts.list_timeout ~= nil then
        local err
        limit, err = _M.check_list_timeout(opts.list_timeout)
        if not limit then return nil, err end
    end
    return setmetatable({ client = client, list = list, query = query, size = size,
                          page = 0, i = 0, opts = opts, limit = limit, spent = 0, seen = {} },
                        list.mt)
end

local function timed_out(self)
    return fail("timeout", ("the %s list: list_timeout (%g s) passed after %d pages")
                :format(self.list.noun, self.limit, self.page))
end

-- The request options of the next page: the stream's, with the timeout cut
-- to what is left of list_timeout; and whether it was cut.
local function page_opts(self, left)
    local opts = self.opts
    local timeout = opts and opts.timeout or self.client.options.timeout
    if type(timeout) ~= "number" or timeout <= left then return opts, false end
    local copy = {}
    for k, v in pairs(opts or {}) do copy[k] = v end
    copy.timeout = left
    return copy, true
end

-- Fetches page self.page + 1 and takes its items that this walk has not
-- listed yet; true, or nil, err.
local function fetch(self, left)
    local list, page = self.list, self.page + 1
    local opts, cut = page_opts(self, left)
    local doc, err = self.client:send(list.request(self.query, page), opts)
    if not doc then
        if cut and err.kind == "timeout" then return timed_out(self) end
        return nil, err
    end
    local items
    items, err = answers.list(doc, list.noun, list.what)
    if not items then return nil, err end
    local p = doc.pagination
    if type(p) == "table" and p.page ~= nil and p.page ~= rest.null and p.page ~= page then
        local got = type(p.page) == "number" and ("%.14g"):format(p.page) or tostring(p.page)
        return fail("api", ("the %s list answered page %s when asked for page %d")
                    :format(list.noun, got, page))
    end
    local seen, fresh = self.seen, {}
    for _, item in ipairs(items) do
        if not seen[item.id] then
            seen[item.id] = true
            fresh[#fresh + 1] = item
        end
    end
    if #items > 0 and #fresh == 0 then
        return fail("api", ("page %d of the %s list holds only items listed before: "
                            .. "the listing makes no progress"):format(page, list.noun))
    end
    self.page, self.items, self.refs, self.i = page, fresh, doc.refs, 0
    if type(p) == "table" and type(p.total) == "number" then self.total = p.total end
    if #items < self.size or (self.total and page * self.size >= self.total) then
        self.finished = true
    end
    return true
end

-- The next raw item and the refs of its page; nil at the end; or nil, err
-- (then again on every call). An item already listed in this walk (the
-- list shifted under it) is not listed again.
local function next_item(self)
    if self.closed then return fail("invalid", "closed") end
    if self.err then return nil, self.err end
    while true do
        local items = self.items
        if items and self.i < #items then
            self.i = self.i + 1
            return items[self.i], self.refs
        end
        if self.finished then return nil end
        local left = self.limit - self.spent
        local ok, err
        if left <= 0 then
            ok, err = timed_out(self)
        else
            local start = now()
            ok, err = fetch(self, left)
            self.spent = self.spent + (now() - start)
        end
        if not ok then
            self.err, self.items = err, nil
            return nil, err
        end
    end
end

--- The stream of a REST list, returned by @{Client:orders} (`ticketscloud.OrderStream`, of
-- order objects) and @{Client:refunds} (`ticketscloud.RefundStream`, of refund requests).
--
-- Calling the stream, as a `for` loop does, is @{ListStream:next}: the next item, `nil` at
-- the end, or `nil, err`. Pages are fetched as needed, `page_size` items at a time. A `for`
-- loop stops at the first `nil` either way, so check @{ListStream:error} after it.
--
-- Every walk ends, whatever the server answers: at a short or empty page or when
-- `pagination.total` items were read; a page whose `data` is not a list of objects with
-- ObjectIds, or that makes no progress (only items listed before in this walk, or a
-- `pagination.page` other than the one asked for), is kind `"api"`; the time spent fetching
-- pages is bounded by `list_timeout` (the call's, else the client's), past which the walk
-- ends with kind `"timeout"`. An item listed before on a page with new ones (the list shifted)
-- is not listed again.
--
-- Field `total`: the service's count of matching items, once a page was read.
-- @type ListStream
-- @usage
-- local stream = assert(client:orders{ status = "done" })
-- for order in stream do print(order.id) end
-- local err = stream:error()
-- if err then print("the listing is incomplete: " .. tostring(err)) end
-- print(stream.total)

--- The next item, `nil` at the end, or `nil, err` (then the same error on every call).
-- Calling the stream is the same.
-- @function ListStream:next
-- @return the next item: an order object, or a refund request
-- @return[2] nil at the end
-- @return[3] nil
-- @treturn[3] Error err; after @{ListStream:close}, kind `"invalid"` (`"closed"`)
-- @usage
-- local order, err = stream:next()   -- or stream()
function Stream.next(self)
    local item, refs = next_item(self)
    if item == nil then return nil, refs end
    return self.list.make(self.client, item, refs)
end

--- The error that ended the stream: `nil` while it has not failed, and after a normal end.
-- After @{ListStream:close} it still tells what ended the stream before.
-- @function ListStream:error
-- @treturn ?Error the error, or `nil`
-- @usage
-- for refund in refunds do print(refund.id) end
-- assert(not refunds:error(), "the listing is incomplete")
function Stream.error(self)
    return self.err
end

--- Ends the stream early. Calls after it give `nil, err` (kind `"invalid"`, `"closed"`);
-- @{ListStream:error} still tells what ended it before. Idempotent.
-- @function ListStream:close
-- @treturn boolean `true`
-- @usage
-- for order in stream do
--     if order.id == WANTED then stream:close() break end
-- end
function Stream.close(self)
    self.closed = true
    self.items = nil
    return true
end

-- pages.find(client, list, id, filter, opts) -> doc | nil, err: the
-- answer-shaped { data = item, refs = refs } of item id (in either case of
-- its hexadecimal digits), walking the list (filter narrows it) to where
-- it ends.
function _M.find(client, list, id, filter, opts)
    local ok, err = core.check_id(id, list.noun .. " id")
    if not ok then return nil, err end
    local f = {}
    for k, v in pairs(filter or {}) do f[k] = v end
    f.page_size = f.page_size or rest.MAX_PAGE_SIZE
    local stream
    stream, err = _M.stream(client, list, f, opts)
    if not stream then return nil, err end
    local want = id:lower()
    repeat
        local item, refs = next_item(stream)
        if item and item.id:lower() == want then return { data = item, refs = refs } end
    until item == nil
    err = stream:error()
    if err then return nil, err end
    return fail("not_found", list.missing .. " " .. id .. " not found", 404)
end

-- pages.read(client, list, id, filter, opts) -> doc | nil, err: the answer
-- of GET by id. When the service does not serve that route (405, or a 404
-- that does not say the item is missing, spec §3.8), pages.find instead.
function _M.read(client, list, id, filter, opts)
    local req, err = list.get(id)
    if not req then return nil, err end
    local doc
    doc, err = client:send(req, opts)
    if doc then return doc end
    if err.status == 405 or (err.status == 404 and not answers.is_missing(err, list.missing, id)) then
        return _M.find(client, list, id, filter, opts)
    end
    return nil, err
end

return _M
