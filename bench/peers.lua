-- bench/peers.lua: the module beside its peers, in one run, interleaved.
--
-- Each workload is run by the module and by programs that do the same
-- thing without it (bench/peers/), in turn, for BENCH_PEER_ROUNDS rounds
-- (A B C, then B C A, then C A B, ...: each goes first as often as the
-- others, so a slow spell of the machine hits all of them alike). Every
-- program times its own loop (monotonic wall time, getrusage CPU of the
-- whole process, peak RSS) and prints it; start-up and the first
-- connection are outside the timing. Reported per peer: the median and
-- the range over the rounds; per pair: the ratio of the medians and the
-- range of the rounds' own ratios.
--
-- 1. REST: BENCH_PEER_GETS (10,000) GETs of one finished two-ticket order
--    (2.5 KB of JSON), over one keep-alive connection: the module
--    (client:order(id): libcurl, JSON into Lua tables, the answer checked
--    and wrapped), bare C (libcurl + cJSON) and Python (requests). The
--    module runs on the Lua of the run (BENCH_LUA) and, when its LuaJIT
--    build is there (BENCH_PEER_LUAJIT_CPATH), on LuaJIT as well, as in
--    OpenResty: the program named "LuaJIT".
-- 2. Seats: one walk of an event of BENCH_PEER_SEATS (100,000) seats: the
--    module (client:seats{}), bare C (gRPC core + protobuf-c) and Python
--    (grpcio). The sandbox does the same work for all three.
-- 3. The sandbox against nginx serving the same order answer as a file:
--    wrk -t2 -c32 for BENCH_PEER_WRK_SECONDS (3) against each.
-- 4. Instructions (callgrind) per GET and per seat for the module and bare
--    C, the client process's every thread: each program runs at two sizes,
--    BENCH_PEER_CALLGRIND_RUNS (3) times each, and (least count at the high
--    size - least at the low) / (high - low) is the cost of one.
--
-- On a machine of two CPUs or more, the clients of 1. and 2. run on the
-- first CPU and the sandbox on the last (taskset) while they are timed, so
-- that where the scheduler puts them (the client beside the server, or on
-- a CPU of its own) does not change a run's figures; every peer is pinned
-- alike. The sandbox is free again for 3., where nginx runs a worker per
-- CPU. BENCH_PEER_PIN=0 leaves every process where the scheduler puts it.
--
-- The ratios also go to BENCH_DIR/peers-ratios.tsv, which `make
-- bench-chart` draws (tools/bench-chart). Python is /usr/bin/python3 (the
-- Debian packages python3-requests and python3-grpcio), or BENCH_PYTHON.

local util = require "bench.util"

local check, die, fmt, result = util.check, util.die, util.fmt, util.result

local ROUNDS = util.knob("BENCH_PEER_ROUNDS", 5)
local GETS = util.knob("BENCH_PEER_GETS", 10000)
local SEATS = util.knob("BENCH_PEER_SEATS", 100000)
local WRK_SECONDS = util.knob("BENCH_PEER_WRK_SECONDS", 3)
local CALLGRIND_RUNS = util.knob("BENCH_PEER_CALLGRIND_RUNS", 3)
local PIN = os.getenv("BENCH_PEER_PIN") ~= "0"
-- The module's LuaJIT build (make LUA=luajit module), as a package.cpath.
local LUAJIT_CPATH = os.getenv("BENCH_PEER_LUAJIT_CPATH") or "build/luajit/?.so"
local PYTHON = os.getenv("BENCH_PYTHON") or "/usr/bin/python3"
local NGINX = os.getenv("BENCH_NGINX") or "/usr/sbin/nginx"
local PEERS_DIR = (os.getenv("BENCH_PEERS_DIR") or "build/peers")
local SECTION = "peers"

-- Sizes of the callgrind runs (GETs, seats).
local CG_GETS = { 200, 1200 }
local CG_SEATS = { 2000, 22000 }

if SEATS < 2 then die("BENCH_PEER_SEATS must be at least 2") end
if os.getenv("BENCH_PEER_CALLGRIND") ~= "0" and SEATS < CG_SEATS[2] then
    die("BENCH_PEER_SEATS must be at least %d for the callgrind walks (or BENCH_PEER_CALLGRIND=0)",
        CG_SEATS[2])
