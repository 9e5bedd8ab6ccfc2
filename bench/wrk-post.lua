-- bench/wrk-post.lua: makes wrk send POST requests with the JSON body in
-- $WRK_BODY (wrk runs this in its own LuaJIT). Other headers, such as
-- Authorization, come from wrk's -H options.
-- luacheck: globals wrk

wrk.method = "POST"
wrk.body = os.getenv("WRK_BODY")
wrk.headers["Content-Type"] = "application/json"
