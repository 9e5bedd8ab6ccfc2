--- The two forms of a time in the API, and the one rule between them: `tc.time`. Orders carry
-- `"YYYY-MM-DD HH:MM:SS"` strings in UTC (spec §4.1: `created_at`, `expired_after`, ...); the
-- catalogue carries Unix seconds.
--
-- Plain arithmetic on the proleptic Gregorian calendar (days from a civil date and back), so
-- it does not depend on the local time zone or the range of `os.date`; the same on Lua 5.1
-- to 5.4 and LuaJIT.
-- @module ticketscloud.time
-- @usage
--   local tc = require "ticketscloud"
--   tc.time.parse("2019-09-05 12:00:00")  --> 1567684800 | nil, err
--   tc.time.format(1567684800)            --> "2019-09-05 12:00:00" | nil, err
--   tc.time.rfc3339(1567684800)           --> "2019-09-05T12:00:00Z" | nil, err

local core = require "ticketscloud.core"

local floor = math.floor
local tonumber = tonumber
local check_arg = core.check_arg
local fail = core.fail

local _M = { _VERSION = core._VERSION }

local PATTERN = "^(%d%d%d%d)-(%d%d)-(%d%d) (%d%d):(%d%d):(%d%d)$"
local DAY = 86400
-- Seconds of 0000-01-01 00:00:00 and past 9999-12-31 23:59:59 UTC: the
-- times the four-digit form can hold.
local FIRST = -62167219200
local LAST = 253402300799

-- Days since 1970-01-01 of a civil date (H. Hinnant's days_from_civil).
local function days_from_civil(y, m, d)
    if m <= 2 then y = y - 1 end
    local era = floor(y / 400)
    local yoe = y - era * 400
    local doy = floor((153 * (m > 2 and m - 3 or m + 9) + 2) / 5) + d - 1
    local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
    return era * 146097 + doe - 719468
end

-- The civil date of a day since 1970-01-01 (civil_from_days).
local function civil_from_days(z)
    z = z + 719468
    local era = floor(z / 146097)
    local doe = z - era * 146097
    local yoe = floor((doe - floor(doe / 1460) + floor(doe / 36524) - floor(doe / 146096)) / 365)
    local doy = doe - (365 * yoe + floor(yoe / 4) - floor(yoe / 100))
    local mp = floor((5 * doy + 2) / 153)
    local d = doy - floor((153 * mp + 2) / 5) + 1
    local m = mp < 10 and mp + 3 or mp - 9
    local y = yoe + era * 400
    if m <= 2 then y = y + 1 end
    return y, m, d
end

local function days_in_month(y, m)
    if m == 2 then
        local leap = y % 4 == 0 and (y % 100 ~= 0 or y % 400 == 0)
        return leap and 29 or 28
    end
    return (m == 4 or m == 6 or m == 9 or m == 11) and 30 or 31
end

--- Reads an order time: `"YYYY-MM-DD HH:MM:SS"` in UTC, a date and time that exist.
-- @tparam string text the time, as orders carry it
-- @treturn integer Unix seconds
-- @return[2] nil
-- @treturn[2] ticketscloud.Error err, kind `"invalid"`: text that is not that form, or not a
--   real date or time
-- @raise when `text` is not a string
-- @usage
-- local created = tc.time.parse(order.created_at)
-- print(os.time() - created, "seconds old")
-- tc.time.parse("2019-02-30 00:00:00")
-- --> nil  ticketscloud: invalid error: time: no such date or time: 2019-02-30 00:00:00
function _M.parse(text)
    check_arg(text, "string", "parse", 1)
    local y, mo, d, h, mi, s = text:match(PATTERN)
    if not y then
        return fail("invalid", "time: \"YYYY-MM-DD HH:MM:SS\" (UTC) expected")
    end
    y, mo, d, h, mi, s = tonumber(y), tonumber(mo), tonumber(d), tonumber(h), tonumber(mi),
                         tonumber(s)
    if mo < 1 or mo > 12 or d < 1 or d > days_in_month(y, mo) or h > 23 or mi > 59 or s > 59 then
        return fail("invalid", "time: no such date or time: " .. text)
    end
    return days_from_civil(y, mo, d) * DAY + h * 3600 + mi * 60 + s
end

--- Writes Unix seconds as an order time, `"YYYY-MM-DD HH:MM:SS"` in UTC; the fraction of a
-- second is dropped (rounded down).
-- @tparam number seconds Unix seconds within the years 0000 to 9999
-- @treturn string the time
-- @return[2] nil
-- @treturn[2] ticketscloud.Error err, kind `"invalid"`, outside the years 0000 to 9999 (or NaN)
-- @raise when `seconds` is not a number
-- @usage
-- tc.time.format(1567684800)   --> "2019-09-05 12:00:00"
-- tc.time.format(seat.ticket_reserved_till)   -- a catalogue time, as orders write it
function _M.format(seconds)
    check_arg(seconds, "number", "format", 1)
    if not (seconds >= FIRST and seconds < LAST + 1) then -- also NaN
        return fail("invalid", "time: Unix seconds of the years 0000 to 9999 expected")
    end
    seconds = floor(seconds)
    local days = floor(seconds / DAY)
    local rest = seconds - days * DAY
    local y, m, d = civil_from_days(days)
    return ("%04d-%02d-%02d %02d:%02d:%02d"):format(y, m, d, floor(rest / 3600),
                                                    floor(rest % 3600 / 60), rest % 60)
end

--- Writes Unix seconds in RFC 3339, the form of a `google.protobuf.Timestamp` in proto3 JSON
-- (a tc-sandbox catalog), with the fraction of a second when there is one (to the nanosecond).
-- @function rfc3339
-- @tparam number seconds Unix seconds
-- @treturn string `"YYYY-MM-DDTHH:MM:SSZ"`, or `"...:SS.fffZ"` with a fraction
-- @return[2] nil
-- @treturn[2] ticketscloud.Error err, kind `"invalid"`, outside the years 0000 to 9999 (or NaN)
-- @raise when `seconds` is not a number
-- @usage
-- tc.time.rfc3339(1567684800)      --> "2019-09-05T12:00:00Z"
-- tc.time.rfc3339(1567684800.25)   --> "2019-09-05T12:00:00.25Z"
function _M.rfc3339(seconds)
    check_arg(seconds, "number", "rfc3339", 1)
    local text, err = _M.format(seconds)
    if not text then return nil, err end
    text = text:gsub(" ", "T", 1)
    local nanos = floor((seconds - floor(seconds)) * 1e9 + 0.5)
    if nanos > 0 and nanos < 1000000000 then
        text = text .. ("%09d"):format(nanos):gsub("0+$", ""):gsub("^", ".")
    end
    return text .. "Z"
end

return _M
