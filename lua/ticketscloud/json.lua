-- ticketscloud.json: the module's JSON, read and written by the C core
-- (src/json.c, over yajl). Integer numbers decode as Lua integers (on Lua
-- 5.3+), JSON null as `null` (a light userdata, equal to cjson.null); an
-- empty JSON array decodes as an empty table. Lists built by the module are
-- marked with `array` so that an empty one is encoded as [] and not as {}.

local core = require "ticketscloud.core"

local _M = { _VERSION = core._VERSION }

_M.null = core.json_null

-- Marks t (or a new table) as a JSON array; returns it.
_M.array = core.json_array

-- Encodes a checked value; returns the JSON text or nil, err (kind invalid).
_M.encode = core.json_encode

-- Decodes JSON text; returns the value or nil, message.
_M.decode = core.json_decode

return _M
