-- bench/sandbox_perf.lua: what the sandbox costs per request and per seat,
-- beside nginx serving the same bytes, in the same run.
--
-- ROUNDS rounds (BENCH_ROUNDS, default 5), interleaved, each of:
-- 1. wrk GET /v2/resources/orders/:id on the sandbox (a finished order of
--    a seat and an unseated ticket), then wrk GET of the same answer's bytes
--    as a static file from nginx (a generated config on a free port, daemon
--    off, 2 workers, no access log): requests/s, p50/p99, and CPU per request
--    of each server from /proc/<pid>/stat (nginx: its workers).
-- 2. The order flow with wrk (bench/wrk-flow.lua, one connection per wrk
--    thread): POST an order of one unseated ticket, PATCH it to two, PATCH
--    it done: flows/s and sandbox CPU per flow. Then the same flow with
--    the sandbox on the last CPU and wrk on the others (taskset; with two
--    CPUs or more, unless BENCH_FLOW_PIN=0): sharing the cores, wrk takes
--    more CPU per flow than the sandbox does and its share bounds the
--    flows/s; pinned, each has CPUs of its own, and the flows/s are the
--    sandbox's own.
-- 3. A walk of the Seats stream of a 100,000-seat event through the module:
--    sandbox CPU per streamed seat.
-- Then the medians and ranges. wrk runs with 2 threads and 32 connections
-- for BENCH_WRK_SECONDS (default 5) s; the flow with BENCH_FLOW_THREADS
-- (default 8) threads, one connection each. Uses TC_SANDBOX like the other
-- scripts, so the same script measures another build of the sandbox.
--
-- BENCH_BASELINE_SANDBOX=FILE also starts that tc-sandbox binary (an older
-- build, say) on the same catalog, and each round runs the GET and the
-- flow against it too, the two sandboxes taking turns to go first: the
-- ratios this / baseline are then measured in the same run, on the same
-- machine, under the same load generator.

local util = require "bench.util"

local check, die, fmt, result = util.check, util.die, util.fmt, util.result

local ROUNDS = util.knob("BENCH_ROUNDS", 5)
local SECONDS = util.knob("BENCH_WRK_SECONDS", 5)
local FLOW_THREADS = util.knob("BENCH_FLOW_THREADS", 8)
local SEATS = util.knob("BENCH_SEATS", 100000)
local BASELINE = os.getenv("BENCH_BASELINE_SANDBOX")
local PIN = os.getenv("BENCH_FLOW_PIN") ~= "0"
local SECTION = "sandbox"

local function quote(s)
    return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function sh(cmd)
    local p = check(io.popen(cmd .. " 2>&1"), "cannot run", cmd)
    local out = p:read("*a")
    return p:close(), out
end

-- ---- the sandbox -------------------------------------------------------------

-- The arena of SEATS seats and enough unseated stock for every flow: two
-- tickets each, in two flow runs a round (the second pinned), at up to
-- 25,000 flows/s (about 12,000 on 2 cores).
local stock = ROUNDS * 2 * SECONDS * 25000 * 2 + 1000
local catalog = util.catalog("sandbox_perf", { seats = SEATS, stock = stock })
local sb = util.sandbox(catalog, { log = "/dev/null" })
local client = util.client(sb)

local arena, _, floor = util.arena(client, catalog)

-- The order that GET reads, and its answer's bytes for nginx.
local ORDER_PATH = "/v2/resources/orders/" .. util.finished_order(client, arena, floor,
                                                                  "the order for GET").id

-- The baseline sandbox, its client and its own finished order to GET.
local base, base_client, BASE_PATH
if BASELINE then
    base = util.sandbox(catalog, { log = "/dev/null", bin = BASELINE })
    base_client = util.client(base)
    BASE_PATH = "/v2/resources/orders/" .. util.finished_order(base_client, arena, floor,
                                                               "the baseline's order for GET").id
end

local root = util.DIR .. "/nginx-static"
if root:sub(1, 1) ~= "/" then root = os.getenv("PWD") .. "/" .. root end
os.execute("mkdir -p " .. quote(root .. "/logs"))
local ok, out = sh(("curl -sS -o %s -H %s %s"):format(quote(root .. "/order.json"),
    quote("Authorization: key " .. sb.key), quote(sb.api .. ORDER_PATH)))
