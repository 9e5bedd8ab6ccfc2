--- The client of the Ticketscloud distributor API.
--
-- `require "ticketscloud"` gives @{new}, which makes a @{Client}: REST for orders and refund
-- requests, tc-simple gRPC for the catalogue. The order methods return order objects
-- (@{ticketscloud.order}); @{ticketscloud.flows} composes them into whole sales flows.
--
-- Argument type mistakes raise. Everything the data or the network causes returns `nil, err`,
-- where `err` is an @{Error}. Nothing is opened by `require`: the REST connection and the gRPC
-- channel are made by the first call that needs them, in the process that makes it.
-- `tc._VERSION` is the module's version (the Makefile's `VERSION`).
--
-- This file holds tc.new, client:close and client:send, the order entry points, and wires in
-- the catalogue and refund methods of ticketscloud.catalogue and ticketscloud.refunds. The
-- guides: README.md, docs/client.md (options, errors, lists) and docs/orders.md.
-- @module ticketscloud
-- @usage
-- local tc = require "ticketscloud"
-- local client = assert(tc.new{ key = os.getenv("TC_KEY") })
-- for event in client:events{ status = "PUBLIC" } do print(event.id, event.name) end
-- local order = assert(client:create_order{ event = EVENT, random = { [SET] = 1 } })
-- assert(order:add_tickets{ SEAT_TICKET })
-- assert(order:finish())
-- client:close()

local core = require "ticketscloud.core"
local answers = require "ticketscloud.answers"
local rest = require "ticketscloud.rest"
local orders = require "ticketscloud.order"
local pages = require "ticketscloud.pages"
local catalogue = require "ticketscloud.catalogue"
local refunds = require "ticketscloud.refunds"
local time = require "ticketscloud.time"

local error = error
local ipairs = ipairs
local next = next
local pairs = pairs
local os_time = os.time
local random = math.random
local setmetatable = setmetatable
local tostring = tostring
local type = type

local core_error = core.error
local now = core.now
local check_arg = core.check_arg
local check_field = core.check_field
local fail = core.fail
local scrub = core.scrub -- the key out of every message a server echoed it into
local wrap = orders.wrap

local _M = { _VERSION = core._VERSION }
local mt = { __index = _M, __name = "ticketscloud.Client" }

_M.money = core.money -- tc.money.parse / format / add, in money.c

--- The error of every `nil, err` result: a table with the errors' metatable, made in the C
-- core (src/errors.c) or by @{error}. `tostring(err)` reads
-- `ticketscloud: KIND error (STATUS): MESSAGE; MESSAGE` (a `{ code =, msg = }` message shows
-- its `msg`), e.g. `ticketscloud: api error (400): Event 5d7134962110d30a34e9ffff not found`.
-- The API key never appears in it: wherever a server echoed it (a key of 8 bytes or more) it
-- is replaced with `<key>`.
--
-- The kinds:
--
-- * `invalid`: refused before anything was sent, so nothing was: an option, an id that is not
--   24 hexadecimal digits, a control character in a string, a filter key or value the API
--   does not know, a change of a done or cancelled order; also a closed client, stream or
--   transport, or a client used in a child process after `fork()`.
-- * `auth`: the key was refused (HTTP 401, 403; gRPC UNAUTHENTICATED, PERMISSION_DENIED).
-- * `not_found`: the item does not exist (HTTP 404; gRPC NOT_FOUND; @{Client:find_created}
--   when no order carries the tag).
-- * `conflict`: another change of the order is in flight (HTTP 409; the order object retries
--   it first, then sets `attempts`), or a second call on one order while one runs.
-- * `api`: the service refused the request (its `errors` list or `reason` in `messages`; any
--   other gRPC status), or an answer that is not what was asked for: not the expected JSON, an
--   id that is not an ObjectId, another order, a page that makes no progress, a redirect
--   (never followed), a check after an order change that failed (`missing`, `sets`), a
--   promocode not applied (status 200).
-- * `transport`: no connection, TLS failure, the connection lost, an answer too large, a
--   malformed gRPC message (gRPC UNAVAILABLE).
-- * `timeout`: no answer within `timeout`, a walk of a list past `list_timeout`, a catalogue
--   stream past its deadline (gRPC DEADLINE_EXCEEDED).
-- * `expired`: the order has expired (a 400 saying so, or refused locally: its status is
--   `expired` or its `expired_after` is past).
-- * `unknown`: the answer to a creation or a change was lost and the client could not learn
--   before the deadline whether the service applied it (`request_id` to look the creation up
--   with @{Client:find_created}; `order` to `refresh()`); docs/reliability.md. Also
--   @{Client:find_created} finding two untagged orders that hold what the creation asked for.
-- @table Error
-- @tfield string kind one of the kinds above
-- @tfield[opt] number status the HTTP status, or the gRPC status code; none for an error of
--   this side
-- @tfield table messages the messages: strings, or the service's `{ code =, msg = }` objects
-- @tfield[opt] string code the gRPC status name (`"UNAUTHENTICATED"`), catalogue errors only
-- @tfield[opt] boolean sent for REST `transport` and `timeout` errors: `false` when no byte
--   of the request left this machine (sending it again cannot do anything twice), `true` when
--   the service may have received it. Always `true` with the nginx transport.
-- @tfield[opt] ticketscloud.order.Order order the order: on every error of an order's calls,
--   of @{ticketscloud.flows.mixed_order} once it made one, and of @{Client:create_order} and
--   @{Client:patch_order} when the checks of the answer failed (a ticket asked for not held)
-- @tfield[opt] table missing the ticket ids asked for but not held, after an order change
-- @tfield[opt] table sets the sets whose counts differ after a change:
--   `sets[SET] = { wanted = n, held = n }`
-- @tfield[opt] number attempts the attempts made, on a `conflict` after the retries ran out
-- @tfield[opt] string request_id the creation's tag, on a failure of @{Client:create_order}
--   that brought no order back after a request was sent
-- @tfield[opt] number since with `event`, the window @{Client:find_created} needs, on an
--   `unknown` creation
-- @tfield[opt] string event see `since`
-- @tfield[opt] boolean cancelled whether @{ticketscloud.flows.mixed_order} cancelled the
--   order after a failed step
-- @usage
-- local order, err = client:create_order{ event = EVENT, random = { [SET] = 2 } }
-- if not order and err.kind == "unknown" then
--     -- the answer was lost: the order is looked up by its tag
--     order, err = client:find_created(err.request_id, { event = err.event, since = err.since })
-- end
-- if not order then print(err.kind, err.status, err.messages[1], tostring(err)) end

