-- ticketscloud.json: the module's JSON, read and written by the C core
-- (src/json.c, over yajl). Integer numbers decode as Lua integers (on Lua
-- 5.3+), JSON null as `null` (a light userdata, equal to cjson.null).
-- Arrays decode as tables marked with `array`, and a marked table encodes
-- as an array even when empty: [] stays [] through decode and encode.

local core = require "ticketscloud.core"

local _M = { _VERSION = core._VERSION }

_M.null = core.json_null

-- Marks t (or a new table) as a JSON array; returns it.
_M.array = core.json_array

-- Encodes a checked value; returns the JSON text or nil, err (kind invalid).
-- encode(value, true): keys sorted and indented, for files people diff.
_M.encode = core.json_encode

-- Decodes JSON text; returns the value or nil, message.
_M.decode = core.json_decode

return _M
