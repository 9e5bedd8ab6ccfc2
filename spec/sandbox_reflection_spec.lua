-- tc-sandbox's gRPC health service and server reflection, over real
-- sockets, driven by spec/interop/reflect.py: a client that knows no proto
-- file of ours and learns everything through reflection, as grpcurl does.
-- It lists the services, then builds the tc-simple messages from the
-- descriptors reflection returns and calls Events with them.

local cjson = require "cjson"
local sandbox = require "ticketscloud.sandbox"

local BIN = os.getenv("TC_SANDBOX") or "build/tc-sandbox"
local PYTHON = "/usr/bin/python3"
local CLIENT = "spec/interop/reflect.py"
-- The client is not ours: it runs without the sanitizer runtime that a
-- sanitizer test run preloads into this process and its children.
local PLAIN_ENV = "env -u LD_PRELOAD -u ASAN_OPTIONS -u LSAN_OPTIONS -u UBSAN_OPTIONS "

local SERVICES = { "v3.Simple", "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection",
                   "grpc.reflection.v1alpha.ServerReflection" }
local TC_FILES = { "service.proto", "artists.proto", "events.proto",
                   "google/protobuf/any.proto", "google/protobuf/timestamp.proto",
                   "generic.proto", "mods.proto", "geo.proto", "meta_events.proto",
                   "seats.proto", "tags.proto", "venues.proto" }

local function quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function read_file(path)
    local f = assert(io.open(path, "rb"))
    local s = f:read("a")
    f:close()
    return s
end

local CAT = cjson.decode(read_file("examples/catalog.json"))

