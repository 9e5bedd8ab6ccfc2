-- TLS for real: tc-sandbox with --tls-cert / --tls-key, and the module's
-- certificate verification, which is on by default, for REST (libcurl) and
-- gRPC alike.
--
-- A throwaway CA and server certificates are made at test time with the
-- openssl command, in a temporary directory removed at the end: one for
-- 127.0.0.1 and localhost, one for another host name.

local sandbox = require "ticketscloud.sandbox"
local tc = require "ticketscloud"

local BIN = os.getenv("TC_SANDBOX") or "build/tc-sandbox"
local EVENT = "5d7134962110d30a34e95b96" -- the order example's event
local FAN = "5d7135112110d30a34e97e2d"   -- its "Фан зона" set, unseated
local EVENTS = 7                         -- events of examples/catalog.json

local function quote(s)
    return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- Runs a shell command line; returns its output (stdout and stderr) and its
-- exit status. Commands that are not ours (openssl, curl) must not inherit
-- the sanitizer preload of the ASan run.
local function run(cmd)
    local f = assert(io.popen("env -u LD_PRELOAD sh -c " .. quote(cmd .. " 2>&1; echo \"rc=$?\"")))
    local out = f:read("a")
    f:close()
    local text, rc = out:match("^(.-)rc=(%d+)\n$")
    return text, tonumber(rc)
end

local function must(cmd)
    local out, rc = run(cmd)
    assert(rc == 0, cmd .. "\n" .. tostring(out))
    return out
end

local function write_file(path, text)
    local f = assert(io.open(path, "w"))
    f:write(text)
    f:close()
end

local function messages(err)
    return table.concat(err.messages or {}, "\n")
end

