-- ticketscloud.pages: the paged lists of the REST API (orders, refund
-- requests) for the client: a stream that fetches pages as needed, and
-- reading one item by id with the list as the fallback.

local core = require "ticketscloud.core"
local answers = require "ticketscloud.answers"
local rest = require "ticketscloud.rest"

local ipairs = ipairs
local pairs = pairs
local setmetatable = setmetatable
local type = type

local fail = core.fail

local _M = { _VERSION = core._VERSION }

local Stream = {}

local function call(self)
    return self:next()
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

-- One page of a list: the document, with data checked to be a list of
-- objects with ids.
local function fetch_page(client, list, query, page, opts)
    local doc, err = client:send(list.request(query, page), opts)
    if not doc then return nil, err end
    for i, item in ipairs(doc.data) do
        if type(item) ~= "table" or type(item.id) ~= "string" then
            return fail("api", ("the %s list's data[%d] is not %s"):format(list.noun, i, list.what))
        end
    end
    return doc
end

-- pages.stream(client, list, filter, opts) -> stream | nil, err (a filter
-- that list.query refuses). Calling the stream gives the next item.
function _M.stream(client, list, filter, opts)
    local query, size = list.query(filter or {})
    if not query then return nil, size end
    return setmetatable({ client = client, list = list, query = query, size = size,
                          page = 0, i = 0, opts = opts }, list.mt)
end

-- The next item, nil at the end, or nil, err (then again on every call);
-- after close, nil and a "closed" error, as a catalogue stream. The
-- listing ends at a short or empty page, or at pagination.total.
function Stream.next(self)
    if self.closed then return fail("invalid", "closed") end
    if self.err then return nil, self.err end
    local items = self.items
    if items and self.i < #items then
        self.i = self.i + 1
        return self.list.make(self.client, items[self.i], self.refs)
    end
    if self.finished then return nil end
    local page = self.page + 1
    local doc, err = fetch_page(self.client, self.list, self.query, page, self.opts)
    if not doc then
        self.err = err
        self.items = nil
        return nil, err
    end
    self.page, self.items, self.refs, self.i = page, doc.data, doc.refs, 0
    local p = doc.pagination
    if type(p) == "table" and type(p.total) == "number" then self.total = p.total end
    if #doc.data < self.size or (self.total and page * self.size >= self.total) then
        self.finished = true
    end
    if #doc.data == 0 then return nil end
    return self:next()
end

-- The error that ended the stream, nil when it ended normally.
function Stream.error(self)
    return self.err
end

-- Ends the stream early; stream:error() still tells what ended it before.
-- Idempotent.
function Stream.close(self)
    self.closed = true
    self.items = nil
    return true
end

-- pages.find(client, list, id, filter, opts) -> doc | nil, err: the
-- answer-shaped { data = item, refs = refs } of item id, walking the list
-- (filter narrows it) to where it ends.
function _M.find(client, list, id, filter, opts)
    local ok, err = core.check_id(id, list.noun .. " id")
    if not ok then return nil, err end
    local f = {}
    for k, v in pairs(filter or {}) do f[k] = v end
    f.page_size = f.page_size or rest.MAX_PAGE_SIZE
    local stream
    stream, err = _M.stream(client, list, f, opts)
    if not stream then return nil, err end
    for item in stream do
        if item.id == id then return { data = stream.items[stream.i], refs = stream.refs } end
    end
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