--- Makes `t` an @{Error}: gives it the errors' metatable (its `tostring`) and an empty
-- `messages` list when it has none. For code that makes its own errors, such as a
-- transport (@{options|options.transport}), so that they read as the client's do.
-- @function error
-- @tparam table t the error's fields; `t.kind` a string
-- @treturn Error `t` itself
-- @raise when `t` is not a table or `t.kind` is not a string
-- @usage
-- local err = tc.error{ kind = "transport", messages = { "no route to the API" } }
-- print(err)   --> ticketscloud: transport error: no route to the API
_M.error = core.error

--- JSON `null` in REST answers (the NULL light userdata, equal to `cjson.null`): a field that
-- is `null` in the service's answer is `tc.null` in the decoded table, not `nil`.
-- @field null
_M.null = rest.null

--- The two forms of a time: @{ticketscloud.time} (`tc.time.parse`, `tc.time.format`).
-- @field time
_M.time = time

local DEFAULT_RETRY = { attempts = 6, base = 0.1, max = 2 }
-- Seconds a change or a creation may spend on retries, well inside an
-- order's lifetime (15 minutes).
local DEFAULT_DEADLINE = 60
-- The key of vendor_data.raw that tags a creation (docs/reliability.md).
local TAG = "tc_request_id"
-- How far the clocks of this machine and the service may disagree when a
-- creation is looked up by its time, before an answer told the difference;
-- and the margin around the creation's time once it is known.
local CLOCK_SKEW = 300
local CLOCK_MARGIN = 30

-- The catalogue methods (gRPC): client:events{...}, client:seats{...}, ...
-- and the refund requests: client:create_refund{...}, client:refund(id), ...
for _, module in ipairs{ catalogue, refunds } do
    for name, fn in pairs(module.methods) do _M[name] = fn end
end

