-- A real nginx for the specs: Debian's nginx with libnginx-mod-http-lua (on
-- LuaJIT), started in the foreground in a fresh prefix with a generated
-- configuration, and what /proc says about its processes.
--
--   local ngx_helper = require "helpers.nginx"
--   local why = ngx_helper.missing()            -- nil, or why nginx cannot run here
--   local nginx = ngx_helper.start_or_fail(conf, { env = { NAME = value }, workers = 1 })
--   local status, doc = nginx:get("/path")      -- the JSON answer, decoded
--   nginx:stop("QUIT")  nginx:remove()
--
-- The LuaJIT build of the module is TC_LUAJIT_CPATH (tools/test sets it).
local cjson = require "cjson"
local http = require "socket.http"
local ltn12 = require "ltn12"
local socket = require "socket"

local M = {}

M.NGINX = os.getenv("TC_NGINX") or "/usr/sbin/nginx"
local MODULE_DIRS = { "/usr/lib/nginx/modules", "/usr/share/nginx/modules" }
M.HTTP_TIMEOUT = 20 -- seconds for one request to nginx

-- Pieces of the configurations that the specs and bench/nginx.lua write
-- (their @TEMP_PATHS@ and @API_LOCATION@): the http block's temporary files
-- under the prefix, and the internal location that ticketscloud.nginx's
-- REST subrequests go to, as in examples/nginx.conf (upstream tc_api; a
-- location that sends them sets $tc_auth and $tc_sandbox_delay).
M.TEMP_PATHS = [[
    client_body_temp_path temp/body;
    proxy_temp_path temp/proxy;
    fastcgi_temp_path temp/fastcgi;
    uwsgi_temp_path temp/uwsgi;
    scgi_temp_path temp/scgi;]]
M.API_LOCATION = [[
        location /_tc_api/ {
            internal;
            rewrite ^/_tc_api(/.*)$ $1 break;
            proxy_pass http://tc_api;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass_request_headers off;
            proxy_set_header Authorization $tc_auth;
            proxy_set_header Accept application/json;
            proxy_set_header Content-Type application/json;
            proxy_set_header X-Sandbox-Delay $tc_sandbox_delay;
            proxy_next_upstream off;
            proxy_read_timeout 5s;
        }]]

local function exists(path)
    local f = io.open(path, "r")
    if f then f:close() end
    return f ~= nil
end
M.exists = exists

function M.read_file(path)
    local f = assert(io.open(path, "r"))
    local s = f:read("a")
    f:close()
    return s
end

local function write_file(path, text)
    local f = assert(io.open(path, "w"))
    assert(f:write(text))
    f:close()
end

local function shell_quote(s)
    return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function run(cmd)
    local p = assert(io.popen(cmd, "r"))
    local out = p:read("a")
    p:close()
    return (out:gsub("%s+$", ""))
end
M.run = run

-- The directory of the Debian modules (the NDK one and the Lua one), or nil.
function M.module_dir()
    for _, dir in ipairs(MODULE_DIRS) do
        if exists(dir .. "/ngx_http_lua_module.so") and exists(dir .. "/ndk_http_module.so") then
            return dir
        end
    end
end

-- Why nginx cannot run the module here, or nil.
function M.missing()
    if not exists(M.NGINX) then return "nginx is not installed (Debian package nginx)" end
    if not M.module_dir() then
        return "the nginx Lua module is not installed (Debian package libnginx-mod-http-lua)"
    end
    if not os.getenv("TC_LUAJIT_CPATH") then
        return "TC_LUAJIT_CPATH is not set: the LuaJIT build of the module, " ..
               "e.g. build/luajit/?.so after make LUA=luajit module"
    end
end

M.ROOT = run("pwd -P")

