-- nginx spec: lua-ticketscloud inside a real nginx (Debian's nginx with
-- libnginx-mod-http-lua, on LuaJIT), as a shop would embed it.
--
-- It runs examples/nginx.conf (the configuration docs/openresty.md shows)
-- with examples/nginx_shop.lua: a master that requires the module before it
-- forks two workers, each of which makes its own client on first use. The
-- tests call the shop's locations over HTTP and look at the processes in
-- /proc: the master must run no thread and hold no connection of the module,
-- and both workers must stream over gRPC and order over REST.
--
-- Needs nginx and its Lua module (else the spec is pending), the LuaJIT
-- build of the module in TC_LUAJIT_CPATH (tools/test sets it to
-- build/luajit/?.so) and the sandbox in TC_SANDBOX.
local sandbox = require "ticketscloud.sandbox"
local cjson = require "cjson"
local socket = require "socket"
local helper = require "helpers.nginx"

local EVENT = "5d7134962110d30a34e95b96"  -- Slipknot
local FAN = "5d7135112110d30a34e97e2d"    -- unseated, 5600.00 + 10 %
local A2 = "5d71353b2110d30a34e97e31"     -- seated, 990.00 + 10 %
local SEAT = "5d7134962110d30a34e95cfe"   -- A2, row 2, seat 14
local BAD_KEY = "wrong-key-4b1d0c9e7a2f"
local WORKERS = 2
local POOL_THREADS = 8 -- thread_pool default threads=8 of examples/nginx.conf

local why = helper.missing()
if why then
    describe("lua-ticketscloud in nginx", function()
        pending(why)
    end)
    return
end

local read_file, run = helper.read_file, helper.run
local proc_alive, tasks, children = helper.alive, helper.tasks, helper.children
local free_port = helper.free_port

local TCP_STATES = { ["01"] = "ESTABLISHED", ["0A"] = "LISTEN" }

-- The TCP sockets a process holds: { state =, port = local port, peer = remote port }.
local function tcp_sockets(pid)
    local inodes = {}
    for inode in run("readlink /proc/" .. pid .. "/fd/* 2>/dev/null"):gmatch("socket:%[(%d+)%]") do
        inodes[inode] = true
    end
    local found = {}
    for _, file in ipairs{ "tcp", "tcp6" } do
        local f = io.open(("/proc/%d/net/%s"):format(pid, file), "r")
        if f then
            for line in f:lines() do
                local lport, rport, st, inode = line:match(
                    "^%s*%d+: %x+:(%x+) %x+:(%x+) (%x%x) %S+ %S+ %S+ +%d+ +%d+ (%d+)")
                if inode and inodes[inode] then
                    found[#found + 1] = { state = TCP_STATES[st] or st, port = tonumber(lport, 16),
                                          peer = tonumber(rport, 16) }
                end
            end
            f:close()
        end
    end
    return found
end

local function port_of(url)
    return tonumber(url:match(":(%d+)/?$"))
end

local function shell_quote(s)
    return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- examples/nginx.conf as tools/nginx-conf.lua renders it, with the REST
-- API of the sandbox (plain HTTP on loopback) and the LuaJIT build under
-- test.
local function render_conf(sb, port)
    return run(table.concat({ "lua5.4 tools/nginx-conf.lua --out - --port", port,
                              "--api", shell_quote(sb.api), "--lua-cpath",
                              shell_quote(helper.absolute(os.getenv("TC_LUAJIT_CPATH"))) }, " "))
        .. "\n"
end

-- Starts the example on a free port with the sandbox's environment (edit,
-- if given, changes the configuration first); on failure stops the sandbox
-- and raises.
local function start_or_fail(sb, edit, workers)
    local ok, nginx = pcall(helper.start_or_fail, function(port)
        local conf = render_conf(sb, port)
        if edit then conf = edit(conf) end
        return conf
    end, { workers = workers or WORKERS, env = { TICKETSCLOUD_KEY = sb.key,
                                                 TICKETSCLOUD_API = sb.api,
                                                 TICKETSCLOUD_SIMPLE = sb.simple } })
    if not ok then
        sb:stop()
        error(nginx)
    end
    return nginx
end

---------------------------------------------------------------------------