--- The options of @{new}. Every one but `key` is optional. A field of the wrong type raises;
-- a value out of its limits makes @{new} return `nil, err` (kind `"invalid"`). The rules of
-- `key`, `api`, `simple`, `timeout`, `language`, `ca_file`, `insecure`, `proxy` and
-- `user_agent` are the C core's (src/options.c), the same for REST and gRPC.
--
-- Loopback is `127.0.0.0/8`, `::1` and `localhost` written in lower case. Plaintext (an
-- `http://` URL, or `insecure = true`) is allowed to loopback only, unless `insecure = true`.
-- TLS is always verified; redirects are never followed.
-- @table options
-- @tfield string key the API key, required: 1 to 256 printable ASCII characters without
--   spaces. It is kept in C memory for REST and in `client.options.key` for the gRPC channel,
--   and never appears in an error, a trace or `tostring(client)`.
-- @tfield[opt="https://ticketscloud.com"] string api the REST base URL: `http://` or
--   `https://`, with a host, without credentials, query or fragment.
-- @tfield[opt="simple.ticketscloud.com:443"] string simple the tc-simple gRPC target:
--   `"host:port"` or `"https://host:port"` (TLS; plaintext with `insecure = true`), or
--   `"http://host:port"` (plaintext), as tc-sandbox's ready line prints it. Without a port,
--   443 for TLS and 80 for plaintext.
-- @tfield[opt=10] number timeout seconds each REST request may take, in (0, 86400]; for a
--   catalogue stream, the whole listing.
-- @tfield[opt] number list_timeout seconds a walk of a REST list (@{Client:orders},
--   @{Client:refunds}, the scan behind @{Client:order}) may spend fetching pages, in
--   (0, 86400]; anything else, of any type, is `invalid`. Default: 6 × `timeout`.
-- @tfield[opt="ru"] string language `preferred-language` of gRPC and `Accept-Language` of REST:
--   1 to 35 printable ASCII characters.
-- @tfield[opt] string ca_file a PEM file of the CAs to trust instead of the system store; it
--   must be readable.
-- @tfield[opt=false] boolean insecure `true` allows plaintext to hosts other than loopback,
--   and makes a bare `simple = "host:port"` plaintext.
-- @tfield[opt] string proxy an `http://` or `https://` proxy URL (credentials may be in it; an
--   error never quotes it). REST goes through it, and the gRPC channel too (`CONNECT`), which
--   can use `http://` proxies only: with an `https://` one, catalogue calls fail with kind
--   `invalid`. Without it both go direct: `http_proxy`, `https_proxy`, `ALL_PROXY` and
--   `grpc_proxy` are ignored.
-- @tfield[opt] string user_agent the application's name, 1 to 64 printable ASCII characters,
--   put in front of the module's: `"shop/2.1 lua-ticketscloud/0.1.0"` is the REST
--   `User-Agent` and the gRPC primary user agent.
-- @tfield[opt] table retry the retries of order creations and changes: `attempts` (an integer
--   >= 1, default 6) in all, and the pause before each retry, `base * 2^(attempt - 1)` seconds
--   (`base` >= 0, default 0.1) but at most `max` (>= 0, default 2), of which the second half
--   is random. Missing fields take their defaults. See @{Client:retry_pause}.
-- @tfield[opt=60] number deadline seconds a creation or a change may spend on its retries, in
--   (0, 86400]; a call's `opts.deadline` overrides it.
-- @tfield[opt] function sleep `sleep(seconds)`, called to pause between retries. Default: a
--   blocking sleep of the C core; `ngx.sleep` in nginx, which yields.
-- @tfield[opt] function trace `trace(method, path, body, status, seconds)`, called after each
--   REST request (`body` the JSON text or nil, `status` nil when no answer came) and once for
--   each catalogue stream when it is over (`"GRPC"`, `"/v3.Simple/Seats"`, nil, the gRPC
--   status code: 0 at its end, nil for a failure on this side or a `close()` before the end).
--   `seconds` is how long it took (a monotonic clock). It never sees the key; an error it
--   raises is raised from the call that traced.
-- @tfield[opt] table transport an object that sends the REST requests instead of libcurl:
--   `transport:request(method, path, body, opts)` returning `status, body` or `nil, err`,
--   and optionally `transport:close()`. @{ticketscloud.nginx.transport} makes one. `api`,
--   `ca_file`, `insecure`, `proxy` and `user_agent` then do not apply to REST.
-- @usage
-- local client = assert(tc.new{
--     key = os.getenv("TC_KEY"),
--     timeout = 5, list_timeout = 30, language = "en", user_agent = "shop/2.1",
--     retry = { attempts = 4, base = 0.2, max = 1 }, deadline = 20,
--     trace = function(method, path, body, status, seconds)
--         print(("%s %s -> %s in %.3f s"):format(method, path, tostring(status), seconds))
--     end,
-- })

--- Makes a client. Nothing is opened yet: the REST connection and the gRPC channel are made
-- by the first call that needs them.
-- @tparam options opts the client's options; `key` is required
-- @treturn Client the client
-- @return[2] nil
-- @treturn[2] Error an error of kind `"invalid"` for a value out of its limits (the message
--   names the option, e.g. `timeout: a number of seconds in (0, 86400] expected`)
-- @raise when `opts` is not a table, a field has the wrong type
--   (`bad field 'timeout' to 'new' (number expected, got string)`), or `transport` has no
--   `request` method
-- @usage
-- local tc = require "ticketscloud"
-- local client = assert(tc.new{ key = os.getenv("TC_KEY") })
--
-- -- against tc-sandbox (ticketscloud.sandbox): plaintext to loopback
-- local sb = assert(require("ticketscloud.sandbox").start())
-- local local_client = assert(tc.new{ key = sb.key, api = sb.api, simple = sb.simple })
--
-- print(tc.new{ key = KEY, timeout = 0 })
-- --> nil  ticketscloud: invalid error: timeout: a number of seconds in (0, 86400] expected
function _M.new(opts)
    check_arg(opts, "table", "new", 1)
    local retry = check_field(opts, "retry", "table?", "new") or {}
    local sleep = check_field(opts, "sleep", "function?", "new") or core.sleep
    local trace = check_field(opts, "trace", "function?", "new")
    local deadline = check_field(opts, "deadline", "number?", "new") or DEFAULT_DEADLINE
    local transport = opts.transport
    if transport ~= nil and (type(transport) ~= "table" and type(transport) ~= "userdata"
                             or type(transport.request) ~= "function") then
        error("bad field 'transport' to 'new' (an object with a request method expected)", 2)
    end

    -- key, api, simple, timeout, language, ca_file, insecure: options.c
    local options, err = core.options(opts)
    if not options then return nil, err end
    -- How long a walk of a list may spend fetching pages (pages.lua).
    local list_timeout = opts.list_timeout
    if list_timeout == nil then
        list_timeout = pages.LIST_TIMEOUT_FACTOR * options.timeout
    else
        list_timeout, err = pages.check_list_timeout(list_timeout)
        if not list_timeout then return nil, err end
    end
    local r = {}
    for k, default in pairs(DEFAULT_RETRY) do
        local v = retry[k]
        if v == nil then v = default end
        if k == "attempts" then
            -- An integer: retry_pause counts the attempts up to it exactly.
            if type(v) ~= "number" or v < 1 or v % 1 ~= 0 then
                return fail("invalid", "retry.attempts: an integer >= 1 expected")
            end
        elseif type(v) ~= "number" or v ~= v or v < 0 then
            return fail("invalid", "retry." .. k .. ": a number of seconds >= 0 expected")
        end
        r[k] = v
    end
    deadline, err = core.check_timeout(deadline, "deadline") -- options.c's rule
    if not deadline then return nil, err end
    local http = transport
    if not http then
        http, err = core.http(options)
        if not http then return nil, err end
    end
    local self = { options = options, http = http, retry = r, sleep = sleep, trace = trace,
                   deadline_seconds = deadline, list_timeout = list_timeout }
    -- The address is taken before the metatable hides it behind __tostring.
    self.name = "ticketscloud.Client: " .. tostring(self):match("0x%x+")
    return setmetatable(self, mt)