end
if ROUNDS < 1 then die("BENCH_PEER_ROUNDS must be at least 1") end

local function quote(s)
    return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

for _, f in ipairs{ PEERS_DIR .. "/rest_get", PEERS_DIR .. "/seats" } do
    local h = io.open(f)
    if not h then die("%s is missing: make peers (make bench builds it)", f) end
    h:close()
end

-- Runs a command line; returns its output, or stops the run.
local function run(cmd, what)
    local p = check(io.popen(cmd .. " 2>&1"), "cannot run", what)
    local out = p:read("*a")
    local ok = p:close()
    if not ok then die("%s failed:\n%s", what, out) end
    return out
end

-- The line every peer prints: n=N wall=S cpu=S hwm0=KB hwm=KB.
local function peer_line(out, what)
    local m = {}
    for k, v in out:gmatch("(%w+)=([%d.]+)") do m[k] = tonumber(v) end
    if not (m.n and m.wall and m.cpu and m.hwm) then die("%s printed no result:\n%s", what, out) end
    return m
end

-- ---- the sandbox, its order and its arena ----------------------------------

util.section(("peers: the module beside bare C and Python, %d rounds, interleaved"):format(ROUNDS))
local catalog = util.catalog("peers", { seats = SEATS, stock = 100 })
local sb = util.sandbox(catalog, { log = "/dev/null" })
local client = util.client(sb)

local arena, _, floor = util.arena(client, catalog, SEATS)
local order = util.finished_order(client, arena, floor, "the order to GET")
local ORDER_PATH = "/v2/resources/orders/" .. order.id
-- The bytes the sandbox answers, for nginx to serve as a file.
local status, answer = client.http:request("GET", ORDER_PATH)
check(status == 200 and answer, answer, "GET " .. ORDER_PATH)
client:close()

local TARGET = sb.simple:gsub("^http://", "")
local GEN_PY = PEERS_DIR .. "/py"

-- The programs of each workload: name, command line (the size appended).
local REST = {
    { "module", ("%s bench/peers/rest_get.lua %s %s %s"):format(util.LUA, quote(sb.api),
                                                                quote(sb.key), order.id) },
    { "C", ("%s/rest_get %s %s %s"):format(PEERS_DIR, quote(sb.api), quote(sb.key), order.id) },
    { "Python", ("%s bench/peers/rest_get.py %s %s %s"):format(PYTHON, quote(sb.api), quote(sb.key),
                                                              order.id) },
}
local SEAT_PEERS = {
    { "module", ("%s bench/peers/seats.lua %s %s %s"):format(util.LUA, quote(sb.simple),
                                                             quote(sb.key), arena) },
    { "C", ("%s/seats %s %s %s"):format(PEERS_DIR, quote(TARGET), quote(sb.key), arena) },
    { "Python", ("%s bench/peers/seats.py %s %s %s %s"):format(PYTHON, quote(GEN_PY), quote(TARGET),
                                                             quote(sb.key), arena) },
}

-- The module on LuaJIT, when its build is there and the run's Lua is not
-- LuaJIT already.
-- A program's third field is what goes before its command line: here the
-- LuaJIT build's package.cpath.
local JIT_ENV = nil
do
    local h = io.open((LUAJIT_CPATH:gsub("%?", "ticketscloud/core")))
    if h and util.LUA ~= "luajit" and os.execute("command -v luajit >/dev/null 2>&1") then
        JIT_ENV = ("LUA_CPATH=%s "):format(quote(LUAJIT_CPATH .. ";;"))
    end
    if h then h:close() end
end
if JIT_ENV then
    table.insert(REST, 2, { "LuaJIT", (REST[1][2]:gsub("^%S+", "luajit", 1)), JIT_ENV })
    table.insert(SEAT_PEERS, 2, { "LuaJIT", (SEAT_PEERS[1][2]:gsub("^%S+", "luajit", 1)), JIT_ENV })
