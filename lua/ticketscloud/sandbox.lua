--- Start and stop a tc-sandbox process from Lua: a stateful local Ticketscloud for specs,
-- examples and trying flows offline (docs/sandbox.md).
--
-- @{start} finds the binary (`opts.bin`, `$TC_SANDBOX`, `tc-sandbox` on `PATH`, else the
-- checkout's own `build/tc-sandbox`, so that a checkout needs no install), starts it on free
-- loopback ports and returns a @{Sandbox} once it printed its ready line. With `opts.tls`
-- both listeners speak TLS; with `opts.faults` (and `opts.seed`) it fails on purpose, e.g.
-- `"orders.create:drop_after=1"` (docs/sandbox.md). The key goes to the sandbox in a private
-- file of its own (`--key-file`, removed once the sandbox is up), never on its command line,
-- where every local user could read it.
-- @module ticketscloud.sandbox
-- @usage
-- local sandbox = require "ticketscloud.sandbox"
-- local sb = assert(sandbox.start{ expire = 5 })
-- local client = assert(tc.new{ key = sb.key, api = sb.api, simple = sb.simple })
-- ...
-- sb:stop()

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

--- The sample key of the Ticketscloud documentation: the sandbox's default key.
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

--- Starts a tc-sandbox on free loopback ports and waits for its ready line.
--
-- The binary is `opts.bin`, else `$TC_SANDBOX`, else `tc-sandbox` from `PATH`, else the
-- checkout's own `build/tc-sandbox` (next to the `lua/` directory this module was loaded
-- from). The sandbox's log goes to `opts.log` or to stderr.
-- @tparam[opt] table opts every field optional
-- @tparam[opt] string opts.bin the tc-sandbox binary
-- @tparam[opt] string opts.catalog a catalog file (docs/sandbox-catalog.md); default the
--   sandbox's, `examples/catalog.json` in a checkout
-- @tparam[opt] string opts.key the API key it accepts (default @{DEFAULT_KEY})
-- @tparam[opt] number opts.expire seconds an order lives (`--expire`)
-- @tparam[opt] string opts.faults network faults to inject (`--faults`, e.g.
--   `"orders.create:drop_after=1"`, docs/sandbox.md)
-- @tparam[opt] number opts.seed with `faults`: the same requests meet the same faults
-- @tparam[opt] table opts.tls `{ cert = PEM_FILE, key = PEM_FILE }`: both listeners speak TLS;
--   a client then needs `ca_file`, the CA that signed the certificate
-- @tparam[opt] string opts.log a file the sandbox's log is appended to
-- @tparam[opt] table opts.args a list of extra command-line arguments
-- @treturn Sandbox the running sandbox
-- @return[2] nil
-- @treturn[2] ticketscloud.Error err: kind `"transport"` when no binary was found (the message
--   says where it looked) or it did not start (with what it printed), kind `"invalid"` for a
--   `tls` that is not `{ cert =, key = }`
-- @raise when `opts` is neither nil nor a table
-- @usage
-- local sandbox = require "ticketscloud.sandbox"
-- local sb = assert(sandbox.start{ expire = 5 })
-- local client = assert(tc.new{ key = sb.key, api = sb.api, simple = sb.simple })
-- -- ... orders expire after 5 s here
-- client:close()
-- sb:stop()
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

--- A running tc-sandbox, returned by @{start}. Its fields: `api`, the REST base URL
-- (`"http://127.0.0.1:PORT"`, `https://` with TLS); `simple`, the gRPC target as `tc.new`
-- takes it (`"http://127.0.0.1:PORT"` for plaintext, `"127.0.0.1:PORT"` with TLS); `grpc`,
-- always the bare `"127.0.0.1:PORT"`; `key`, the key it accepts; `tls`, whether it speaks
-- TLS; `pid`, its process id. It is stopped when the handle is collected (and, on Lua 5.4,
-- by `<close>`).
-- @type Sandbox
-- @usage
-- local sb <close> = assert(require("ticketscloud.sandbox").start())
-- local client = assert(tc.new{ key = sb.key, api = sb.api, simple = sb.simple })

--- Stops the sandbox (SIGTERM) and waits for it to exit. Calling it again does nothing.
-- @function Sandbox:stop
-- @treturn boolean `true` when it exited with status 0 (and on every later call)
-- @treturn[2] boolean `false`
-- @return[2] how it ended (`"exit"` or `"signal"`, Lua 5.4)
-- @return[2] its exit status or signal number (Lua 5.4)
-- @usage
-- assert(sb:stop())
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

--- Kills the sandbox at once (SIGKILL): for tests that need a service that vanished mid-call.
-- @{Sandbox:stop} then reaps it.
-- @function Sandbox:kill
-- @usage
-- sb:kill()
-- print(client:order(ORDER_ID))   --> nil  ticketscloud: transport error: ...
-- sb:stop()
function _M.kill(self)
    if self.proc then os_execute("kill -KILL " .. self.pid .. " 2>/dev/null") end
end

mt.__gc = _M.stop
mt.__close = _M.stop

return _M