end

--- A client of the API, made by @{new}. Its fields `options` (the checked options, with the
-- key: keep it private) and the others are the module's; use the methods.
--
-- `tostring(client)` is `ticketscloud.Client: 0x...`. A client belongs to the process that
-- made it: after `fork()` its calls in the child return `nil, err` (kind `"invalid"`). Its
-- methods are listed here with the catalogue (tc-simple gRPC) and the refund requests.
-- @type Client

--- Closes the REST connection (or the transport) and the gRPC channel with its open streams.
-- Calls after it return `nil, err` (kind `"invalid"`, message `"closed"`). Idempotent; it is
-- also the client's `__gc` and, on Lua 5.4, its `__close`.
-- @function Client:close
-- @treturn boolean `true`
-- @usage
-- client:close()
-- print(client:order(ORDER_ID))   --> nil  ticketscloud: invalid error: closed
-- do local c <close> = assert(tc.new{ key = KEY }) end   -- Lua 5.4: closed at the block's end
function _M.close(self)
    self.closed = true
    if self.http and self.http.close then self.http:close() end
    catalogue.close(self)
    return true
end

mt.__gc = function(self) self:close() end -- Lua 5.4 (LuaJIT: the userdata collect themselves)
mt.__close = mt.__gc
mt.__tostring = function(self) return self.name end

--- Runs a request built by @{ticketscloud.rest} and returns the decoded answer: the whole
-- JSON document (`data`, `refs`, `pagination`, ...). Every method of the client sends
-- through it: it calls `trace` and keeps the key out of errors. A non-2xx answer is an error
-- of the kind its status says (400 `api`, 401 and 403 `auth`, 404 `not_found`, 409
-- `conflict`, other `api`) with the service's messages; a 2xx answer that is not a JSON
-- object with `data` (or whose `data.id` is not an ObjectId) is kind `"api"`.
-- @function Client:send
-- @tparam table req `{ method =, path =, body = }`, a request of @{ticketscloud.rest}
-- @tparam[opt] table opts `headers = { [NAME] = value }` and `timeout = seconds` for this
--   request
-- @treturn table the JSON document; `true` for a request whose success has no body
--   (@{ticketscloud.rest.mosbilet_user_data})
-- @return[2] nil
-- @treturn[2] Error err
-- @raise when `req` is not a table or `opts` is neither nil nor a table
-- @usage
-- local rest = require "ticketscloud.rest"
-- local doc = assert(client:send(assert(rest.get_order(ORDER_ID))))
-- print(doc.data.status, doc.refs.events[doc.data.event].title.text)
function _M.send(self, req, opts)
    check_arg(req, "table", "send", 1)
    check_arg(opts, "table?", "send", 2)
    local trace = self.trace
    local started = trace and now()
    local status, body = self.http:request(req.method, req.path, req.body, opts)
    if trace then trace(req.method, req.path, req.body, status, now() - started) end
    local key = self.options.key
    if not status then return nil, scrub(body, key) end
    local doc, err = answers.decode(status, body, req.no_data)
    if not doc then return nil, scrub(err, key) end
    return doc
end

--- When a call with these options must stop retrying: `opts.deadline`, else the client's
-- `deadline` option, in seconds from now, on the C core's monotonic clock (`core.now()`).
-- An order uses it for its retries.
-- @function Client:deadline
-- @tparam[opt] table opts a call's options; `opts.deadline` in seconds
-- @treturn number a time of the monotonic clock
-- @raise when `opts` is neither nil nor a table
-- @usage
-- local deadline = client:deadline{ deadline = 5 }   -- retries end 5 s from now
function _M.deadline(self, opts)
    check_arg(opts, "table?", "deadline", 1)
    return core.now() + (opts and opts.deadline or self.deadline_seconds)