else
    print(("  no LuaJIT build of the module at %s: the module runs on %s only"):format(LUAJIT_CPATH,
                                                                                      util.LUA))
end

-- ---- nginx: the same answer as a file --------------------------------------

local socket = require "socket"
local helper = require "spec.helpers.nginx" -- free_port, alive, children (of /proc)
local free_port, alive, children = helper.free_port, helper.alive, helper.children

-- nginx with worker_processes auto (one per core), no access log, serving
-- ORDER_PATH as a file with the sandbox's Content-Type.
local function start_nginx()
    local prefix = util.DIR .. "/nginx"
    local root = prefix .. "/root"
    run(("rm -rf %s && mkdir -p %s/logs %s/temp %s/v2/resources/orders"):format(quote(prefix),
        quote(prefix), quote(prefix), quote(root)), "mkdir")
    local f = check(io.open(root .. ORDER_PATH, "wb"))
    f:write(answer)
    f:close()
    local port = free_port()
    local abs = run("cd " .. quote(prefix) .. " && pwd", "pwd"):gsub("%s+$", "")
    local conf = table.concat({
        "worker_processes auto;",
        "pid logs/nginx.pid;",
        "error_log logs/error.log;",
        "events { worker_connections 1024; }",
        "http {",
        "    access_log off;",
        "    client_body_temp_path temp/body; proxy_temp_path temp/proxy;",
        "    fastcgi_temp_path temp/fastcgi; uwsgi_temp_path temp/uwsgi; scgi_temp_path temp/scgi;",
        "    types { } default_type application/json;",
        "    keepalive_requests 1000000;",
        ("    server { listen 127.0.0.1:%d; root %s/root; }"):format(port, abs),
        "}",
    }, "\n")
    f = check(io.open(prefix .. "/nginx.conf", "w"))
    f:write(conf, "\n")
    f:close()
    local user = run("id -u", "id"):match("^0%s") and " user root;" or ""
    local p = check(io.popen(("echo $$; exec %s -p %s/ -c %s/nginx.conf -e %s/logs/error.log -g %s >%s 2>&1")
        :format(quote(NGINX), quote(abs), quote(abs), quote(abs),
                quote("daemon off; master_process on;" .. user), quote(abs .. "/logs/stdout.log"))))
    local pid = tonumber(p:read("*l"))
    local deadline = util.now() + 10
    while util.now() < deadline do
        local c = socket.tcp()
        c:settimeout(0.2)
        local ok = c:connect("127.0.0.1", port)
        c:close()
        if ok and #children(pid) > 0 then
            return { pid = pid, proc = p, base = "http://127.0.0.1:" .. port, prefix = abs }
        end
        if not alive(pid) then break end
        socket.sleep(0.05)
    end
    die("nginx did not start (see %s/logs/error.log)", abs)
end

local function stop_nginx(ngx)
    if ngx.stopped then return end
    ngx.stopped = true
    os.execute(("kill -QUIT %d 2>/dev/null"):format(ngx.pid))
    local deadline = util.now() + 10
    while alive(ngx.pid) and util.now() < deadline do socket.sleep(0.05) end
    if alive(ngx.pid) then os.execute(("kill -KILL %d 2>/dev/null"):format(ngx.pid)) end
    ngx.proc:close()
end

-- CPU seconds of nginx, master and workers.
local function nginx_cpu(ngx)
    local total = util.cpu_seconds(ngx.pid)
    for _, child in ipairs(children(ngx.pid)) do total = total + util.cpu_seconds(child) end
    return total
end

local ngx = start_nginx()
util.at_die(function() stop_nginx(ngx) end)
do -- the same bytes?
    local out = run(("curl -sS %s%s"):format(ngx.base, ORDER_PATH), "curl nginx")
    if out ~= answer then die("nginx does not serve the sandbox's answer") end
end

