-- ticketscloud.sandbox: start and stop a tc-sandbox process from Lua.
--
--   local sandbox = require "ticketscloud.sandbox"
--   local sb = assert(sandbox.start{ expire = 5 })
--   local client = tc.new{ key = sb.key, api = sb.api, simple = sb.simple }
--   ...
--   sb:stop()
--
-- The binary is opts.bin, else $TC_SANDBOX, else `tc-sandbox` from PATH,
-- else the checkout's own build: build/tc-sandbox next to the lua/ directory
-- this file was loaded from (so a checkout needs no install); when none is
-- found, nil, err says where it looked. It listens on free loopback ports;
-- start() returns the handle once it printed its ready line, or nil, err.
-- The sandbox's own log goes to opts.log (a file name) or to stderr.
--
-- With opts.tls = { cert = PEM_FILE, key = PEM_FILE } both listeners speak
-- TLS: sb.api is "https://127.0.0.1:P", sb.simple "127.0.0.1:P" (gRPC over
-- TLS) and sb.tls is true; a client then needs ca_file = the CA that signed
-- the certificate. Without TLS, sb.simple is "http://127.0.0.1:P" (plaintext
-- gRPC), as the ready line says. sb.grpc is always the bare "127.0.0.1:P".
--
-- The key (opts.key, else the documentation's sample key) goes to the
-- sandbox in a file of its own (--key-file, made private by os.tmpname and
-- removed once the sandbox is up), never on its command line, where every
-- local user could read it.
--
-- opts.faults = SPEC is passed as --faults SPEC: the sandbox then fails on
-- purpose, e.g. "orders.create:drop_after=1" (see docs/sandbox.md). With
-- opts.seed as well, the same requests meet the same faults in every run.

local core = require "ticketscloud.core"

local debug_getinfo = debug.getinfo
local getmetatable = getmetatable
local io_open = io.open
local io_popen = io.popen
local ipairs = ipairs
local newproxy = rawget(_G, "newproxy") -- Lua 5.1 and LuaJIT only
local os_execute = os.execute
local os_getenv = os.getenv
local os_remove = os.remove
local os_tmpname = os.tmpname
local concat = table.concat
local setmetatable = setmetatable
local tonumber = tonumber
local tostring = tostring
local type = type

local fail = core.fail

local _M = { _VERSION = core._VERSION }

-- The sample key of the Ticketscloud documentation; the sandbox's default.
_M.DEFAULT_KEY = "9bd8359943b545500278875r49c5b96d"

local mt = { __index = _M }

local function quote(s)
    return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- Whether `name` is a command the shell finds on PATH.
local function on_path(name)
    local p = io_popen("command -v " .. quote(name) .. " 2>/dev/null")
    if not p then return false end
    local found = p:read("*l")
    p:close()
    return found ~= nil and found ~= ""
end

-- build/tc-sandbox of the checkout this file belongs to: this file is
-- CHECKOUT/lua/ticketscloud/sandbox.lua. nil when it is not in a checkout
-- (installed modules have no build/ beside them) or not built yet; the
-- second value is where it looked.
local function checkout_build()
    local src = debug_getinfo(1, "S").source
    local dir = src:sub(1, 1) == "@" and src:match("^@(.*)/ticketscloud/[^/]*$")
    if not dir then return nil, "(this file's path is unknown)" end
    local path = (dir:match("^(.*)/[^/]*$") or ".") .. "/build/tc-sandbox"
    local f = io_open(path, "r")
    if not f then return nil, path end
    f:close()
    return path, path
end

-- opts.bin, $TC_SANDBOX, tc-sandbox from PATH, the checkout's build: the
-- first that exists. nil, err saying where it looked.
local function find_bin(opts)
    local bin = opts.bin or os_getenv("TC_SANDBOX")
    if bin then return bin end
    if on_path("tc-sandbox") then return "tc-sandbox" end
    local built, where = checkout_build()
    if built then return built end
    return fail("transport", "tc-sandbox not found: not on PATH, not at " .. where ..
                " (run make, or pass bin = FILE or set TC_SANDBOX)")
end

-- opts: bin, catalog, key, expire, seed, faults, tls, log, args (a list of extra arguments)
function _M.start(opts)
    opts = core.check_arg(opts, "table?", "start", 1) or {}
    local bin, nf = find_bin(opts)
    if not bin then return nil, nf end
    local key = opts.key or _M.DEFAULT_KEY
    local key_file = os_tmpname() -- mkstemp: readable by this user alone
    local f = io_open(key_file, "w")
    if not f then return fail("transport", "cannot write the key file " .. key_file) end
    f:write(key, "\n")
    f:close()
    local argv = { quote(bin), "--http", "127.0.0.1:0", "--grpc", "127.0.0.1:0",
                   "--key-file", quote(key_file) }
    if opts.catalog then argv[#argv + 1] = "--catalog " .. quote(opts.catalog) end
    if opts.expire then argv[#argv + 1] = "--expire " .. quote(opts.expire) end
    if opts.seed then argv[#argv + 1] = "--seed " .. quote(opts.seed) end
    if opts.faults then argv[#argv + 1] = "--faults " .. quote(opts.faults) end
    if opts.tls then
        if type(opts.tls) ~= "table" or not opts.tls.cert or not opts.tls.key then
            os_remove(key_file)
            return fail("invalid", "tls: { cert = FILE, key = FILE } expected")
        end
        argv[#argv + 1] = "--tls-cert " .. quote(opts.tls.cert)
        argv[#argv + 1] = "--tls-key " .. quote(opts.tls.key)
    end
    if type(opts.args) == "table" then
        for _, a in ipairs(opts.args) do argv[#argv + 1] = quote(a) end
    end
    if opts.log then argv[#argv + 1] = "2>>" .. quote(opts.log) end

    -- The shell prints its pid, then becomes the sandbox: that pid is the
    -- sandbox's, so stop() can signal it.
    local proc, err = io_popen("echo $$; exec " .. concat(argv, " "), "r")
    if not proc then
        os_remove(key_file)
        return fail("transport", "cannot start tc-sandbox: " .. tostring(err))
    end
    local pid = tonumber(proc:read("*l"))
    local seen = {}
    for line in proc:lines() do
        -- grpc= is a target as it is: http://HOST:PORT for plaintext, HOST:PORT for TLS.
        local http, simple = line:match("^tc%-sandbox ready http=(%S+) grpc=(%S+)")
        if http then
            os_remove(key_file) -- read before the ready line
            local tls = http:find("^https://") ~= nil
            local sb = setmetatable({ pid = pid, proc = proc, key = key, api = http, tls = tls,
                                      simple = simple, grpc = (simple:gsub("^http://", "")) }, mt)
            if newproxy then
                -- Lua 5.1 and LuaJIT run __gc only for userdata: a proxy stops
                -- the sandbox when the handle is collected or the state closes
                -- (before the pipe's own finalizer, which would wait for it).
                sb.gc = newproxy(true)
                getmetatable(sb.gc).__gc = function() _M.stop(sb) end
            end
            return sb
        end
        seen[#seen + 1] = line
    end
    proc:close()
    os_remove(key_file)
    return fail("transport", "tc-sandbox did not start (" .. bin .. ")" ..
                (#seen > 0 and (": " .. concat(seen, "\n")) or ""))
end

-- Stops the sandbox (SIGTERM) and waits for it. Returns true when it exited
-- with status 0. Calling it again does nothing.
function _M.stop(self)
    local proc = self.proc
    if not proc then return true end
    self.proc = nil
    os_execute("kill -TERM " .. self.pid .. " 2>/dev/null")
    proc:read("*a")
    local ok, how, code = proc:close()
    if ok == true then return true end
    -- Lua 5.1 / LuaJIT report the raw wait status as a number.
    if type(ok) == "number" then return ok == 0 end
    return false, how, code
end

-- Sends SIGKILL: for tests that need a sandbox that vanished mid-call.
function _M.kill(self)
    if self.proc then os_execute("kill -KILL " .. self.pid .. " 2>/dev/null") end
end

mt.__gc = _M.stop
mt.__close = _M.stop

return _M