end

--- Waits before the next attempt of a call. The pause is `retry.base * 2^(attempt - 1)`
-- seconds, at most `retry.max`, of which the second half is random, so that clients that
-- collided do not retry in lockstep; the `sleep` option waits.
-- @function Client:retry_pause
-- @tparam number attempt the attempt that just failed, from 1
-- @tparam[opt] number deadline a time of @{Client:deadline}; no pause ends past it
-- @treturn boolean `true` once it has waited; `false`, at once, when `attempt` was the last
--   one `retry.attempts` allows or the pause would end past `deadline`
-- @raise when `attempt` is not a number or `deadline` neither nil nor a number
-- @usage
-- -- a request sent again after a 409, within the client's deadline option
-- local deadline = client:deadline()
-- local attempt = 1
-- local doc, err = client:send(req)
-- while not doc and err.kind == "conflict" and client:retry_pause(attempt, deadline) do
--     attempt = attempt + 1
--     doc, err = client:send(req)
-- end
function _M.retry_pause(self, attempt, deadline)
    check_arg(attempt, "number", "retry_pause", 1)
    check_arg(deadline, "number?", "retry_pause", 2)
    local retry = self.retry
    if attempt >= retry.attempts then return false end
    local pause = retry.base * 2 ^ (attempt - 1)
    if pause > retry.max then pause = retry.max end
    pause = pause / 2 + random() * pause / 2
    if deadline and core.now() + pause > deadline then return false end
    self.sleep(pause)
    return true
end

-- The creation's time window for find_created: since shortly before now,
-- in the service's clock when an earlier answer told how far it is from
-- this machine's.
local function creation_since(self)
    if self.clock_offset then return os_time() + self.clock_offset - CLOCK_MARGIN end
    return os_time() - CLOCK_SKEW
end

-- vendor_data with the creation's tag added to raw; the caller's table is
-- not changed (a vendor_data of the wrong shape is left for rest.create_order
-- to refuse).
local function tagged(vendor_data, request_id)
    if vendor_data ~= nil and (type(vendor_data) ~= "table" or
                               (vendor_data.raw ~= nil and type(vendor_data.raw) ~= "table")) then
        return vendor_data
    end
    local out, raw = {}, {}
    for k, v in pairs(vendor_data or {}) do out[k] = v end
    for k, v in pairs(out.raw or {}) do raw[k] = v end
    raw[TAG] = request_id
    out.raw = raw
    return out
end

