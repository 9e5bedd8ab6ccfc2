-- Checks the API reference against the module itself (tools/check-docs runs
-- it after `make docs`):
--
--   lua5.4 tools/check-docs.lua ENTRIES
--
-- with LUA_PATH and LUA_CPATH on the checkout's lua/ and built module.
-- ENTRIES is what LDoc knows of the reference (tools/ldoc_entries.lua).
--
-- It loads the real module and enumerates its public functions at run time:
-- tc.*, the client's methods (its class, with the catalogue and refund
-- methods wired in), tc.money, both kinds of stream, the order's methods
-- (from an order object's metatable), flows, tc.time, sandbox, nginx and
-- its transport, rest and core.encode/decode. Each must have an entry with
-- an example, and each function entry must be a real function. Every file
-- of lua/ticketscloud/ must be public (listed below) or declared internal;
-- every error kind the code makes must be in the Error entry, and every
-- option tc.new reads in the options entry. It prints each problem and
-- exits 1 when there is any.

local tc = require "ticketscloud"
local core = require "ticketscloud.core"

local entries_file = assert(arg[1], "usage: check-docs.lua ENTRIES")

-- Files of lua/ticketscloud/ that are not public, and why. A new file must
-- be added here or to the reference (config.ld) with doc comments.
local INTERNAL = {
    answers = "what an answer means and must hold; the client's",
    pages = "the paged lists; their stream is ListStream of ticketscloud",
    json = "JSON text; rest re-exports what is public",
    catalogue = "its methods are the client's (Client:events, ...)",
    refunds = "its methods are the client's (Client:create_refund, ...)",
    nginx_thread = "the side of ticketscloud.nginx that runs in nginx's thread pool",
}
-- Functions of public module tables that are the module's own.
local INTERNAL_FUNCTIONS = {
    ["ticketscloud.order"] = { wrap = "makes an order for the client",
                               verify = "the client's checks of a creation" },
}
-- The public part of the C core (the rest is internal: docs/architecture.md).
local PUBLIC_CORE = { "encode", "decode" }

local problems = {}
local function problem(fmt, ...)
    problems[#problems + 1] = fmt:format(...)
end

-- What the reference holds.
local entries, fields, texts = {}, {}, {}
for line in assert(io.open(entries_file)):lines() do
    local what, mod, name, a, b = line:match("^(%u+)\t([^\t]*)\t([^\t]*)\t?([^\t]*)\t?([^\t]*)$")
    if what == "ENTRY" then
        entries[mod] = entries[mod] or {}
        entries[mod][name] = { kind = a, usage = b == "usage" }
    elseif what == "FIELD" then
        fields[mod .. "\t" .. name] = fields[mod .. "\t" .. name] or {}
        fields[mod .. "\t" .. name][a] = true
    elseif what == "TEXT" then
        texts[mod .. "\t" .. name] = a
    end
end
if next(entries) == nil then
    problem("%s holds no entries: did LDoc run?", entries_file)
end

local function sorted_functions(t)
    local names = {}
    for k, v in pairs(t) do
        if type(k) == "string" and type(v) == "function" then names[#names + 1] = k end
    end
    table.sort(names)
    return names
end

-- Every runtime function, as "module\tname" of the reference: a function
-- may be documented under any of its acceptable names (a function of tc is
-- tc.new or a client method: the client's class is the module table).
local known = {} -- "module\tname" -> true: names that a function has
local count = 0
local function expect(mod, names, origin)
    -- The client's class is tc itself, and both lists share one stream class.
    if known[mod .. "\t" .. names[1]] then return end
    count = count + 1
    local found
    for _, name in ipairs(names) do
        known[mod .. "\t" .. name] = true
        local e = entries[mod] and entries[mod][name]
        if e then
            found = true
            if not e.usage then problem("%s: %s has no @usage example", mod, name) end
        end
    end
    if not found then
        problem("%s: %s has no entry in the reference (%s)", mod, table.concat(names, " or "),
                origin)
    end
end

local function methods_of(object, what)
    local mt = getmetatable(object)
    local index = type(mt) == "table" and mt.__index
    if type(index) ~= "table" then
        problem("cannot find the methods of %s", what)
        return {}
    end
    return index
end

-- ticketscloud: tc.*, the client's methods, tc.money, the streams.
local client = assert(tc.new{ key = "check-docs-key" })
local class = methods_of(client, "a client")
for _, t in ipairs{ tc, class } do
    for _, name in ipairs(sorted_functions(t)) do
        expect("ticketscloud", { name, "Client:" .. name }, "tc." .. name)
    end
end
for _, name in ipairs(sorted_functions(tc.money)) do
    expect("ticketscloud", { "money." .. name }, "tc.money." .. name)
end
for _, list in ipairs{ "orders", "refunds" } do
    local stream = assert(client[list](client, {}))
    for _, name in ipairs(sorted_functions(methods_of(stream, "client:" .. list .. "{}"))) do
        expect("ticketscloud", { "ListStream:" .. name }, "client:" .. list .. "{}:" .. name)
    end
    stream:close()
end
local catalogue_mt = debug.getregistry()["ticketscloud.Stream"]
if type(catalogue_mt) ~= "table" or type(catalogue_mt.__index) ~= "table" then
    problem("the catalogue streams' metatable ticketscloud.Stream is not registered")
else
    for _, name in ipairs(sorted_functions(catalogue_mt.__index)) do
        expect("ticketscloud", { "CatalogueStream:" .. name }, "a catalogue stream's " .. name)
    end
end

-- ticketscloud.order: the order object's methods, from a real order.
local orders = require "ticketscloud.order"
local order = orders.wrap(client, { data = { id = ("0"):rep(24), tickets = {} }, refs = {} })
for _, name in ipairs(sorted_functions(methods_of(order, "an order"))) do
    expect("ticketscloud.order", { "Order:" .. name }, "order:" .. name)
end
client:close()

-- Modules whose table holds their functions; the methods of their objects.
local nginx = require "ticketscloud.nginx"
local transport = nginx.transport{ location = "/check-docs", key = "check-docs-key" }
local nginx_client = assert(nginx.new{ key = "check-docs-key" })
-- The methods the nginx client shares with tc.new's client are documented there.
local tc_methods = {}
for _, name in ipairs(sorted_functions(class)) do tc_methods[name] = true end
local PUBLIC = {
    ticketscloud = true, -- above
    order = { module = orders },
    flows = { module = require "ticketscloud.flows" },
    time = { module = require "ticketscloud.time" },
    -- a sandbox handle's class is the module table: start, or Sandbox:stop
    sandbox = { module = require "ticketscloud.sandbox", class = "Sandbox" },
    -- A listing of the nginx client exists only inside nginx (spec/nginx_threads_spec.lua
    -- walks them); its methods are those of a catalogue stream, named here.
    nginx = { module = nginx, objects = { Transport = transport, Client = nginx_client },
              shared = { Client = tc_methods }, methods = { Listing = { "next", "error", "close" } } },
    rest = { module = require "ticketscloud.rest" },
    snapshot = { module = require "ticketscloud.snapshot" },
    seating = { module = require "ticketscloud.seating" },
    hall = { module = require "ticketscloud.hall" },
    cli = { module = require "ticketscloud.cli" },
}
for short, spec in pairs(PUBLIC) do
    if spec ~= true then
        local mod = "ticketscloud." .. short
        local internal = INTERNAL_FUNCTIONS[mod] or {}
        for _, name in ipairs(sorted_functions(spec.module)) do
            if not internal[name] then
                local names = { name }
                if spec.class then names[2] = spec.class .. ":" .. name end
                expect(mod, names, mod .. "." .. name)
            end
        end
        for class_name, object in pairs(spec.objects or {}) do
            for _, name in ipairs(sorted_functions(methods_of(object, class_name))) do
                if not (spec.shared and spec.shared[class_name] and spec.shared[class_name][name]) then
                    expect(mod, { class_name .. ":" .. name }, class_name .. ":" .. name)
                end
            end
        end
        for class_name, names in pairs(spec.methods or {}) do
            for _, name in ipairs(names) do
                expect(mod, { class_name .. ":" .. name }, class_name .. ":" .. name)
            end
        end
    end
end
transport:close()
nginx_client:close()

for _, name in ipairs(PUBLIC_CORE) do
    if type(core[name]) ~= "function" then
        problem("ticketscloud.core.%s is not a function", name)
    else
        expect("ticketscloud.core", { name }, "core." .. name)
    end
end

-- Every file of lua/ticketscloud/ is public or internal.
local listing = assert(io.popen("ls lua/ticketscloud"))
for file in listing:lines() do
    local short = file:match("^(.*)%.lua$")
    if short and short ~= "init" and not PUBLIC[short] and not INTERNAL[short] then
        problem("lua/ticketscloud/%s is neither in the reference nor declared internal "
                .. "(tools/check-docs.lua)", file)
    end
end
listing:close()
for short in pairs(INTERNAL) do
    if entries["ticketscloud." .. short] then
        problem("ticketscloud.%s is declared internal but has a page in the reference", short)
    end
end

-- Every function entry is a function of the module.
for mod, items in pairs(entries) do
    for name, e in pairs(items) do
        if e.kind == "function" and not known[mod .. "\t" .. name] then
            problem("%s: the reference documents %s, which the module does not have", mod, name)
        end
    end
end

-- Every error kind the code makes is in the Error entry.
local function read(path)
    local f = assert(io.open(path))
    local text = f:read("a")
    f:close()
    return text
end
local kinds = {}
for kind in read("src/private.h"):gmatch('#define TC_E%u+%s+"([%w_]+)"') do kinds[kind] = "src/private.h" end
listing = assert(io.popen("ls lua/ticketscloud/*.lua"))
for path in listing:lines() do
    local text = read(path)
    for kind in text:gmatch('fail%("([%w_]+)"') do kinds[kind] = path end
    for kind in text:gmatch('kind%s*=%s*"([%w_]+)"') do kinds[kind] = path end
end
listing:close()
local error_text = texts["ticketscloud\tError"]
if not error_text then
    problem("ticketscloud: the Error entry is missing")
else
    for kind, where in pairs(kinds) do
        if not error_text:find("`" .. kind .. "`", 1, true) then
            problem("ticketscloud: the Error entry does not describe the kind %s (made in %s)",
                    kind, where)
        end
    end
end

-- Every option tc.new reads is in the options entry, and only those.
local options = {}
for name in read("src/options.c"):gmatch('get_field%(L, opts, "([%w_]+)"') do options[name] = true end
local new_body = read("lua/ticketscloud/init.lua"):match("\nfunction _M%.new%(opts%)(.-)\nend\n")
if not new_body then
    problem("cannot find tc.new in lua/ticketscloud/init.lua")
else
    for name in new_body:gmatch('check_field%(opts, "([%w_]+)"') do options[name] = true end
    for name in new_body:gmatch("opts%.([%w_]+)") do options[name] = true end
end
local documented = fields["ticketscloud\toptions"]
if not documented then
    problem("ticketscloud: the options entry is missing")
else
    for name in pairs(options) do
        if not documented[name] then problem("ticketscloud: option %s is not documented", name) end
    end
    for name in pairs(documented) do
        if not options[name] then
            problem("ticketscloud: the options entry documents %s, which tc.new does not read", name)
        end
    end
end

table.sort(problems)
for _, p in ipairs(problems) do print(p) end
if #problems > 0 then
    print(("%d problems in the API reference"):format(#problems))
    os.exit(1)
end
print(("the reference documents all %d public functions, every error kind and every option")
      :format(count))