-- wrk against base .. ORDER_PATH; returns requests/s and the server's CPU
-- per request (cpu() reads the server's CPU seconds).
local function wrk(base, cpu)
    local cmd = ("wrk -t2 -c32 -d%ds -H %s %s"):format(WRK_SECONDS, quote("Authorization: key " .. sb.key),
                                                       quote(base .. ORDER_PATH))
    local cpu0 = cpu()
    local out = run(cmd, "wrk " .. base)
    local used = cpu() - cpu0
    local rate, total = out:match("Requests/sec:%s+([%d.]+)"), out:match("(%d+) requests in")
    if not rate then die("wrk %s: no rate in:\n%s", base, out) end
    if out:match("Non%-2xx or 3xx responses") or out:match("Socket errors") then
        die("wrk %s: errors:\n%s", base, out)
    end
    return { rate = tonumber(rate), cpu_us = used / tonumber(total) * 1e6 }
end

local SERVERS = {
    { "sandbox", function() return wrk(sb.api, function() return util.cpu_seconds(sb.pid) end) end },
    { "nginx", function() return wrk(ngx.base, function() return nginx_cpu(ngx) end) end },
}

-- ---- the rounds ------------------------------------------------------------

-- samples[workload][peer] = { m, m, ... }, one per round.
local samples = { rest = {}, seats = {}, serve = {} }

-- The pinning (see the top): the clients' CPU and the sandbox's, or nil
-- when not pinning; ALL_CPUS is the sandbox's list of CPUs as it started.
local ALL_CPUS, FIRST_CPU, LAST_CPU = util.cpus(sb.pid)
local CLIENT_CPU, SERVER_CPU = nil, nil
if PIN and ALL_CPUS and FIRST_CPU < LAST_CPU then
    CLIENT_CPU, SERVER_CPU = FIRST_CPU, LAST_CPU
end

-- The sandbox's every thread on cpus (a taskset list such as "1" or "0-1").
local function place_sandbox(cpus)
    check(util.place(sb.pid, cpus))
end

-- A program's command line, pinned when pinning.
local function pinned(p, cmd)
    return (p[3] or "") .. (CLIENT_CPU and ("taskset -c %d %s"):format(CLIENT_CPU, cmd) or cmd)
end

if CLIENT_CPU then
    print(("  clients on CPU %d, the sandbox on CPU %d while they run"):format(CLIENT_CPU, SERVER_CPU))
end

-- The peers of a list in the order of round r: rotated by r - 1.
local function rotated(list, r)
    local out = {}
    for i = 1, #list do out[i] = list[(i + r - 2) % #list + 1] end
    return out
end

local function record(workload, name, m)
    samples[workload][name] = samples[workload][name] or {}
    table.insert(samples[workload][name], m)
end

run(("%s bench/peers/seats.py %s %s %s %s 1"):format(PYTHON, quote(GEN_PY), quote(TARGET), quote(sb.key),
                                                    arena), "generating the Python gRPC code")

for r = 1, ROUNDS do
    local line = {}
    if SERVER_CPU then place_sandbox(tostring(SERVER_CPU)) end
    for _, p in ipairs(rotated(REST, r)) do
        local m = peer_line(run(pinned(p, p[2] .. " " .. GETS), p[1] .. " REST"), p[1] .. " REST")
        if m.n ~= GETS then die("%s REST made %d GETs, not %d", p[1], m.n, GETS) end
        record("rest", p[1], m)
        line[#line + 1] = ("%s %.0f us"):format(p[1], m.wall / GETS * 1e6)
    end
    for _, p in ipairs(rotated(SEAT_PEERS, r)) do
        local cpu0 = util.cpu_seconds(sb.pid)
        local m = peer_line(run(pinned(p, p[2]), p[1] .. " seats"), p[1] .. " seats")
        m.server_cpu = util.cpu_seconds(sb.pid) - cpu0
        if m.n ~= SEATS then die("%s walked %d seats, not %d", p[1], m.n, SEATS) end
        record("seats", p[1], m)
        line[#line + 1] = ("%s %s seats/s"):format(p[1], fmt(SEATS / m.wall))
    end
    if SERVER_CPU then place_sandbox(ALL_CPUS) end
    for _, s in ipairs(rotated(SERVERS, r)) do
        local m = s[2]()
        record("serve", s[1], m)
        line[#line + 1] = ("%s %s req/s"):format(s[1], fmt(m.rate))
    end
    print(("  round %d: %s"):format(r, table.concat(line, ", ")))
end

stop_nginx(ngx)

-- ---- instructions (callgrind) ----------------------------------------------

-- Instructions of one run of a program under callgrind, all its threads.
local function instructions(p, size)
    local cmd = p[2]
    local out = run(("%svalgrind --tool=callgrind --callgrind-out-file=/dev/null %s %d")
                    :format(p[3] or "", cmd, size), "callgrind " .. cmd)
    local collected = out:match("Collected : (%d+)")
    if not collected then die("callgrind %s: no count in:\n%s", cmd, out) end
    return tonumber(collected)
end

-- The least of CALLGRIND_RUNS counts at each size: what disturbs a run
-- (gRPC's threads polling while the sandbox lags behind, a timer firing)
-- only ever adds instructions.
local function per_op(p, sizes)
    local function least(size)
        local n = math.huge
        for _ = 1, CALLGRIND_RUNS do n = math.min(n, instructions(p, size)) end
        return n
    end
    local low, high = least(sizes[1]), least(sizes[2])
    return (high - low) / (sizes[2] - sizes[1])
end

local counts = {}
if os.getenv("BENCH_PEER_CALLGRIND") ~= "0" then
    util.section(("peers: instructions per operation (callgrind, %d vs %d GETs, %d vs %d seats)")
        :format(CG_GETS[2], CG_GETS[1], CG_SEATS[2], CG_SEATS[1]))
    for _, p in ipairs(REST) do
        if p[1] ~= "Python" then counts["rest " .. p[1]] = per_op(p, CG_GETS) end
    end
    for _, p in ipairs(SEAT_PEERS) do
        if p[1] ~= "Python" then counts["seats " .. p[1]] = per_op(p, CG_SEATS) end
    end
end

sb:stop()

-- ---- the table -------------------------------------------------------------

local function values(list, f)
    local out = {}
    for i, m in ipairs(list) do out[i] = f(m) end
    return out
end

local function min_max(list)
    local lo, hi = math.huge, -math.huge
    for _, v in ipairs(list) do
        lo, hi = math.min(lo, v), math.max(hi, v)
    end
    return lo, hi
end

-- "median (min – max)" of f over a peer's rounds, and the median.
local function spread(list, f, digits)
    local v = values(list, f)
    local med = util.median(v)
    local lo, hi = min_max(v)
    local show = digits and function(x) return ("%." .. digits .. "f"):format(x) end or fmt
    return ("%s (%s – %s)"):format(show(med), show(lo), show(hi)), med
end

-- The ratio a / b of two peers: of the medians, and the range of the
-- rounds' own ratios (round i of a against round i of b).
local ratios = {}
local function ratio(label, a, b, f)
    local per_round = {}
    for i = 1, math.min(#a, #b) do per_round[i] = f(a[i]) / f(b[i]) end
    local med = util.median(values(a, f)) / util.median(values(b, f))
    local lo, hi = min_max(per_round)
    ratios[#ratios + 1] = { label = label, value = med, lo = lo, hi = hi }
    result(SECTION, "ratio " .. label, ("%.2f (%.2f – %.2f)"):format(med, lo, hi), "x")
    return med
end

local rest, seats, serve = samples.rest, samples.seats, samples.serve
local function us_per_get(m) return m.wall / m.n * 1e6 end
local function cpu_per_get(m) return m.cpu / m.n * 1e6 end
local function seats_per_s(m) return m.n / m.wall end
local function wall_per_seat(m) return m.wall / m.n * 1e6 end
local function cpu_per_seat(m) return m.cpu / m.n * 1e6 end
local function server_per_seat(m) return m.server_cpu / m.n * 1e6 end
local function peak_mb(m) return m.hwm / 1024 end

-- One row: "median (min – max)" of f over the rounds of a peer.
local function row(name, list, f, unit, digits)
    result(SECTION, name, (spread(list, f, digits)), unit)
end
local function rate(m) return m.rate end
local function server_us(m) return m.cpu_us end
local function mb0(m) return m.hwm0 / 1024 end
local function flat(list)
    return ("%.1f → %.1f"):format(util.median(values(list, mb0)), util.median(values(list, peak_mb)))
end

local NAMES = {}
for i, p in ipairs(REST) do NAMES[i] = p[1] end

util.section(("peers: medians (min – max) over %d rounds"):format(ROUNDS))
for _, name in ipairs(NAMES) do
    row(("REST %s: wall per GET"):format(name), rest[name], us_per_get, "us")
    row(("REST %s: client CPU per GET"):format(name), rest[name], cpu_per_get, "us")
    row(("REST %s: peak RSS, %s GETs"):format(name, fmt(GETS)), rest[name], peak_mb, "MB", 1)
end
for _, name in ipairs(NAMES) do
    row(("seats %s: seats/s"):format(name), seats[name], seats_per_s, "seats/s")
    row(("seats %s: client CPU per seat"):format(name), seats[name], cpu_per_seat, "us", 2)
    row(("seats %s: sandbox CPU per seat"):format(name), seats[name], server_per_seat, "us", 2)
    row(("seats %s: peak RSS, %s seats"):format(name, fmt(SEATS)), seats[name], peak_mb, "MB", 1)
end
result(SECTION, "module: peak RSS before → after the GETs", flat(rest.module), "MB")
result(SECTION, "module: peak RSS before → after the seats", flat(seats.module), "MB")
for _, name in ipairs{ "sandbox", "nginx" } do
    row(("wrk GET order, %s: requests/s"):format(name), serve[name], rate, "req/s")
    row(("wrk GET order, %s: server CPU per request"):format(name), serve[name], server_us, "us", 1)
end
if counts["rest module"] then
    for _, w in ipairs{ { "GET", "rest" }, { "seat", "seats" } } do
        for _, name in ipairs(NAMES) do
            local n = counts[w[2] .. " " .. name]
            if n then result(SECTION, ("instructions per %s: %s"):format(w[1], name), n, "instructions") end
        end
    end
end

util.section("peers: ratios, median (range of the rounds)")
ratio("REST wall, module / C", rest.module, rest.C, us_per_get)
ratio("REST CPU, module / C", rest.module, rest.C, cpu_per_get)
ratio("REST wall, Python / module", rest.Python, rest.module, us_per_get)
ratio("REST CPU, Python / module", rest.Python, rest.module, cpu_per_get)
ratio("seats wall, module / C", seats.module, seats.C, wall_per_seat)
ratio("seats CPU, module / C", seats.module, seats.C, cpu_per_seat)
ratio("seats wall, Python / module", seats.Python, seats.module, wall_per_seat)
ratio("seats CPU, Python / module", seats.Python, seats.module, cpu_per_seat)
ratio("wrk req/s, sandbox / nginx", serve.sandbox, serve.nginx, rate)
if rest.LuaJIT then
    ratio("REST wall, LuaJIT module / C", rest.LuaJIT, rest.C, us_per_get)
    ratio("REST CPU, LuaJIT module / C", rest.LuaJIT, rest.C, cpu_per_get)
    ratio("seats wall, LuaJIT module / C", seats.LuaJIT, seats.C, wall_per_seat)
    ratio("seats CPU, LuaJIT module / C", seats.LuaJIT, seats.C, cpu_per_seat)
end
if counts["rest module"] then
    for _, w in ipairs{ { "REST", "rest" }, { "seats", "seats" } } do
        for _, p in ipairs{ { "module", "module" }, { "LuaJIT", "LuaJIT module" } } do
            local n = counts[w[2] .. " " .. p[1]]
            if n then
                local v = n / counts[w[2] .. " C"]
                local label = ("%s instructions, %s / C"):format(w[1], p[2])
                ratios[#ratios + 1] = { label = label, value = v, lo = v, hi = v }
                result(SECTION, "ratio " .. label, ("%.2f"):format(v), "x")
            end
        end
    end
end

-- For tools/bench-chart: label, ratio, low, high.
local f = check(io.open(util.DIR .. "/peers-ratios.tsv", "w"))
for _, r in ipairs(ratios) do
    f:write(("%s\t%.4f\t%.4f\t%.4f\n"):format(r.label, r.value, r.lo, r.hi))
end
f:close()