if not ok then die("curl: %s", out) end
local f = check(io.open(root .. "/order.json"))
local answer_bytes = #f:read("*a")
f:close()

-- ---- nginx -------------------------------------------------------------------

-- A free port: bind to 0 and let go of it (nginx takes it a moment later).
local socket = require "socket"
local probe = check(socket.bind("127.0.0.1", 0))
local _, nginx_port = probe:getsockname()
probe:close()

local conf = root .. "/nginx.conf"
f = check(io.open(conf, "w"))
f:write(([[
worker_processes 2;
daemon off;
pid %s/nginx.pid;
error_log %s/logs/error.log;
events { worker_connections 1024; }
http {
    access_log off;
    default_type application/json;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:%d;
        root %s;
    }
}
]]):format(root, root, nginx_port, root))
f:close()
local nginx_pid = tonumber(select(2, sh(("sh -c 'nginx -p %s -c %s >/dev/null 2>&1 & echo $!'")
    :format(quote(root), quote(conf)))):match("%d+"))
local function stop_nginx()
    if nginx_pid then os.execute("kill " .. nginx_pid .. " 2>/dev/null") end
end
local NGINX_URL = ("http://127.0.0.1:%d/order.json"):format(nginx_port)
for _ = 1, 50 do
    if sh("curl -sf -o /dev/null " .. NGINX_URL) then break end
    socket.sleep(0.1)
