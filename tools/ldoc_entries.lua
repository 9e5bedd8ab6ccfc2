-- An LDoc filter that prints what the API reference holds, from LDoc's own
-- data, for tools/check-docs.lua: run by LDoc's interpreter as
--
--   LUA_PATH='tools/?.lua;;' ldoc --filter ldoc_entries.list .
--
-- It prints, one line each, tab-separated (LDoc prints its progress notes
-- on the same stdout; they start with none of these words):
--
--   ENTRY  module  name  kind  usage   every item: "Client:send", "function",
--                                      and "usage" when it has an example, else "-"
--   FIELD  module  item  field         every field of a table item (options)
--   TEXT   module  item  text          an item's summary and description, on one line

local function one_line(s)
    return (tostring(s or ""):gsub("[\t\r\n]+", " "))
end

local function list(modules)
    for mod in modules:iter() do
        for item in mod.items:iter() do
            local usage = item.usage and #item.usage > 0 and "usage" or "-"
            print(table.concat({ "ENTRY", mod.name, item.name, item.type, usage }, "\t"))
            if item.type == "table" and item.params then
                for _, field in ipairs(item.params) do
                    print(table.concat({ "FIELD", mod.name, item.name, field }, "\t"))
                end
            end
            print(table.concat({ "TEXT", mod.name, item.name,
                                 one_line(item.summary) .. " " .. one_line(item.description) },
                               "\t"))
        end
    end
end

return { list = list }
