-- ticketscloud.json: the module's JSON, through a private lua-cjson
-- instance. JSON null decodes as `null` (cjson.null, a light userdata); an
-- empty JSON array decodes as an empty table. Lists built by the module are
-- marked with `array` so that an empty one is encoded as [] and not as {}.

local core = require "ticketscloud.core"
local cjson = require "cjson.safe"

local getmetatable = getmetatable
local next = next
local pairs = pairs
local setmetatable = setmetatable
local tostring = tostring
local type = type

local _M = { _VERSION = core._VERSION }

local json = cjson.new()
_M.null = cjson.null

-- Lists we build carry this metatable; an empty one is encoded as [].
local array_mt = { __name = "ticketscloud.array" }

function _M.array(t)
    return setmetatable(t or {}, array_mt)
end

-- lua-cjson 2.1.0 (Debian's) has no array metatable of its own: an empty
-- marked list is swapped for a placeholder string that cannot occur in
-- checked data (control characters are refused), then for [] in the text.
local EMPTY = "\1[]\1"
local EMPTY_JSON = json.encode(EMPTY)

local function mark_empty(v)
    if type(v) ~= "table" then return v, false end
    if next(v) == nil then
        if getmetatable(v) == array_mt then return EMPTY, true end
        return v, false
    end
    local copy, changed = {}, false
    for k, item in pairs(v) do
        local c, ch = mark_empty(item)
        copy[k] = c
        changed = changed or ch
    end
    if changed then return copy, true end
    return v, false
end

-- Encodes a checked value; returns the JSON text or nil, err.
function _M.encode(value)
    local marked, changed = mark_empty(value)
    local text, err = json.encode(marked)
    if not text then
        return core.fail("invalid", "the body cannot be encoded as JSON: " .. tostring(err))
    end
    if changed then
        text = text:gsub(EMPTY_JSON:gsub("%p", "%%%0"), "[]")
    end
    return text
end

-- Decodes JSON text; returns the value or nil, message.
_M.decode = json.decode

return _M
