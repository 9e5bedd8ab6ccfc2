#!/usr/bin/env lua5.4
-- nginx-conf.lua: renders examples/nginx.conf into a runnable nginx.conf.
--
--   lua5.4 tools/nginx-conf.lua [--port 8080] [--api https://ticketscloud.com]
--                               [--out build/nginx/nginx.conf] [--modules DIR]
--                               [--lua-path PATHS] [--lua-cpath PATHS]
--
-- It writes in the template's placeholders: the nginx modules directory
-- (Debian's, found; --modules none leaves out the load_module lines, for
-- OpenResty), the port, the checkout's lua/ and examples/ and its LuaJIT
-- build (make LUA=luajit module), and the REST API's scheme and host:port
-- from --api. Then it makes the prefix (the output's directory) with its
-- logs/ and temp/, and prints the command that starts nginx. --out - writes
-- the configuration to standard output and makes nothing.
-- make nginx-conf runs it (NGINX_PORT, NGINX_API).

local USAGE = [[
Usage: lua5.4 tools/nginx-conf.lua [--port N] [--api URL] [--out FILE|-] [--modules DIR|none]
                                   [--lua-path PATHS] [--lua-cpath PATHS] [--template FILE]
  --port N         the port nginx listens on, on 127.0.0.1 (default 8080)
  --api URL        the REST API (default https://ticketscloud.com); a tc-sandbox's
                   http://127.0.0.1:PORT as its ready line says
  --out FILE       where to write (default build/nginx/nginx.conf); - for standard output
  --modules DIR    nginx's modules directory (default: Debian's, found); none: no load_module
  --lua-path P     lua_package_path entries (default: the checkout's lua/ and examples/)
  --lua-cpath P    lua_package_cpath entries (default: the checkout's build/luajit/?.so)
  --template FILE  the template (default examples/nginx.conf)
]]

local MODULE_DIRS = { "/usr/lib/nginx/modules", "/usr/share/nginx/modules" }

local function die(message)
    io.stderr:write("nginx-conf: ", message, "\n")
    os.exit(2)
end

local function exists(path)
    local f = io.open(path, "r")
    if f then f:close() end
    return f ~= nil
end

local function shell_quote(s)
    return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- The checkout: the directory above this script's, made absolute (nginx
-- runs in its prefix, elsewhere).
local function checkout()
    local dir = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/.."
    local p = assert(io.popen("cd " .. shell_quote(dir) .. " && pwd -P"))
    local root = p:read("l")
    p:close()
    return root
end

local opts = { port = "8080", api = "https://ticketscloud.com", out = "build/nginx/nginx.conf" }
local i = 1
while i <= #arg do
    local name = arg[i]:match("^%-%-([%w-]+)$")
    if name == "help" then
        io.stdout:write(USAGE)
        os.exit(0)
    end
    local value = arg[i + 1]
    if not name or value == nil or not (name == "port" or name == "api" or name == "out" or
            name == "modules" or name == "lua-path" or name == "lua-cpath" or name == "template") then
        die("bad argument '" .. tostring(arg[i]) .. "'\n" .. USAGE)
    end
    opts[name] = value
    i = i + 2
end

local root = checkout()
local port = tonumber(opts.port)
if not port or port < 1 or port > 65535 or port % 1 ~= 0 then die("--port: 1 to 65535 expected") end
local scheme, server = opts.api:match("^(https?)://([^/]+)/?$")
if not scheme then die("--api: http(s)://host[:port] expected, got " .. opts.api) end
if not server:find(":%d+$") then server = server .. (scheme == "https" and ":443" or ":80") end

local modules = opts.modules
if not modules then
    for _, dir in ipairs(MODULE_DIRS) do
        if exists(dir .. "/ngx_http_lua_module.so") then
            modules = dir
            break
        end
    end
    if not modules then
        die("no nginx Lua module in " .. table.concat(MODULE_DIRS, " or ") ..
            " (Debian package libnginx-mod-http-lua); --modules none for OpenResty")
    end
end

local values = {
    MODULES = modules, PORT = tostring(math.tointeger(port)),
    LUA_PATH = opts["lua-path"] or (root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" ..
                                    root .. "/examples/?.lua"),
    LUA_CPATH = opts["lua-cpath"] or (root .. "/build/luajit/?.so"),
    API_SCHEME = scheme, API_SERVER = server,
}

local f = io.open(opts.template or (root .. "/examples/nginx.conf"), "r")
if not f then die("cannot read the template " .. tostring(opts.template)) end
local conf = f:read("a")
f:close()
if modules == "none" then conf = conf:gsub("\nload_module [^\n]*", "") end
conf = conf:gsub("@([%u_]+)@", function(name)
    return values[name] or die("the template has an unknown placeholder @" .. name .. "@")
end)

if opts.out == "-" then
    io.stdout:write(conf)
    os.exit(0)
end

local prefix = opts.out:match("^(.*)/[^/]*$") or "."
local ok = os.execute("mkdir -p " .. shell_quote(prefix .. "/logs") .. " " .. shell_quote(prefix .. "/temp"))
if not ok then die("cannot make " .. prefix) end
local out = io.open(opts.out, "w")
if not out then die("cannot write " .. opts.out) end
out:write(conf)
out:close()

local p = assert(io.popen("cd " .. shell_quote(prefix) .. " && pwd -P"))
local abs_prefix = p:read("l")
p:close()
local cpath = values.LUA_CPATH:match("^([^;]*)/%?%.so$")
if cpath and not exists(cpath .. "/ticketscloud/core.so") then
    io.stderr:write("nginx-conf: note: ", cpath, "/ticketscloud/core.so is not built yet ",
                    "(make LUA=luajit module)\n")
end
local env = ""
if opts.api ~= "https://ticketscloud.com" then
    env = "TICKETSCLOUD_API=" .. opts.api .. " TICKETSCLOUD_SIMPLE=<the gRPC target> "
end
print(("%s written. Start nginx with it, in the foreground:\n"
       .. "  TICKETSCLOUD_KEY=<your key> %snginx -p %s -c nginx.conf -e logs/error.log "
       .. "-g 'daemon off;'\nand stop it with nginx -p %s -c nginx.conf -s quit")
      :format(opts.out, env, abs_prefix, abs_prefix))