describe("lua-ticketscloud in nginx (" .. WORKERS .. " workers, LuaJIT)", function()
    local sb, nginx
    local served = {} -- pid -> true: every worker that answered

    local function pid_of(doc)
        assert.is_number(doc.pid)
        served[doc.pid] = true
        return doc.pid
    end

    -- The master: the module's code is mapped, but it runs one thread and
    -- holds no TCP socket but nginx's listening ones.
    local function assert_master_idle()
        local maps = read_file("/proc/" .. nginx.pid .. "/maps")
        assert.truthy(maps:find("/ticketscloud/core.so", 1, true), "the master did not load core.so")
        assert.equal(1, tasks(nginx.pid))
        local sockets = tcp_sockets(nginx.pid)
        assert.is_true(#sockets >= 1)
        for _, s in ipairs(sockets) do
            assert.same({ state = "LISTEN", port = nginx.port, peer = 0 }, s)
        end
    end

    lazy_setup(function()
        sb = assert(sandbox.start{ log = "/dev/null" })
        nginx = start_or_fail(sb)
    end)

    lazy_teardown(function()
        if nginx then
            nginx:stop("TERM", 5)
            nginx:remove()
        end
        if sb then sb:stop() end
    end)

    it("is configured by the file docs/openresty.md shows", function()
        local doc = read_file("docs/openresty.md")
        local block = doc:match("\n```nginx\n(# examples/nginx%.conf.-\n)```\n")
        assert.is_string(block, "docs/openresty.md has no nginx block")
        assert.equal(read_file("examples/nginx.conf"), block)
    end)

    it("loads the module in the master with no thread and no connection", function()
        assert_master_idle()
        assert.equal(WORKERS, #children(nginx.pid))
        for _, w in ipairs(children(nginx.pid)) do
            -- each worker runs its thread pool (worker 0 also gRPC's threads
            -- once its timer has read the events)
            assert.is_true(tasks(w) >= 1 + POOL_THREADS)
        end
    end)

    it("lists a seat from the thread pool in each worker", function()
        local pids = {}
        for _ = 1, 40 do
            local status, doc = nginx:get("/tc/seats?event=" .. EVENT .. "&seat=" .. SEAT)
            assert.equal(200, status)
            pids[pid_of(doc)] = true
            assert.same({ { ticket = SEAT, set = A2, sector = "5a8dd58e6e55b2064c67c144",
                            row = "2", number = "14", status = "VACANT" } }, doc.seats)
            assert.equal(1, doc.count)
            if pids[children(nginx.pid)[1]] and pids[children(nginx.pid)[2]] then break end
        end
        -- Both workers answered, and each now runs gRPC's threads and holds
        -- its own connection to the sandbox: gRPC was started in the worker
        -- (by a thread of its pool), never in the master.
        local workers = children(nginx.pid)
        assert.equal(WORKERS, #workers)
        for _, w in ipairs(workers) do
            assert.is_true(pids[w], "worker " .. w .. " served no catalogue request")
            assert.is_true(tasks(w) > 1 + POOL_THREADS, "worker " .. w .. " runs no gRPC thread")
            local to_sandbox = false
            for _, s in ipairs(tcp_sockets(w)) do
                if s.state == "ESTABLISHED" and s.peer == port_of(sb.simple) then to_sandbox = true end
            end
            assert.is_true(to_sandbox, "worker " .. w .. " has no gRPC connection to the sandbox")
        end
        assert_master_idle()
    end)

    it("serves the events from the cache its timer refreshes", function()
        local status, doc
        local deadline = socket.gettime() + 10
        repeat -- the timer of worker 0 reads them as the worker starts
            status, doc = nginx:get("/tc/events")
            if status == 503 then socket.sleep(0.05) end
        until status ~= 503 or socket.gettime() > deadline
        assert.equal(200, status)
        pid_of(doc)
        assert.is_true(doc.age >= 0 and doc.age < 60)
        assert.equal(7, #doc.events)
        local event
        for _, e in ipairs(doc.events) do
            if e.id == EVENT then event = e end
        end
        assert.same({ "Slipknot", "PUBLIC" }, { event.name, event.status })
        assert.equal(3, #event.sets)
        -- the event's own vacant count (tickets_amount_vacant), and each set's
        assert.is_true(event.tickets_amount_vacant > 0)
        local vacant = 0
        for _, set in ipairs(event.sets) do vacant = vacant + set.amount_vacant end
        assert.equal(event.tickets_amount_vacant, vacant)
        assert.is_number(event.start)
        -- every worker answers from the one cache
        for _ = 1, 6 do
            local _, again = nginx:get("/tc/events")
            assert.equal(doc.refreshed_at, again.refreshed_at)
        end
    end)

    it("stops a listing at the limit and goes on serving", function()
        local status, doc = nginx:get("/tc/seats?event=" .. EVENT .. "&set=" .. A2 ..
                                      "&status=VACANT&limit=3")
        assert.equal(200, status)
        pid_of(doc)
        assert.equal(3, #doc.seats)
        for _, seat in ipairs(doc.seats) do
            assert.equal(A2, seat.set)
            assert.equal("VACANT", seat.status)
        end
        for _ = 1, 4 do -- whichever worker it was, it still answers
            status, doc = nginx:get("/tc/seats?event=" .. EVENT .. "&seat=" .. SEAT)
            assert.equal(200, status)
            assert.equal(1, #doc.seats)
        end
    end)

    local function vacant_seats(n)
        local status, doc = nginx:get("/tc/seats?event=" .. EVENT .. "&set=" .. A2 ..
                                      "&status=VACANT&limit=" .. n)
        assert.equal(200, status)
        local ids = {}
        for _, seat in ipairs(doc.seats) do
            if seat.ticket ~= SEAT then ids[#ids + 1] = seat.ticket end
        end
        return ids
    end

    local function seat_status(ticket)
        local status, doc = nginx:get("/tc/seats?event=" .. EVENT .. "&seat=" .. ticket)
        assert.equal(200, status)
        assert.equal(1, #doc.seats)
        return doc.seats[1].status
    end

    -- A done mixed order of one seat and one fan-zone ticket.
    local function assert_done(doc, seat)
        local order = doc.order
        assert.is_table(order, doc.error and doc.error.message)
        assert.equal("done", order.status)
        assert.equal(EVENT, order.event)
        assert.equal("7249.00", order.values.full)
        assert.equal(2, #order.tickets)
        local by_set = {}
        for _, t in ipairs(order.tickets) do
            by_set[t.set] = t
            assert.matches("^%d+$", t.barcode)
        end
        assert.equal(seat, by_set[A2].id)
        assert.equal("1089.00", by_set[A2].full)
        assert.is_table(by_set[A2].seat)
        assert.equal("6160.00", by_set[FAN].full)
    end

    it("runs flows.mixed_order seats first, and the seat is sold", function()
        assert.equal("VACANT", seat_status(SEAT))
        local status, doc = nginx:order{ event = EVENT, seats = { SEAT }, random = { [FAN] = 1 },
                                         first = "seats", finish = true }
        assert.equal(200, status)
        pid_of(doc)
        assert_done(doc, SEAT)
        -- Sent by nginx as subrequests: create, add, finish at least.
        assert.is_true(doc.stats.subrequests >= 3)
        assert.equal(0, doc.stats.pooled)
        assert.equal(0, doc.stats.failures)
        assert.same({ row = "2", number = "14", sector = "5a8dd58e6e55b2064c67c144" },
                    doc.order.tickets[1].seat or doc.order.tickets[2].seat)
        assert.equal("SOLD", seat_status(SEAT))
    end)

    it("runs flows.mixed_order random first, and the seat is sold", function()
        local seat = vacant_seats(2)[1]
        assert.equal("VACANT", seat_status(seat))
        local status, doc = nginx:order{ event = EVENT, seats = { seat }, random = { [FAN] = 1 },
                                         first = "random", finish = true }
        assert.equal(200, status)
        pid_of(doc)
        assert_done(doc, seat)
        assert.equal("SOLD", seat_status(seat))
    end)

    it("orders over REST in each worker", function()
        local seats = vacant_seats(30)
        local pids = {}
        for i = 1, #seats do
            local status, doc = nginx:order{ event = EVENT, seats = { seats[i] },
                                             random = { [FAN] = 1 },
                                             first = i % 2 == 0 and "seats" or "random",
                                             finish = true }
            assert.equal(200, status)
            assert_done(doc, seats[i])
            pids[pid_of(doc)] = true
            local workers = children(nginx.pid)
            if pids[workers[1]] and pids[workers[2]] then break end
        end
        for _, w in ipairs(children(nginx.pid)) do
            assert.is_true(pids[w], "worker " .. w .. " made no order")
        end
        assert_master_idle()
    end)

    it("answers a bad key with auth errors that do not show the key", function()
        local status, doc, text = nginx:get("/tc/key-check", { ["X-Ticketscloud-Key"] = BAD_KEY })
        assert.equal(200, status)
        pid_of(doc)
        assert.is_false(doc.rest.ok)
        assert.equal("auth", doc.rest.error.kind)
        assert.equal(401, doc.rest.error.status)
        assert.is_false(doc.grpc.ok)
        assert.equal("auth", doc.grpc.error.kind)
        assert.equal("UNAUTHENTICATED", doc.grpc.error.code)
        assert.is_nil(text:find(BAD_KEY, 1, true))
        assert.is_nil(text:find("4b1d0c9e7a2f", 1, true))

        -- The configured key passes both.
        status, doc = nginx:get("/tc/key-check")
        assert.equal(200, status)
        assert.same({ ok = true }, doc.rest)
        assert.same({ ok = true }, doc.grpc)
    end)

    it("answers a refused order with the error's fields", function()
        local status, doc = nginx:order{ event = "not-an-id", random = { [FAN] = 1 } }
        assert.equal(400, status)
        pid_of(doc)
        assert.equal("invalid", doc.error.kind)
        assert.matches("event", doc.error.message)

        status, doc = nginx:call("GET", "/tc/order")
        assert.equal(405, status)
        assert.equal("invalid", doc.error.kind)

        -- Fields of the wrong JSON type are a bad request, not a server error.
        for _, bad in ipairs{ { seats = SEAT }, { random = 1 }, { customer = "Ivan" },
                              { first = 2 }, { seats = cjson.null, random = { 1 } } } do
            bad.event = bad.event or EVENT
            status, doc = nginx:order(bad)
            assert.equal(400, status, cjson.encode(bad))
            assert.equal("invalid", doc.error.kind)
        end
    end)

    it("checks a promocode through the client's nginx transport", function()
        local status, doc = nginx:get("/tc/promocode?event=" .. EVENT .. "&code=PROMO10")
        assert.equal(200, status)
        pid_of(doc)
        assert.same({ percentage = "10%" }, doc.promocode.discount)

        status, doc = nginx:get("/tc/promocode?event=" .. EVENT .. "&code=nope")
        assert.equal(422, status)
        assert.equal("api", doc.error.kind)
        assert.equal(400, doc.error.status)
        assert.same({ "Promocode not found" }, doc.error.messages)

        status, doc = nginx:get("/tc/promocode?event=" .. EVENT)
        assert.equal(400, status)
        assert.equal("invalid", doc.error.kind)
    end)

    it("reloads: new workers serve, the master stays idle", function()
        local old = children(nginx.pid)
        assert.is_true(os.execute("kill -HUP " .. nginx.pid))
        local deadline = socket.gettime() + 15
        local new
        repeat
            socket.sleep(0.05)
            new = children(nginx.pid)
            local fresh = #new == WORKERS
            for _, w in ipairs(new) do
                for _, o in ipairs(old) do if w == o then fresh = false end end
            end
            if fresh then break end
        until socket.gettime() > deadline
        for _, o in ipairs(old) do assert.is_false(proc_alive(o), "old worker " .. o .. " still runs") end
        local pids = {}
        for _ = 1, 20 do
            local status, doc = nginx:get("/tc/seats?event=" .. EVENT .. "&seat=" .. SEAT)
            assert.equal(200, status)
            assert.equal("SOLD", doc.seats[1].status)
            pids[pid_of(doc)] = true
        end
        for pid in pairs(pids) do
            assert.truthy(pid == new[1] or pid == new[2], "answered by " .. pid .. ", not a new worker")
        end
        assert_master_idle()
    end)

    it("stops gracefully: each worker closes its client and exits with code 0", function()
        assert.is_true(nginx:running())
        assert.is_true(nginx:stop("QUIT", 15))
        local log = nginx:log()
        for pid in pairs(served) do
            assert.truthy(log:find("ticketscloud: worker " .. pid .. " closed its client", 1, true),
                          "worker " .. pid .. " did not close its client")
            assert.truthy(log:find("worker process " .. pid .. " exited with code 0", 1, true),
                          "worker " .. pid .. " did not exit with code 0")
        end
        assert.is_nil(log:find("exited on signal", 1, true))
        assert.is_nil(log:find("%[alert%]"))
        assert.is_nil(log:find("%[crit%]"))
        assert.is_nil(log:find("%[emerg%]"))
        assert.is_nil(log:find(BAD_KEY, 1, true))
        -- The key sent in every subrequest's Authorization is in no log.
        local access = read_file(nginx.prefix .. "/logs/access.log")
        assert.truthy(access:find("POST /tc/order", 1, true))
        assert.truthy(access:find("GET /tc/promocode", 1, true))
        for _, text in ipairs{ log, access, read_file(nginx.prefix .. "/logs/stdout.log") } do
            assert.is_nil(text:find(sb.key, 1, true))
        end
    end)
end)

-- What the documentation forbids, to show what the module does about it: a
-- client made in init_by_lua (used over REST there, so the master holds its
-- connection but no thread) is refused in the workers, which go on with
-- their own clients.
local MASTER_CLIENT = [[
        MASTER_CLIENT = require("ticketscloud").new{ key = os.getenv("TICKETSCLOUD_KEY"),
            api = os.getenv("TICKETSCLOUD_API"), simple = os.getenv("TICKETSCLOUD_SIMPLE") }
        local _, err = MASTER_CLIENT:orders{ page_size = 1 }()
        assert(not err, tostring(err))
]]
local MASTER_CLIENT_LOCATION = [[
        location = /tc/master-client {
            content_by_lua_block {
                local _, err = MASTER_CLIENT:orders{ page_size = 1 }()
                ngx.say(require("cjson").encode{ pid = ngx.worker.pid(), kind = err and err.kind,
                                                 message = err and tostring(err) })
            }
        }
]]

describe("lua-ticketscloud in nginx: a client made in the master", function()
    local sb, nginx

    lazy_setup(function()
        sb = assert(sandbox.start{ log = "/dev/null" })
        nginx = start_or_fail(sb, function(conf)
            local n
            conf, n = conf:gsub('(        require "nginx_shop"\n)', "%1" .. MASTER_CLIENT:gsub("%%", "%%%%"))
            assert(n == 1, "no init_by_lua_block to extend")
            conf, n = conf:gsub("(        location = /tc/events {)",
                                (MASTER_CLIENT_LOCATION:gsub("%%", "%%%%")) .. "%1")
            assert(n == 1, "no catalogue location")
            return conf
        end)
    end)

    lazy_teardown(function()
        if nginx then
            nginx:stop("TERM", 5)
            nginx:remove()
        end
        if sb then sb:stop() end
    end)

    -- The connections of a process to the sandbox's REST port.
    local function rest_connections(pid)
        local n = 0
        for _, s in ipairs(tcp_sockets(pid)) do
            if s.state == "ESTABLISHED" and s.peer == port_of(sb.api) then n = n + 1 end
        end
        return n
    end

    it("holds the master's connection, in the master and in every worker", function()
        assert.equal(1, tasks(nginx.pid))
        assert.equal(1, rest_connections(nginx.pid))
        for _, w in ipairs(children(nginx.pid)) do
            assert.equal(1, rest_connections(w)) -- inherited: the workers made no client yet
        end
    end)

    it("is refused in each worker, which goes on with its own client", function()
        local pids = {}
        for _ = 1, 40 do
            local status, doc = nginx:get("/tc/master-client")
            assert.equal(200, status)
            assert.equal("invalid", doc.kind)
            assert.matches("made in process " .. nginx.pid .. ", before a fork", doc.message, 1, true)
            pids[doc.pid] = true
            local workers = children(nginx.pid)
            if pids[workers[1]] and pids[workers[2]] then break end
        end
        for _, w in ipairs(children(nginx.pid)) do
            assert.is_true(pids[w], "worker " .. w .. " was not asked")
        end
        for _ = 1, 6 do
            local status, doc = nginx:get("/tc/seats?event=" .. EVENT .. "&seat=" .. SEAT)
            assert.equal(200, status)
            assert.equal("VACANT", doc.seats[1].status)
        end
    end)

    it("stops cleanly", function()
        local workers = children(nginx.pid)
        assert.is_true(nginx:stop("QUIT", 15))
        local log = nginx:log()
        for _, w in ipairs(workers) do
            assert.truthy(log:find("worker process " .. w .. " exited with code 0", 1, true), log)
        end
        assert.is_nil(log:find("%[alert%]"))
        assert.is_nil(log:find("exited on signal", 1, true))
    end)
end)

-- The transport of ticketscloud.nginx in a single worker, with locations of
-- the spec's own: /tc/t sends an order change through a client on a
-- transport to the internal location ?loc=, with the sandbox's
-- X-Sandbox-Delay header when ?delay= is given (or the header ?hdr=).
local TRANSPORT_LOCATIONS = [[
        location = /tc/t {
            set $tc_auth "";
            set $tc_sandbox_delay "";
            content_by_lua_block {
                local cjson = require "cjson"
                local key = os.getenv("TICKETSCLOUD_KEY")
                local t = require("ticketscloud.nginx").transport{
                    location = ngx.var.arg_loc, key = key, timeout = 5,
                    headers = { ["X-Sandbox-Delay"] = "tc_sandbox_delay" } }
                local c = assert(require("ticketscloud").new{ key = key, transport = t,
                                                              sleep = ngx.sleep })
                local delay = ngx.var.arg_delay
                local started = ngx.now()
                local order, err = c:patch_order(ngx.var.arg_order, { customer = {
                    email = "slow@example.com" } }, { headers = delay and {
                    [ngx.var.arg_hdr or "X-Sandbox-Delay"] = delay } or nil })
                ngx.update_time()
                c:close()
                ngx.say(cjson.encode{ pid = ngx.worker.pid(), status = order and order.status,
                    kind = err and err.kind, code = err and err.status,
                    message = err and tostring(err), sent = err and err.sent,
                    seconds = ngx.now() - started,
                    stats = t:stats() })
            }
        }
        location /_tc_slow/ {
            internal;
            rewrite ^/_tc_slow(/.*)$ $1 break;
            proxy_pass http://tc_api;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass_request_headers off;
            proxy_set_header Authorization $tc_auth;
            proxy_set_header Content-Type application/json;
            proxy_set_header X-Sandbox-Delay $tc_sandbox_delay;
        }
        location /_tc_dead/ {
            internal;
            rewrite ^/_tc_dead(/.*)$ $1 break;
            proxy_pass http://127.0.0.1:DEAD_PORT;
        }
        location /_tc_short/ {
            internal;
            rewrite ^/_tc_short(/.*)$ $1 break;
            proxy_pass http://tc_api;
            proxy_set_header Authorization $tc_auth;
            proxy_set_header X-Sandbox-Delay $tc_sandbox_delay;
            proxy_read_timeout 1s;
        }
        location /_tc_bad/ {
            internal;
            rewrite ^ /tc/service-502 break;
            proxy_pass http://127.0.0.1:$server_port;
        }
        location = /tc/service-502 {
            default_type application/json;
            return 502 '{"errors": ["the service is down"]}';
        }
]]

describe("lua-ticketscloud in nginx: REST through nginx without blocking (1 worker)", function()
    local sb, nginx, order_id

    lazy_setup(function()
        sb = assert(sandbox.start{ log = "/dev/null" })
        local dead = free_port()
        nginx = start_or_fail(sb, function(conf)
            local n
            conf, n = conf:gsub("\nworker_processes 2;\n", "\nworker_processes 1;\n")
            assert(n == 1, "no worker_processes")
            local locations = TRANSPORT_LOCATIONS:gsub("DEAD_PORT", tostring(dead))
            conf, n = conf:gsub("(        location = /tc/events {)",
                                (locations:gsub("%%", "%%%%")) .. "%1")
            assert(n == 1, "no catalogue location")
            return conf
        end, 1)
        -- An order to change: reserved, not finished.
        local status, doc = nginx:order{ event = EVENT, random = { [FAN] = 1 } }
        assert(status == 200 and doc.order, doc.error and doc.error.message)
        order_id = doc.order.id
    end)

    lazy_teardown(function()
        if nginx then
            nginx:stop("TERM", 5)
            nginx:remove()
        end
        if sb then sb:stop() end
    end)

    local function slow_path(loc, delay)
        return ("/tc/t?loc=%s&order=%s%s"):format(loc, order_id, delay and "&delay=" .. delay or "")
    end

    it("serves another request while an order change is held by the service", function()
        local worker = children(nginx.pid)[1]
        -- The change, held 1.5 s by the sandbox: sent and not read yet.
        local a = assert(socket.connect("127.0.0.1", nginx.port))
        local t0 = socket.gettime()
        assert(a:send("GET " .. slow_path("/_tc_slow", 1500) .. " HTTP/1.0\r\nHost: x\r\n\r\n"))
        socket.sleep(0.2)
        -- The only worker answers another REST call meanwhile...
        local status, doc = nginx:get("/tc/promocode?event=" .. EVENT .. "&code=PROMO10")
        local t1 = socket.gettime()
        assert.equal(200, status)
        assert.equal(worker, doc.pid)
        assert.same({ percentage = "10%" }, doc.promocode.discount)
        -- ...and the first request is still waiting for its answer.
        a:settimeout(0)
        local _, err = a:receive(1)
        assert.equal("timeout", err)
        a:settimeout(helper.HTTP_TIMEOUT)
        local text = assert(a:receive("*a"))
        local t2 = socket.gettime()
        a:close()
        assert.matches("^HTTP/1%.1 200", text)
        local slow = cjson.decode(text:match("\r\n\r\n(.*)$"))
        assert.equal(worker, slow.pid)
        assert.is_nil(slow.message)
        assert.equal("executed", slow.status)
        assert.is_true(slow.seconds >= 1.4, "the change took " .. slow.seconds .. " s")
        assert.is_true(t1 < t2 and t1 - t0 < t2 - t0)
        assert.same({ requests = 1, failures = 0 }, slow.stats)
    end)

    it("gives nginx's own failures as transport and timeout errors", function()
        local status, doc = nginx:get(slow_path("/_tc_dead"))
        assert.equal(200, status)
        assert.equal("transport", doc.kind, doc.message)
        assert.matches("nginx got no complete answer from the API (status 502)", doc.message, 1, true)
        assert.same({ requests = 1, failures = 1 }, doc.stats)
        -- nginx does not say whether the request left it: it may have
        assert.is_true(doc.sent)

        status, doc = nginx:get(slow_path("/_tc_short", 3000))
        assert.equal(200, status)
        assert.equal("timeout", doc.kind, doc.message)
        assert.matches("no answer within 5 s", doc.message, 1, true)
        assert.is_true(doc.sent)
    end)

    it("passes the service's own 502 through as an API answer", function()
        local status, doc = nginx:get(slow_path("/_tc_bad"))
        assert.equal(200, status)
        assert.equal("api", doc.kind, doc.message)
        assert.equal(502, doc.code)
        assert.matches("the service is down", doc.message, 1, true)
        assert.is_nil(doc.sent)
        assert.same({ requests = 1, failures = 0 }, doc.stats)
    end)

    it("refuses a header the location does not send", function()
        local status, doc = nginx:get(slow_path("/_tc_slow", 10) .. "&hdr=X-Other")
        assert.equal(200, status)
        assert.equal("invalid", doc.kind)
        assert.matches("X-Other is not sent by the location", doc.message, 1, true)
        assert.same({ requests = 0, failures = 0 }, doc.stats)
    end)

    it("orders through the example's location and keeps the key out of the logs", function()
        local status, doc = nginx:order{ event = EVENT, random = { [FAN] = 1 }, finish = true }
        assert.equal(200, status)
        assert.equal("done", doc.order.status)
        assert.equal(doc.order.values.full, "6160.00")
        assert.is_true(nginx:stop("QUIT", 15))
        local log = nginx:log()
        local pid = math.tointeger(doc.pid)
        assert.truthy(log:find("ticketscloud: worker " .. pid .. " closed its client", 1, true), log)
        assert.is_nil(log:find("[warn]", 1, true), log)
        assert.is_nil(log:find("%[alert%]"))
        for _, file in ipairs{ "error.log", "access.log", "stdout.log" } do
            assert.is_nil(read_file(nginx.prefix .. "/logs/" .. file):find(sb.key, 1, true), file)
        end
    end)
end)