--- Creates an order: `POST /v2/resources/orders` (spec §3.3). The answer is checked like every
-- change of an order (@{ticketscloud.order}): an order that does not hold every ticket asked
-- for still exists, and comes back as `nil, err` with `err.order` set to it.
--
-- Exactly once: the order is tagged with `request_id` (given, or 32 random hexadecimal digits)
-- in `vendor_data.raw.tc_request_id`, the caller's own `vendor_data` kept. When an attempt's
-- outcome is unknown (no answer, a 5xx), the order is looked up by its tag before any new
-- attempt: an order that exists is returned, a new attempt is made only when none does, and
-- when that cannot be learnt before the deadline the result is `nil, err` with kind
-- `"unknown"` and `err.request_id`, to resolve later with @{Client:find_created}
-- (docs/reliability.md). A 409 is retried as for a change (the `retry` option).
--
-- Refused before sending (kind `"invalid"`): `tickets` and `random` together (spec §5.4);
-- none of `event`, `tickets` and `random`; an `event` or a ticket that is not an ObjectId, a
-- count that is not a positive integer; a `request_id` that is not 1 to 64 letters, digits,
-- `-`, `_` or `.`; `settings` other than `customer` and `send_tickets` (a boolean); a customer
-- as @{ticketscloud.order.Order:set_customer} refuses it; `vendor_data` as
-- @{ticketscloud.order.Order:set_vendor_data} refuses it; `promocodes` that are not a
-- non-empty list of non-empty strings; `all_or_nothing` that is not a boolean; a control
-- character in any string.
-- @function Client:create_order
-- @tparam table args what to create; one of `event`, `tickets` and `random` is required
-- @tparam[opt] string args.event the event's id; an empty order of it when alone
-- @tparam[opt] table args.tickets seated tickets by id, `{ TICKET, ... }`: the event follows
--   from them
-- @tparam[opt] table args.random unseated tickets, a count per set: `{ [SET] = n }`
-- @tparam[opt] boolean args.all_or_nothing all the tickets or none (spec §5.4)
-- @tparam[opt] table args.settings `customer` (`{ name =, email =, phone =, lang = }`) and
--   `send_tickets` (a boolean)
-- @tparam[opt] table args.vendor_data `{ order_id =, raw = { ... } }`
-- @tparam[opt] table args.promocodes `{ "CODE", ... }`
-- @tparam[opt] string args.request_id the creation's tag (default: random)
-- @tparam[opt] table opts `headers`, `timeout` (of each request), `deadline` (seconds for
--   the retries) and `list_timeout` (of a lookup by the tag)
-- @treturn ticketscloud.order.Order the order
-- @return[2] nil
-- @treturn[2] Error err: `err.order` when an order came back that failed the checks (a ticket
--   asked for not held); `err.request_id` when none came back after a request was sent
-- @raise when `args` is not a table, `args.request_id` neither nil nor a string, or `opts`
--   neither nil nor a table
-- @usage
-- local order = assert(client:create_order{ event = EVENT, random = { [FAN_SET] = 1 } })
-- local seated = assert(client:create_order{ tickets = { SEAT_TICKET },
--     settings = { customer = { name = "Ivan", email = "ivan@example.com" } },
--     vendor_data = { order_id = "shop-1042" }, request_id = "shop-1042" })
-- print(client:create_order{ tickets = { SEAT_TICKET }, random = { [FAN_SET] = 1 } })
-- --> nil  ticketscloud: invalid error: tickets and random cannot be sent together (spec §5.4)
function _M.create_order(self, args, opts)
    check_arg(args, "table", "create_order", 1)
    check_arg(opts, "table?", "create_order", 2)
    local request_id = check_field(args, "request_id", "string?", "create_order")
    if request_id == nil then
        request_id = core.request_id()
    elseif #request_id > 64 or not request_id:find("^[%w%-_.]+$") then
        return fail("invalid", "request_id: 1 to 64 letters, digits, '-', '_' or '.' expected")
    end
    local body = {}
    for k, v in pairs(args) do body[k] = v end
    body.request_id = nil
    body.vendor_data = tagged(args.vendor_data, request_id)
    local req, err = rest.create_order(body)
    if not req then return nil, err end

    local want = { tickets = args.tickets, counts = args.random }
    local where = { event = args.event, since = creation_since(self) }
    if self.keeps_tag ~= true then
        -- Not known yet that the service keeps vendor_data given with a
        -- POST: an untagged order holding exactly these tickets counts too.
        where.tickets, where.random = args.tickets, args.random or (args.tickets == nil and {})
    end
    local deadline = self:deadline(opts)
    local unknown = false -- whether an attempt may have made an order that was not found
    local attempt = 0
    repeat
        attempt = attempt + 1
        local doc
        doc, err = self:send(req, opts)
        if doc then doc, err = answers.order(doc) end
        if doc then
            local created = type(doc.data.created_at) == "string"
                            and time.parse(doc.data.created_at)
            if created then self.clock_offset = created - os_time() end
            local vd = doc.data.vendor_data
            self.keeps_tag = type(vd) == "table" and type(vd.raw) == "table"
                             and vd.raw[TAG] == request_id
            return orders.verify(wrap(self, doc), doc, want)
        end
        if not answers.retryable(err) then break end
        if answers.maybe_applied(err) then
            -- Settled before anything is sent again: the order exists, or
            -- none does, or that cannot be told (then nothing is sent).
            local found, lookup = self:find_created(request_id, where, opts)
            if found then return orders.verify(found, { data = found, refs = found.refs }, want) end
            if lookup.kind ~= "not_found" then
                unknown, err = true, lookup
                break
            end
        end
    until not self:retry_pause(attempt, deadline)
    if unknown then
        err = core_error{ kind = "unknown", status = err.status, since = where.since,
                          event = args.event, messages = {
            "no answer: the order may exist; look it up with client:find_created(err.request_id)",
            tostring(err) } }
    end
    err.request_id = request_id
    return nil, err
end

-- Whether order holds exactly what a creation asked for: the ticket ids,
-- or the count in each set (nothing else either way).
local function holds_exactly(order, want)
    local tickets = type(order.tickets) == "table" and order.tickets or {}
    if want.tickets then
        local asked = {}
        for _, id in ipairs(want.tickets) do asked[id] = true end
        for _, t in ipairs(tickets) do
            if not asked[t.id] then return false end
            asked[t.id] = nil
        end
        return next(asked) == nil
    end
    local counts = {}
    for _, t in ipairs(tickets) do counts[t.set] = (counts[t.set] or 0) + 1 end
    for set, n in pairs(want.random or {}) do
        if counts[set] ~= n then return false end
        counts[set] = nil
    end
    return next(counts) == nil
end

