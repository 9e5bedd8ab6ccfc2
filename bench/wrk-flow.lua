-- bench/wrk-flow.lua: makes wrk run the order flow of bench/sandbox_perf.lua
-- (wrk runs this in its own LuaJIT): POST an order of one ticket of the set
-- $WRK_FLOOR of event $WRK_EVENT, PATCH it to two tickets, PATCH it done,
-- and again. The next request depends on the last answer (the order id), so
-- each wrk thread must have exactly one connection (-t N -c N). The
-- Authorization header comes from wrk's -H option.
-- luacheck: globals wrk request response

local event, floor = os.getenv("WRK_EVENT"), os.getenv("WRK_FLOOR")
local CREATE = ('{"event":"%s","random":{"%s":1}}'):format(event, floor)
local ADD = ('{"random":{"%s":2}}'):format(floor)
local DONE = '{"status":"done"}'
wrk.headers["Content-Type"] = "application/json" -- beside -H Authorization

local step, id = 0, nil

function request()
    if step == 0 then
        return wrk.format("POST", "/v2/resources/orders", nil, CREATE)
    end
    return wrk.format("PATCH", "/v2/resources/orders/" .. id, nil, step == 1 and ADD or DONE)
end

function response(status, _, body)
    -- A failed step starts a new flow; wrk counts the non-2xx answer.
    if status ~= 200 then
        step = 0
    elseif step == 0 then
        id = body:match('"data":{.-"id":"(%x+)"')
        step = id and 1 or 0
    else
        step = (step + 1) % 3
    end
end