end
local function nginx_workers()
    local pids = {}
    local _, list = sh("ps -o pid= --ppid " .. nginx_pid)
    for pid in list:gmatch("%d+") do pids[#pids + 1] = tonumber(pid) end
    if #pids == 0 then stop_nginx(); die("nginx (pid %s) has no workers", tostring(nginx_pid)) end
    return pids
end
local workers = nginx_workers()
local function nginx_cpu()
    local sum = 0
    for _, pid in ipairs(workers) do sum = sum + util.cpu_seconds(pid) end
    return sum
end

-- ---- wrk ---------------------------------------------------------------------

local ms = util.wrk_ms

-- One wrk run; cpu() reads the server's CPU seconds. Returns requests/s,
-- p50 and p99 in ms, CPU µs per request, and the requests made.
local function wrk(url, cpu, opts)
    opts = opts or {}
    local argv = { opts.env or "", "wrk", "-t" .. (opts.threads or 2), "-c" .. (opts.conns or 32),
                   "-d" .. SECONDS .. "s", "--latency",
                   "-H", quote("Authorization: key " .. sb.key) }
    if opts.script then
        argv[#argv + 1] = "-s"
        argv[#argv + 1] = quote(opts.script)
    end
    argv[#argv + 1] = quote(url)
    local cpu0 = cpu()
    local done, text = sh(table.concat(argv, " "))
    local used = cpu() - cpu0
    local rate = text:match("Requests/sec:%s+([%d.]+)")
    if not done or not rate then stop_nginx(); die("wrk %s failed:\n%s", url, text) end
    local bad = text:match("Non%-2xx or 3xx responses: (%d+)")
    if bad then stop_nginx(); die("wrk %s: %s answers were not 2xx:\n%s", url, bad, text) end
    local errors = text:match("Socket errors: ([^\n]+)")
    if errors then stop_nginx(); die("wrk %s: socket errors: %s", url, errors) end
    local total = tonumber(text:match("(%d+) requests in"))
    local pct = {}
    for line in text:gmatch("[^\n]+") do
        local q, v = line:match("^%s+(%d+)%%%s+(%S+)$")
        if q then pct[q] = ms(v) end
    end
    return { rate = tonumber(rate), p50 = pct["50"], p99 = pct["99"], cpu = used / total * 1e6,
             total = total }
end

local function sandbox_cpu() return util.cpu_seconds(sb.pid) end
local function base_cpu() return util.cpu_seconds(base.pid) end

local function seats_walk()
    local cpu0 = sandbox_cpu()
    local n = util.walk(check(client:seats{ event = arena }))
    if n ~= SEATS then die("the seat stream gave %d seats, not %d", n, SEATS) end
    return (sandbox_cpu() - cpu0) / n * 1e6
end

-- ---- the rounds --------------------------------------------------------------

local _, load_before = sh("uptime")
util.section(("sandbox: %d rounds, interleaved; wrk -t2 -c32 %d s; GET answer %d bytes")
    :format(ROUNDS, SECONDS, answer_bytes))
print("  " .. load_before:gsub("%s+$", ""))
local runs = { sb = {}, ng = {}, flow = {}, seat = {}, base = {}, base_flow = {}, pin = {},
               base_pin = {} }
local flow_env = ("WRK_EVENT=%s WRK_FLOOR=%s"):format(arena, floor)

-- The pinned flow's CPUs: the sandbox's the last of those it started on,
-- wrk's the others; nil when not pinning.
local ALL_CPUS, FIRST_CPU, LAST_CPU = util.cpus(sb.pid)
local WRK_CPUS, SERVER_CPU
if PIN and ALL_CPUS and FIRST_CPU < LAST_CPU then
    WRK_CPUS, SERVER_CPU = FIRST_CPU .. "-" .. (LAST_CPU - 1), LAST_CPU
end

-- Every thread of process pid on cpus (a taskset list).
local function place(pid, cpus)
    local done, text = util.place(pid, cpus)
    if not done then stop_nginx(); die("taskset: %s", text) end
end

-- The order flow against api; pinned: the sandbox of pid on SERVER_CPU
-- and wrk on WRK_CPUS while it runs.
local function flow(api, cpu, pid, pinned)
    local env = flow_env
    if pinned then
        place(pid, SERVER_CPU)
        env = flow_env .. " taskset -c " .. WRK_CPUS
    end
    local c = wrk(api .. "/", cpu, { script = "bench/wrk-flow.lua", env = env,
                                     threads = FLOW_THREADS, conns = FLOW_THREADS })
    if pinned then place(pid, ALL_CPUS) end
    c.flows = c.rate / 3
    c.cpu = c.cpu * 3
    return c
end
if SERVER_CPU then
    print(("  pinned flow: the sandbox on CPU %s, wrk on CPUs %s"):format(SERVER_CPU, WRK_CPUS))
end
for round = 1, ROUNDS do
    local a, c, d, e, p, q
    local first = not base or round % 2 == 1 -- with a baseline, each goes first by turns
    local function this()
        a = wrk(sb.api .. ORDER_PATH, sandbox_cpu)
        c = flow(sb.api, sandbox_cpu)
        p = SERVER_CPU and flow(sb.api, sandbox_cpu, sb.pid, true)
    end
    if first then this() end
    if base then
        d = wrk(base.api .. BASE_PATH, base_cpu)
        e = flow(base.api, base_cpu)
        q = SERVER_CPU and flow(base.api, base_cpu, base.pid, true)
    end
    if not first then this() end
    local b = wrk(NGINX_URL, nginx_cpu)
    local s = seats_walk()
    runs.sb[round], runs.ng[round], runs.flow[round], runs.seat[round] = a, b, c, s
    runs.base[round], runs.base_flow[round], runs.pin[round], runs.base_pin[round] = d, e, p, q
    local pin = p and (" | pinned %s/s %.0f us"):format(fmt(p.flows), p.cpu) or ""
    print(("  round %d: GET sandbox %s req/s p99 %.2f ms %.1f us | nginx %s req/s p99 %.2f ms %.1f us"
           .. " | flow %s/s %.0f us%s | seat %.2f us")
        :format(round, fmt(a.rate), a.p99, a.cpu, fmt(b.rate), b.p99, b.cpu, fmt(c.flows), c.cpu,
                pin, s))
    if base then
        pin = q and (" | pinned %s/s %.0f us"):format(fmt(q.flows), q.cpu) or ""
        print(("           baseline: GET %s req/s p99 %.2f ms %.1f us | flow %s/s %.0f us%s")
            :format(fmt(d.rate), d.p99, d.cpu, fmt(e.flows), e.cpu, pin))
    end
end
stop_nginx()
local _, load_after = sh("uptime")
print("  " .. load_after:gsub("%s+$", ""))

local function stats(list, key)
    local values = {}
    for i, v in ipairs(list) do values[i] = key and v[key] or v end
    table.sort(values)
    return util.median(values), values[1], values[#values]
end
local function row(name, list, key, unit, digits)
    local med, lo, hi = stats(list, key)
    local form = "%." .. digits .. "f"
    result(SECTION, name, (form .. " (" .. form .. " - " .. form .. ")"):format(med, lo, hi), unit)
    return med
end

util.section("sandbox: medians (ranges) of " .. ROUNDS .. " rounds")
local sb_rate = row("GET order, sandbox: requests/s", runs.sb, "rate", "req/s", 0)
local ng_rate = row("GET same bytes, nginx static: requests/s", runs.ng, "rate", "req/s", 0)
local ratios, p99s = {}, {}
for i = 1, ROUNDS do
    ratios[i] = runs.sb[i].rate / runs.ng[i].rate
    p99s[i] = runs.sb[i].p99 / runs.ng[i].p99
end
row("GET: sandbox / nginx, requests/s (per round)", ratios, nil, "x", 2)
row("GET, sandbox: p50", runs.sb, "p50", "ms", 2)
row("GET, sandbox: p99", runs.sb, "p99", "ms", 2)
row("GET, nginx: p50", runs.ng, "p50", "ms", 2)
row("GET, nginx: p99", runs.ng, "p99", "ms", 2)
row("GET: sandbox p99 / nginx p99 (per round)", p99s, nil, "x", 2)
row("GET, sandbox: CPU per request", runs.sb, "cpu", "us", 1)
row("GET, nginx: CPU per request", runs.ng, "cpu", "us", 1)
row(("order flow (POST, PATCH, PATCH), %d connections: flows/s"):format(FLOW_THREADS),
    runs.flow, "flows", "flows/s", 0)
row("order flow: sandbox CPU per flow", runs.flow, "cpu", "us", 0)
if SERVER_CPU then
    row("order flow, pinned (sandbox on a CPU of its own): flows/s", runs.pin, "flows", "flows/s", 0)
    row("order flow, pinned: sandbox CPU per flow", runs.pin, "cpu", "us", 0)
end
row(("Seats, %s seats: sandbox CPU per seat"):format(fmt(SEATS)), runs.seat, nil, "us", 2)
if base then
    row("baseline GET: requests/s", runs.base, "rate", "req/s", 0)
    row("baseline GET: CPU per request", runs.base, "cpu", "us", 1)
    row("baseline order flow: flows/s", runs.base_flow, "flows", "flows/s", 0)
    row("baseline order flow: sandbox CPU per flow", runs.base_flow, "cpu", "us", 0)
    if SERVER_CPU then
        row("baseline order flow, pinned: flows/s", runs.base_pin, "flows", "flows/s", 0)
        row("baseline order flow, pinned: sandbox CPU per flow", runs.base_pin, "cpu", "us", 0)
    end
    local get, flows_x, cpu_x, pin_x = {}, {}, {}, {}
    for i = 1, ROUNDS do
        get[i] = runs.sb[i].rate / runs.base[i].rate
        flows_x[i] = runs.flow[i].flows / runs.base_flow[i].flows
        cpu_x[i] = runs.base_flow[i].cpu / runs.flow[i].cpu
        pin_x[i] = SERVER_CPU and runs.pin[i].flows / runs.base_pin[i].flows
    end
    row("GET: this sandbox / baseline, requests/s (per round)", get, nil, "x", 2)
    row("order flow: this sandbox / baseline, flows/s (per round)", flows_x, nil, "x", 2)
    row("order flow: baseline CPU / this CPU per flow (per round)", cpu_x, nil, "x", 2)
    if SERVER_CPU then
        row("order flow, pinned: this sandbox / baseline, flows/s (per round)", pin_x, nil, "x", 2)
    end
    print(("  (baseline %s)"):format(BASELINE))
end
print(("  (sandbox %s, %.2fx nginx by medians)"):format(os.getenv("TC_SANDBOX") or "tc-sandbox",
                                                       sb_rate / ng_rate))

client:close()
sb:stop()
if base then
    base_client:close()
    base:stop()
end
