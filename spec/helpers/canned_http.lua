-- A one-shot HTTP server on loopback with a canned answer, for the answers
-- tc-sandbox never gives (a redirect, a body that is not JSON, a huge body).
--
--   lua5.4 spec/helpers/canned_http.lua STATUS BODY [HEADER...]
--
-- Prints "port N", serves one connection, then prints the request line and
-- the request headers it received, and exits. BODY "@N" means N bytes of "x".
local socket = require "socket"

local status, body = tonumber(arg[1]), arg[2]
local n = body:match("^@(%d+)$")
if n then body = ("x"):rep(tonumber(n)) end

local server = assert(socket.bind("127.0.0.1", 0))
local _, port = server:getsockname()
io.stdout:write("port ", port, "\n")
io.stdout:flush()
server:settimeout(10)
local conn = assert(server:accept())
conn:settimeout(5)
local seen, length = {}, 0
while true do
    local line = conn:receive("*l")
    if not line or line == "" then break end
    seen[#seen + 1] = line
    local l = line:match("^[Cc]ontent%-[Ll]ength:%s*(%d+)")
    if l then length = tonumber(l) end
end
if length > 0 then conn:receive(length) end
local head = { ("HTTP/1.1 %d Canned"):format(status), "Content-Length: " .. #body,
               "Connection: close" }
for i = 3, #arg do head[#head + 1] = arg[i] end
conn:send(table.concat(head, "\r\n") .. "\r\n\r\n" .. body)
conn:close()
server:close()
io.stdout:write(table.concat(seen, "\n"), "\n")