-- Runs the client; returns its output lines.
local function run(sb, ...)
    local argv = { PYTHON, CLIENT, "--target", sb.grpc, ... }
    for i = 1, #argv do argv[i] = quote(argv[i]) end
    local p = assert(io.popen(PLAIN_ENV .. table.concat(argv, " ") .. " 2>&1"))
    local lines = {}
    for line in p:lines() do lines[#lines + 1] = line end
    p:close()
    return lines
end

-- A call through reflection: the decoded messages, the status and details.
local function call(sb, ...)
    local lines = run(sb, ...)
    local messages, status, details = {}, nil, nil
    for _, line in ipairs(lines) do
        local code, rest = line:match("^status (%u[%u_]*) ?(.*)$")
        if code then
            status, details = code, rest
        else
            messages[#messages + 1] = assert(cjson.decode(line), line)
        end
    end
    assert(status, "no status:\n" .. table.concat(lines, "\n"))
    return messages, status, details
end

local function raw(sb, ...)
    local out = {}
    for i, line in ipairs(run(sb, "raw", ...)) do out[i] = assert(cjson.decode(line), line) end
    return out
end

describe("tc-sandbox gRPC tooling", function()
    local sb

    setup(function()
        sb = assert(sandbox.start{ bin = BIN })
    end)

    teardown(function()
        assert.is_true(sb:stop())
    end)

    for _, alpha in ipairs{ false, true } do
        local version = alpha and "v1alpha" or "v1"
        local flag = alpha and "--alpha" or "--metadata=x-version=v1"

        it("reflection " .. version .. " lists the services, without an API key", function()
            assert.are.same(SERVICES, run(sb, flag, "list"))
        end)

        it("reflection " .. version .. " alone is enough to call Events", function()
            local events, status = call(sb, "--metadata", "authorization=" .. sb.key,
                                        flag, "call", "v3.Simple/Events",
                                        '{"ids": ["5d7134962110d30a34e95b96"]}')
            assert.are.equal("OK", status)
            assert.are.equal(1, #events)
            assert.are.equal("5d7134962110d30a34e95b96", events[1].id)
            assert.are.equal("Slipknot", events[1].name)
            assert.is_true(#events[1].sets > 0)
            -- every event, in catalog order
            local all = call(sb, "--metadata", "authorization=" .. sb.key, flag,
                             "call", "v3.Simple/Events", "{}")
            assert.are.equal(#CAT.events, #all)
            for i, e in ipairs(CAT.events) do assert.are.equal(e.id, all[i].id) end
        end)
    end

    it("the catalogue still wants the key, which reflection does not", function()
        local _, status, details = call(sb, "call", "v3.Simple/Countries", "{}")
        assert.are.equal("UNAUTHENTICATED", status)
        assert.are.equal("invalid API key", details)
    end)

    it("answers several reflection requests on one stream, in order", function()
        local out = raw(sb, '{"file_by_filename": "service.proto"}',
                        '{"file_containing_symbol": "v3.Event.TicketSet"}',
                        '{"file_containing_symbol": "v3.Simple.Seats"}',
                        '{"file_containing_symbol": "grpc.health.v1.HealthCheckResponse.SERVING"}',
                        '{"list_services": "*"}')
        assert.are.equal(5, #out)
        -- a file comes with every file it imports, itself first
        assert.are.same(TC_FILES, out[1].file_descriptor_response.file_descriptor_proto)
        assert.are.equal("events.proto", out[2].file_descriptor_response.file_descriptor_proto[1])
        assert.are.equal("service.proto", out[3].file_descriptor_response.file_descriptor_proto[1])
        assert.are.same({ "grpc/health/v1/health.proto" },
                        out[4].file_descriptor_response.file_descriptor_proto)
        assert.are.equal(4, #out[5].list_services_response.service)
        assert.are.same({ file_containing_symbol = "v3.Simple.Seats" }, out[3].original_request)
    end)

    it("answers what it cannot find with an error in the stream", function()
        local out = raw(sb, '{"file_by_filename": "nope.proto"}',
                        '{"file_containing_symbol": "v3.Nope"}',
                        '{"file_containing_extension": {"containing_type": "v3.Event", ' ..
                        '"extension_number": 100}}',
                        '{"all_extension_numbers_of_type": "v3.Event"}', "{}")
        assert.are.same({ error_code = 5, error_message = "file not found" }, out[1].error_response)
        assert.are.same({ error_code = 5, error_message = "symbol not found" }, out[2].error_response)
        assert.are.same({ error_code = 5, error_message = "extension not found" },
                        out[3].error_response)
        assert.are.same({ base_type_name = "v3.Event" }, out[4].all_extension_numbers_response)
        assert.are.same({ error_code = 3, error_message = "the request asks for nothing" },
                        out[5].error_response)
    end)

    it("health Check: SERVING for the server and each service, NOT_FOUND for others",
       function()
        for _, service in ipairs{ "", "v3.Simple", "grpc.health.v1.Health" } do
            local answers, status = call(sb, "call", "grpc.health.v1.Health/Check",
                                         cjson.encode{ service = service })
            assert.are.equal("OK", status)
            assert.are.same({ { status = "SERVING" } }, answers)
        end
        local answers, status, details = call(sb, "call", "grpc.health.v1.Health/Check",
                                              '{"service": "v2.Nope"}')
        assert.are.same({}, answers)
        assert.are.equal("NOT_FOUND", status)
        assert.are.equal("unknown service", details)
    end)

    it("health Watch: the status now, and the stream stays open", function()
        local answers, status = call(sb, "--first", "1", "call", "grpc.health.v1.Health/Watch",
                                     "{}")
        assert.are.same({ { status = "SERVING" } }, answers)
        assert.are.equal("CANCELLED", status) -- by the client, after the first answer
        answers = call(sb, "--first", "1", "call", "grpc.health.v1.Health/Watch",
                       '{"service": "v2.Nope"}')
        assert.are.same({ { status = "SERVICE_UNKNOWN" } }, answers)
    end)

    it("stops cleanly with a Watch open", function()
        local sb2 = assert(sandbox.start{ bin = BIN })
        local argv = { PYTHON, CLIENT, "--target", sb2.grpc, "call",
                       "grpc.health.v1.Health/Watch", "{}" }
        for i = 1, #argv do argv[i] = quote(argv[i]) end
        local p = assert(io.popen(PLAIN_ENV .. table.concat(argv, " ") .. " 2>&1"))
        assert.are.equal('{"status": "SERVING"}', p:read("l"))
        assert.is_true(sb2:stop())
        assert.matches("^status UNAVAILABLE", p:read("l"))
        p:close()
    end)
end)
