-- core_errors_spec: the error table of the C core (errors.c): core.error and
-- its __tostring, on errors of every size (pure, no I/O).
local core = require "ticketscloud.core"

describe("core.error tostring", function()
    it("reads kind, status and messages", function()
        local err = core.error{ kind = "api", status = 400,
                                messages = { "Deal not found", { code = 3, msg = "bad code" } } }
        assert.equal("ticketscloud: api error (400): Deal not found; bad code", tostring(err))
        assert.equal("ticketscloud: auth error", tostring(core.error{ kind = "auth" }))
    end)

    it("renders a message longer than the string buffer's first block", function()
        local long = string.rep("x", 5000)
        local s = tostring(core.error{ kind = "api", status = 400, messages = { long, "tail" } })
        assert.equal("ticketscloud: api error (400): " .. long .. "; tail", s)
    end)

    it("renders many messages, as a long answer of the service has", function()
        local messages, parts = {}, {}
        for i = 1, 300 do
            messages[i] = "message number " .. i
            parts[i] = messages[i]
        end
        messages[301] = { code = 1, msg = string.rep("m", 3000) }
        messages[302] = { code = 2 }
        messages[303] = true
        parts[301], parts[302], parts[303] = string.rep("m", 3000), "?", "boolean"
        local s = tostring(core.error{ kind = "api", status = 400, messages = messages })
        assert.equal("ticketscloud: api error (400): " .. table.concat(parts, "; "), s)
    end)
end)