-- A path list with its relative entries made absolute (nginx runs elsewhere).
function M.absolute(list)
    local out = {}
    for entry in list:gmatch("[^;]+") do
        if entry:sub(1, 1) ~= "/" then entry = M.ROOT .. "/" .. entry end
        out[#out + 1] = entry
    end
    return table.concat(out, ";")
end

---------------------------------------------------------------------------
-- /proc

function M.alive(pid)
    local f = io.open("/proc/" .. pid .. "/stat", "r")
    if not f then return false end
    local stat = f:read("a") or ""
    f:close()
    local state = stat:match("^%d+ %b() (%a)")
    return state ~= nil and state ~= "Z" -- an unreaped zombie has exited
end

-- The threads of a process.
function M.tasks(pid)
    local n = 0
    for _ in run("ls /proc/" .. pid .. "/task"):gmatch("%d+") do n = n + 1 end
    return n
end

function M.children(pid)
    local f = io.open(("/proc/%d/task/%d/children"):format(pid, pid), "r")
    if not f then return {} end
    local list = {}
    for child in f:read("a"):gmatch("%d+") do list[#list + 1] = tonumber(child) end
    f:close()
    table.sort(list)
    return list
end

-- The open file descriptors of a process.
function M.fds(pid)
    local n = 0
    for _ in run("ls /proc/" .. pid .. "/fd"):gmatch("%d+") do n = n + 1 end
    return n
end

-- The resident memory of a process, in KB.
function M.rss_kb(pid)
    return tonumber(M.read_file("/proc/" .. pid .. "/status"):match("\nVmRSS:%s*(%d+) kB"))
end

function M.free_port()
    local s = assert(socket.bind("127.0.0.1", 0))
    local _, port = s:getsockname()
    s:close()
    return tonumber(port)
end

---------------------------------------------------------------------------
-- nginx

local Nginx = {}
Nginx.__index = Nginx

-- Starts nginx in the foreground (daemon off) in a fresh prefix with conf
-- (its @PORT@ replaced by the port; or conf(port), a function, gives it),
-- and waits until it listens with its workers up. opts.env: the environment (what env directives pass to the
-- workers); opts.workers: how many (default 1). Returns the object, or nil
-- and what went wrong (with the error log).
local function start(conf, port, opts)
    if type(conf) == "function" then conf = conf(port) end
    conf = conf:gsub("@PORT@", tostring(port))
    local prefix = run("mktemp -d /tmp/tc-nginx.XXXXXX")
    assert(prefix:find("^/tmp/tc%-nginx%."), "mktemp failed")
    assert(os.execute("mkdir -p " .. prefix .. "/logs " .. prefix .. "/temp"))
    write_file(prefix .. "/nginx.conf", conf)
    local user = run("id -u") == "0" and " user root;" or ""
    local globals = "daemon off; master_process on;" .. user
    local env = {}
    for name, value in pairs(opts.env or {}) do
        env[#env + 1] = name .. "=" .. shell_quote(value)
    end
    -- The shell prints its pid and becomes nginx: that pid is the master's.
    -- The sanitizer runtime of the ASan run is not for nginx.
    local cmd = table.concat({
        "echo $$;",
        #env > 0 and ("export " .. table.concat(env, " ") .. ";") or "",
        "exec env -u LD_PRELOAD -u ASAN_OPTIONS -u LSAN_OPTIONS -u UBSAN_OPTIONS",
        shell_quote(M.NGINX), "-p", shell_quote(prefix .. "/"), "-c", shell_quote(prefix .. "/nginx.conf"),
        "-e", shell_quote(prefix .. "/logs/error.log"), "-g", shell_quote(globals),
        ">>" .. shell_quote(prefix .. "/logs/stdout.log"), "2>&1",
    }, " ")
    local proc = assert(io.popen(cmd, "r"))
    local pid = tonumber(proc:read("l"))
    local self = setmetatable({ proc = proc, pid = pid, prefix = prefix, port = port,
                                base = "http://127.0.0.1:" .. port }, Nginx)
    local deadline = socket.gettime() + 15
    while socket.gettime() < deadline do
        if not M.alive(pid) then break end
        local c = socket.tcp()
        c:settimeout(0.5)
        local connected = c:connect("127.0.0.1", port)
        c:close()
        if connected and #M.children(pid) == (opts.workers or 1)
           and exists(prefix .. "/logs/nginx.pid") then
            return self
        end
        socket.sleep(0.05)
    end
    local log = self:log()
    self:stop()
    self:remove()
    return nil, "nginx did not start:\n" .. log
end

-- Starts nginx on a free port (another process may take it first: tried
-- three times); raises when it does not start.
function M.start_or_fail(conf, opts)
    local nginx, err
    for _ = 1, 3 do
        nginx, err = start(conf, M.free_port(), opts or {})
        if nginx or not err:find("Address already in use", 1, true) then break end
    end
    if not nginx then error(err) end
    return nginx
end

function Nginx:log()
    local f = io.open(self.prefix .. "/logs/error.log", "r")
    if not f then return "" end
    local s = f:read("a")
    f:close()
    return s
end

function Nginx:running()
    return self.proc ~= nil and M.alive(self.pid)
end

function Nginx:workers()
    return M.children(self.pid)
end

-- Sends the signal and waits for the master to exit; after the grace time
-- kills it and its workers. Returns true when it exited by itself.
function Nginx:stop(signal, grace)
    if not self.proc then return true end
    local workers = M.children(self.pid)
    os.execute(("kill -%s %d 2>/dev/null"):format(signal or "QUIT", self.pid))
    local deadline = socket.gettime() + (grace or 10)
    while M.alive(self.pid) and socket.gettime() < deadline do socket.sleep(0.05) end
    local by_itself = not M.alive(self.pid)
    if not by_itself then
        for _, w in ipairs(workers) do os.execute("kill -KILL " .. w .. " 2>/dev/null") end
        os.execute("kill -KILL " .. self.pid .. " 2>/dev/null")
    end
    local proc = self.proc
    self.proc = nil
    local ok = proc:close() -- reaps the master
    return by_itself and ok == true
end

-- Reloads (HUP) and waits until workers new workers (none of the old)
-- serve; returns their pids.
function Nginx:reload(workers)
    local old = M.children(self.pid)
    assert(os.execute("kill -HUP " .. self.pid))
    local deadline = socket.gettime() + 15
    repeat
        socket.sleep(0.02)
        local new = M.children(self.pid)
        local fresh = #new == (workers or 1)
        for _, w in ipairs(new) do
            for _, o in ipairs(old) do if w == o then fresh = false end end
        end
        if fresh then return new end
    until socket.gettime() > deadline
    error("nginx did not reload:\n" .. self:log())
end

function Nginx:remove()
    if self.prefix then os.execute("rm -rf " .. shell_quote(self.prefix)) end
    self.prefix = nil
end

-- One HTTP request: status, decoded JSON body (nil when it is not JSON), raw body.
function Nginx:call(method, path, body, headers)
    local chunks = {}
    local h = { ["content-type"] = "application/json" }
    for k, v in pairs(headers or {}) do h[k] = v end
    if body then h["content-length"] = tostring(#body) end
    local ok, code = http.request{
        url = self.base .. path, method = method, headers = h,
        source = body and ltn12.source.string(body) or nil,
        sink = ltn12.sink.table(chunks),
        create = function()
            local c = socket.tcp()
            c:settimeout(M.HTTP_TIMEOUT)
            return c
        end,
    }
    assert(ok, ("%s %s: %s"):format(method, path, tostring(code)))
    local text = table.concat(chunks)
    local decoded, doc = pcall(cjson.decode, text)
    return code, decoded and doc or nil, text
end

function Nginx:get(path, headers)
    return self:call("GET", path, nil, headers)
end

-- POST /tc/order of examples/nginx_shop.lua.
function Nginx:order(args)
    return self:call("POST", "/tc/order", cjson.encode(args))
end

-- Sends a GET on a connection of its own and returns it without reading
-- the answer: a request left waiting while others are made.
function Nginx:send_get(path)
    local c = assert(socket.connect("127.0.0.1", self.port))
    assert(c:send("GET " .. path .. " HTTP/1.0\r\nHost: x\r\n\r\n"))
    return c
end

-- The answer of a request sent by send_get: status, decoded JSON, raw body.
function M.receive(c)
    c:settimeout(M.HTTP_TIMEOUT)
    local text = assert(c:receive("*a"))
    c:close()
    local status = tonumber(text:match("^HTTP/1%.%d (%d+)"))
    local body = text:match("\r\n\r\n(.*)$") or ""
    local decoded, doc = pcall(cjson.decode, body)
    return status, decoded and doc or nil, body
end

return M