describe("TLS", function()
    local dir, ca, good, wrong
    local serial = 0

    -- A key and a certificate signed by the test CA, for the subjectAltName.
    local function issue(name, san)
        serial = serial + 1
        local base = dir .. "/" .. name
        write_file(base .. ".ext", "subjectAltName = " .. san .. "\n" ..
                   "basicConstraints = CA:FALSE\nextendedKeyUsage = serverAuth\n")
        must("openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=" ..
             name .. " -keyout " .. quote(base .. ".key") .. " -out " .. quote(base .. ".csr"))
        must("openssl x509 -req -days 1 -set_serial " .. serial .. " -in " ..
             quote(base .. ".csr") .. " -CA " .. quote(ca) .. " -CAkey " ..
             quote(dir .. "/ca.key") .. " -extfile " .. quote(base .. ".ext") .. " -out " ..
             quote(base .. ".pem"))
        return { cert = base .. ".pem", key = base .. ".key" }
    end

    local function client(sb, opts)
        local o = { key = sb.key, api = sb.api, simple = sb.simple }
        for k, v in pairs(opts or {}) do o[k] = v end
        return assert(tc.new(o))
    end

    -- The sandbox's order list, read by a client that trusts the test CA.
    local function orders_total(sb)
        local c = client(sb, { ca_file = ca })
        local list = assert(c:orders{})
        local n = 0
        for _ in list do n = n + 1 end
        assert.is_nil(list:error())
        c:close()
        return n
    end

    lazy_setup(function()
        dir = must("mktemp -d"):match("^(%S+)")
        ca = dir .. "/ca.pem"
        must("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 " ..
             "-subj '/CN=lua-ticketscloud test CA' -keyout " .. quote(dir .. "/ca.key") ..
             " -out " .. quote(ca))
        good = issue("127.0.0.1", "IP:127.0.0.1, DNS:localhost")
        wrong = issue("wrong.example", "DNS:wrong.example")
    end)

    lazy_teardown(function()
        if dir then os.execute("rm -rf " .. quote(dir)) end
    end)

    describe("with a certificate for 127.0.0.1 and localhost", function()
        local sb

        before_each(function() sb = assert(sandbox.start { tls = good }) end)
        after_each(function() assert.is_true(sb:stop()) end)

        it("the sandbox says so in its ready line", function()
            assert.is_true(sb.tls)
            assert.matches("^https://127%.0%.0%.1:%d+$", sb.api)
            assert.matches("^127%.0%.0%.1:%d+$", sb.simple)
            assert.are.equal(sb.simple, sb.grpc)
        end)

        it("with ca_file = the test CA, REST and gRPC work over TLS", function()
            local c = client(sb, { ca_file = ca })
            local order = assert(c:create_order { event = EVENT, random = { [FAN] = 1 } })
            assert.are.equal("executed", order.status)
            assert.are.equal(order.id, assert(c:order(order.id)).id)

            local stream = assert(c:events {})
            local n, fan = 0, nil
            for event in stream do
                n = n + 1
                for _, set in ipairs(event.id == EVENT and event.sets or {}) do
                    if set.id == FAN then fan = set end
                end
            end
            assert.is_nil(stream:error())
            assert.are.equal(EVENTS, n)
            -- the same sandbox: the held ticket shows in the live counters
            assert.are.equal(fan.amount - 1, fan.amount_vacant)
            c:close()

            -- localhost is in the certificate too (REST only: gRPC resolves
            -- names with c-ares, whose Debian 12 version leaks the name of a
            -- localhost lookup, which the sanitizer run would report)
            c = client(sb, { ca_file = ca, api = sb.api:gsub("127%.0%.0%.1", "localhost") })
            assert(c:create_order { event = EVENT })
            c:close()
            assert.are.equal(2, orders_total(sb))
        end)

        it("without ca_file (the system store) both fail as transport errors, nothing sent",
           function()
            local c = client(sb)
            local order, err = c:create_order { event = EVENT, random = { [FAN] = 1 } }
            assert.is_nil(order)
            assert.are.equal("transport", err.kind)
            assert.matches("certificate", messages(err))
            assert.is_false(err.sent) -- the handshake failed: no byte of the request left

            local stream = assert(c:events {})
            local event
            event, err = stream()
            assert.is_nil(event)
            assert.are.equal("transport", err.kind)
            assert.matches("certificate verify failed", messages(err))
            c:close()

            assert.are.equal(0, orders_total(sb))
        end)

        it("plain HTTP and plaintext gRPC to it get nothing", function()
            local port_api, port_grpc = sb.api:match(":(%d+)$"), sb.simple:match(":(%d+)$")
            local c = client(sb, { api = "http://127.0.0.1:" .. port_api,
                                   simple = "http://127.0.0.1:" .. port_grpc, timeout = 5 })
            -- The request went out and no answer came: the client cannot tell
            -- that the service never applied it, so the outcome is unknown.
            local order, err = c:create_order { event = EVENT }
            assert.is_nil(order)
            assert.are.equal("unknown", err.kind)
            assert.matches("transport error", tostring(err))
            local event
            event, err = assert(c:events {})()
            assert.is_nil(event)
            assert.is_table(err)
            c:close()
            assert.are.equal(0, orders_total(sb))
        end)
    end)

    describe("with a certificate for another host name", function()
        local sb

        lazy_setup(function() sb = assert(sandbox.start { tls = wrong }) end)
        lazy_teardown(function() assert.is_true(sb:stop()) end)

        it("fails although the CA is trusted, and nothing is sent", function()
            local c = client(sb, { ca_file = ca })
            local order, err = c:create_order { event = EVENT, random = { [FAN] = 1 } }
            assert.is_nil(order)
            assert.are.equal("transport", err.kind)
            assert.matches("name", messages(err))
            assert.matches("127.0.0.1", messages(err), 1, true)

            local event
            event, err = assert(c:events {})()
            assert.is_nil(event)
            assert.are.equal("transport", err.kind)
            assert.matches("127.0.0.1 is not in peer certificate", messages(err), 1, true)
            c:close()

            -- The certificate is good for its own name: curl, told that
            -- wrong.example is 127.0.0.1, finds the order list empty.
            local port = sb.api:match(":(%d+)$")
            local out = must("curl -sS --max-time 10 --cacert " .. quote(ca) .. " --resolve " ..
                             "wrong.example:" .. port .. ":127.0.0.1 -H " ..
                             quote("Authorization: key " .. sb.key) ..
                             " https://wrong.example:" .. port .. "/v2/resources/orders")
            assert.matches('"total":0', out, 1, true)
        end)
    end)

    describe("tc-sandbox options", function()
        local function start(args)
            return run("timeout 20 " .. quote(BIN) .. " --http 127.0.0.1:0 --grpc 127.0.0.1:0 " ..
                       args)
        end

        it("--help documents them", function()
            local out, rc = run(quote(BIN) .. " --help")
            assert.are.equal(0, rc)
            assert.matches("--tls-cert FILE", out, 1, true)
            assert.matches("--tls-key FILE", out, 1, true)
            assert.matches("http=https://127.0.0.1:PORT grpc=127.0.0.1:PORT tls", out, 1, true)
        end)

        it("one without the other, a missing file, swapped files or a key of another " ..
           "certificate: a message naming the problem, exit 2", function()
            local cases = {
                { "--tls-cert " .. quote(good.cert), "--tls%-cert and %-%-tls%-key go together" },
                { "--tls-key " .. quote(good.key), "--tls%-cert and %-%-tls%-key go together" },
                { "--tls-cert " .. quote(dir .. "/none.pem") .. " --tls-key " .. quote(good.key),
                  "--tls%-cert [^\n]*none%.pem: No such file" },
                { "--tls-cert " .. quote(good.key) .. " --tls-key " .. quote(good.cert),
                  "--tls%-cert [^\n]*: no PEM certificate in it" },
                { "--tls-cert " .. quote(good.cert) .. " --tls-key " .. quote(good.cert),
                  "--tls%-key [^\n]*: no PEM private key in it" },
                { "--tls-cert " .. quote(good.cert) .. " --tls-key " .. quote(wrong.key),
                  "is %-%-tls%-key the key of %-%-tls%-cert%?" },
            }
            for _, case in ipairs(cases) do
                local out, rc = start(case[1])
                assert.are.equal(2, rc, case[1] .. "\n" .. out)
                assert.matches(case[2], out)
                assert.is_nil(out:find("ready", 1, true))
            end
        end)
    end)
end)