--- Finds the order that @{Client:create_order} tagged with `request_id`: after an `unknown`
-- creation, its `err.request_id`, `err.event` and `err.since`. It reads the list of the
-- event's orders (every event's without one) created since `since`, retrying a read that
-- fails on the network until the deadline.
--
-- With `tickets` or `random` (what the creation asked for), an order without any tag that
-- holds exactly that is taken for it when no order has the tag: for a service that does not
-- keep `vendor_data` given with a POST. Two such orders are kind `"unknown"`: the client
-- cannot tell which is its own.
-- @function Client:find_created
-- @tparam string request_id the creation's tag
-- @tparam[opt] table where narrows the search
-- @tparam[opt] string where.event the event's id
-- @tparam[opt] number where.since Unix seconds the creation was not before (default: a day
--   ago)
-- @tparam[opt] table where.tickets the ticket ids the creation asked for
-- @tparam[opt] table where.random the counts per set the creation asked for
-- @tparam[opt] table opts `headers`, `timeout`, `list_timeout`, `deadline`
-- @treturn ticketscloud.order.Order the order
-- @return[2] nil
-- @treturn[2] Error err: kind `"not_found"` when no order carries the tag
-- @raise when `request_id` is not a string, or `where` or `opts` neither nil nor a table
-- @usage
-- local order, err = client:find_created(err.request_id, { event = err.event,
--                                                          since = err.since })
-- if not order and err.kind == "not_found" then print("no order was made") end
function _M.find_created(self, request_id, where, opts)
    check_arg(request_id, "string", "find_created", 1)
    check_arg(where, "table?", "find_created", 2)
    check_arg(opts, "table?", "find_created", 3)
    where = where or {}
    local untagged = (where.tickets or where.random) and where or nil
    local filter = { page_size = rest.MAX_PAGE_SIZE,
                     created_at = { where.since or os_time() - 86400, os_time() + CLOCK_SKEW },
                     events = where.event and { where.event } or nil }
    local deadline = self:deadline(opts)
    local attempt, err = 0
    repeat
        attempt = attempt + 1
        local list
        list, err = self:orders(filter, opts)
        if not list then return nil, err end
        local alike = {} -- orders without a tag that hold what was asked for
        for order in list do
            local vd = order.vendor_data
            local raw = type(vd) == "table" and type(vd.raw) == "table" and vd.raw or {}
            if raw[TAG] == request_id then
                list:close()
                return order
            end
            if untagged and raw[TAG] == nil and holds_exactly(order, untagged) then
                alike[#alike + 1] = order
            end
        end
        err = list:error()
        if not err then
            if #alike == 1 then return alike[1] end
            if #alike > 1 then
                return fail("unknown", ("%d orders without a tag hold what request %s asked for")
                            :format(#alike, request_id))
            end
            return fail("not_found", "no order was created with request id " .. request_id, 404)
        end
    until not answers.retryable(err) or not self:retry_pause(attempt, deadline)
    return nil, err
end

-- The order list: its stream makes an order object of each item.
local ORDERS = pages.list{
    name = "ticketscloud.OrderStream", noun = "order", what = "an order", missing = "Order",
    query = rest.orders_query, request = rest.list_orders, get = rest.get_order,
    make = function(client, item, refs) return wrap(client, { data = item, refs = refs }) end,
}

--- Looks for an order in the list of orders, page by page (@{Client:orders}' walk, bounded by
-- `list_timeout`): what @{Client:order} falls back to when the service does not serve
-- `GET /v2/resources/orders/:id`. The id is found in either case of its hexadecimal digits.
-- @function Client:find_order
-- @tparam string id the order's id
-- @tparam[opt] table filter narrows the walk: the filter of @{Client:orders}
--   (`page_size` 200 unless given)
-- @tparam[opt] table opts `headers`, `timeout`, `list_timeout`
-- @treturn ticketscloud.order.Order the order
-- @return[2] nil
-- @treturn[2] Error err: kind `"not_found"` (`Order <id> not found`) when the walk ended
--   without it
-- @raise when `id` is not a string, or `filter` or `opts` neither nil nor a table
-- @usage
-- local order = assert(client:find_order(ORDER_ID, { events = { EVENT } }))
function _M.find_order(self, id, filter, opts)
    check_arg(id, "string", "find_order", 1)
    check_arg(filter, "table?", "find_order", 2)
    check_arg(opts, "table?", "find_order", 3)
    local doc, err = pages.find(self, ORDERS, id, filter, opts)
    if not doc then return nil, err end
    return wrap(self, doc)
end

--- Reads the service's document of an order, `{ data = order, refs = refs }` as an answer
-- holds it, the way @{Client:order} reads it: `GET /v2/resources/orders/:id`, else the list
-- (of `event`'s orders only, when given). An order reads itself again with it (docs/client.md,
-- "The interface of the order object").
-- @function Client:read_order
-- @tparam string id the order's id
-- @tparam[opt] string event the order's event, to narrow the list
-- @tparam[opt] table opts `headers`, `timeout`, `list_timeout`
-- @treturn table the document; `data` is checked to be the order asked about
-- @return[2] nil
-- @treturn[2] Error err
-- @raise when `id` is not a string or `opts` neither nil nor a table
-- @usage
-- local doc = assert(client:read_order(ORDER_ID, EVENT))
-- print(doc.data.status, #doc.data.tickets)
function _M.read_order(self, id, event, opts)
    check_arg(id, "string", "read_order", 1)
    check_arg(opts, "table?", "read_order", 3)
    local doc, err = pages.read(self, ORDERS, id, event and { events = { event } } or nil, opts)
    if not doc then return nil, err end
    return answers.order(doc, id)
end

--- Reads an order: `GET /v2/resources/orders/:id`. When the service does not serve that route
-- (a 404 that is not `Order <id> not found`, or a 405) the list is scanned instead, only the
-- event's orders when `opts.event` is given.
-- @function Client:order
-- @tparam string id the order's id
-- @tparam[opt] table opts `event` (the order's event), `headers`, `timeout`, `list_timeout`
-- @treturn ticketscloud.order.Order the order
-- @return[2] nil
-- @treturn[2] Error err: kind `"not_found"` when there is no such order
-- @raise when `id` is not a string or `opts` neither nil nor a table
-- @usage
-- local order = assert(client:order(ORDER_ID, { event = EVENT }))
-- print(order.status, order.values.full)
function _M.order(self, id, opts)
    check_arg(id, "string", "order", 1)
    check_arg(opts, "table?", "order", 2)
    local doc, err = self:read_order(id, opts and opts.event, opts)
    if not doc then return nil, err end
    return wrap(self, doc)
end

--- Sends a raw `PATCH /v2/resources/orders/:id` with any body (spec §3.4): no retry and no
-- refusal of a finished order; only the id, a non-empty body and its JSON are checked
-- before sending. The order helpers (@{ticketscloud.order}) compute the body for you.
-- @function Client:patch_order
-- @tparam string id the order's id
-- @tparam table body the PATCH body, a whole desired state (spec §5)
-- @tparam[opt] table opts `headers`, `timeout`
-- @treturn ticketscloud.order.Order the order as the answer holds it
-- @return[2] nil
-- @treturn[2] Error err; a promocode the service did not apply (kind `"api"`, status 200) or
--   money that does not add up give `err.order`
-- @raise when `id` is not a string, `body` not a table, or `opts` neither nil nor a table
-- @usage
-- local order = assert(client:patch_order(ORDER_ID, { tickets = { SEAT_TICKET } }))
function _M.patch_order(self, id, body, opts)
    check_arg(id, "string", "patch_order", 1)
    check_arg(body, "table", "patch_order", 2)
    check_arg(opts, "table?", "patch_order", 3)
    local req, err = rest.patch_order(id, body)
    if not req then return nil, err end
    local doc
    doc, err = self:send(req, opts)
    if doc then doc, err = answers.order(doc, id) end
    if not doc then return nil, err end
    return orders.verify(wrap(self, doc), doc)
end

--- Checks a promocode: `POST /v2/services/promocodes/check` (spec §3.9).
-- @function Client:check_promocode
-- @tparam table args `{ event = ID, code = "PROMO" }`; `code` a non-empty string
-- @tparam[opt] table opts `headers`, `timeout`
-- @treturn table the answer's data (`discount`, `sets`, `tickets_count`, `lifetime`) with the
--   answer's `refs` in `promo.refs`
-- @return[2] nil
-- @treturn[2] Error err; a code that cannot be applied is kind `"api"` with
--   `messages = { reason }`
-- @raise when `args` is not a table or `opts` neither nil nor a table
-- @usage
-- local promo, err = client:check_promocode{ event = EVENT, code = "SPRING" }
-- if promo then print(promo.discount) else print(err.messages[1]) end
function _M.check_promocode(self, args, opts)
    check_arg(args, "table", "check_promocode", 1)
    check_arg(opts, "table?", "check_promocode", 2)
    local req, err = rest.check_promocode(args)
    if not req then return nil, err end
    local doc
    doc, err = self:send(req, opts)
    if not doc then return nil, err end
    local promo = doc.data
    promo.refs = doc.refs
    return promo
end

--- Lists orders: `GET /v2/resources/orders` (spec §3.6), page by page as the stream is
-- called. A filter key it does not know (a misspelt `statuses =`) is refused with its name,
-- and so is a value it does not know: nothing is sent. The walk is bounded (@{ListStream}).
-- @function Client:orders
-- @tparam[opt] table filter every key optional
-- @tparam[opt] string|table filter.status `executed`, `in_progress`, `done`, `cancelled`,
--   `expired`, one or a list
-- @tparam[opt] string|table filter.events an event id or a list of them
-- @tparam[opt] table filter.created_at `{ from, to }` (or `{ from =, to = }`): Unix seconds or
--   `"YYYY-MM-DDTHH:MM:SS"` (UTC)
-- @tparam[opt] boolean filter.only_with_customer only orders with a customer
-- @tparam[opt=50] integer filter.page_size 1 to 200
-- @tparam[opt] table opts `headers` and `timeout` of each page's request, `list_timeout`
-- @treturn ListStream a stream of order objects (@{ticketscloud.order.Order})
-- @return[2] nil
-- @treturn[2] Error err, kind `"invalid"` (`filter: unknown key statuses (known: ...)`)
-- @raise when `filter` or `opts` is neither nil nor a table
-- @usage
-- local stream = assert(client:orders{ status = { "done" }, events = { EVENT },
--                                      created_at = { os.time() - 86400, os.time() } })
-- for order in stream do print(order.id, order.values.full) end
-- if stream:error() then print(stream:error()) end
-- print(stream.total)   -- the service's count of matching orders
function _M.orders(self, filter, opts)
    check_arg(filter, "table?", "orders", 1)
    check_arg(opts, "table?", "orders", 2)
    return pages.stream(self, ORDERS, filter, opts)
end

return _M
