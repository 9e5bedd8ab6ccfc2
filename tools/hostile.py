#!/usr/bin/python3
"""hostile.py: tc-sandbox against hostile clients, reproducibly.

    make hostile                      (builds first; the same as:)
    /usr/bin/python3 tools/hostile.py [--sandbox build/tc-sandbox] [--seed 1]
        [--rest 10000] [--grpc 15000] [--tricklers 600]

It starts a sandbox on free loopback ports with a catalog holding a
50,000-seat event (tools/gen-catalog.lua), notes its memory, and then:

  REST   --rest malformed requests, each on a connection of its own, 48 at
         a time: broken request lines, paths with %00 and extra segments,
         bad Content-Length and Transfer-Encoding, heads over the limits,
         bare CRs, TLS ClientHellos, bodies of broken JSON, too large or
         cut short, heads and bodies that never end; and valid orders made
         and changed beside them.
  SLOW   --tricklers connections from three loopback addresses sending a
         byte a second, while normal requests are timed.
  gRPC   --grpc hostile calls: garbage and truncated messages to every
         method, unknown paths, missing and wrong keys, oversized messages
         and metadata, 2.5 MB ticket filters on the big event (small calls
         timed beside them), many streams at once, calls cancelled midway
         or with deadlines already past, broken reflection streams, health
         watches left open.

Afterwards it checks the inventory (every ticket in at most one live order,
per set vacant + held = total, as REST and gRPC each show it), notes the
memory again, stops the sandbox (which must exit 0) and prints the answers
by status. REST answers are also sorted by shape: "json" is the API's
{"errors": [...]} (or an order), "html" a page of libmicrohttpd's own, "html
twice" such a page sent with its head twice; "closed" is a connection
closed without an answer, "timeout" none within 20 s. The numbers of a run
are in docs/sandbox.md ("Hostile clients"). Nothing leaves 127.0.0.0/8.
"""

import argparse
import collections
import concurrent.futures
import json
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "spec", "interop"))

KEY = "9bd8359943b545500278875r49c5b96d"
ORDERS = "/v2/resources/orders"
EXAMPLE_EVENT = "5d7134962110d30a34e95b96"
FAN = "5d7135112110d30a34e97e2d"
A2 = "5d71353b2110d30a34e97e31"
SEAT = "5d7134962110d30a34e95cfe"


# ---- the sandbox ---------------------------------------------------------

def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        fields = dict(line.split(":", 1) for line in f if ":" in line)
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def start_sandbox(binary, catalog, seed, log):
    env = dict(os.environ, TC_SANDBOX_KEY=KEY)
    proc = subprocess.Popen([binary, "--http", "127.0.0.1:0", "--grpc", "127.0.0.1:0",
                             "--catalog", catalog, "--seed", str(seed), "--expire", "900"],
                            stdout=subprocess.PIPE, stderr=log, env=env, text=True)
    line = proc.stdout.readline()
    m = re.match(r"tc-sandbox ready http=http://127\.0\.0\.1:(\d+) grpc=http://(\S+)", line)
    if not m:
        proc.kill()
        raise SystemExit("hostile: the sandbox did not start: " + line)
    return proc, int(m.group(1)), m.group(2)


# ---- raw HTTP ------------------------------------------------------------

def exchange(port, data, source=None, timeout=20.0, pause=None):
    """Sends data (a list of chunks with pause between them) on a new
    connection; returns the bytes answered and how it ended."""
    s = socket.socket()
    s.settimeout(timeout)
    if source:
        s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    try:
        for i, chunk in enumerate(data if isinstance(data, list) else [data]):
            if i and pause:
                time.sleep(pause)
            s.sendall(chunk)
    except OSError:
        pass  # refused mid-send: read what was answered
    out, end = b"", "closed"
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            out += d
    except socket.timeout:
        end = "timeout"
    except OSError:
        pass
    s.close()
    return out, end


def shape_of(raw, end):
    """(status, shape) of a raw answer."""
    if not raw:
        return None, end
    m = re.match(rb"HTTP/1\.[01] (\d{3})", raw)
    if not m:
        return None, "garbage"
    status = int(m.group(1))
    head, _, body = raw.partition(b"\r\n\r\n")
    if body.startswith(b"HTTP/1."):
        return status, "html twice"
    if body.lstrip().startswith(b"<"):
        return status, "html"
    if not body and status in (200, 202):
        return status, "json"
    try:
        doc = json.loads(body)
    except ValueError:
        return status, "other"
    if status >= 400 and not (isinstance(doc, dict) and
                              (isinstance(doc.get("errors"), list) or "error" in doc)):
        return status, "other"
    return status, "json"


def head(method, target, headers=(), body=b"", version=b"HTTP/1.1", key=True):
    lines = [method + b" " + target + b" " + version, b"Host: sandbox"]
    if key:
        lines.append(b"Authorization: key " + KEY.encode())
    lines += list(headers)
    if body and not any(h.lower().startswith((b"content-length", b"transfer-encoding"))
                        for h in headers):
        lines.append(b"Content-Length: %d" % len(body))
    lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def json_bodies(rnd):
    odd = ["", "x", "done", "a\u0000b", "\u044f" * 300, "\ud83d\ude00", "%s%n", "x" * 70000]
    values = ["null", "true", "1", "-1", "1e999", "18446744073709551616", '"x"', "[]", "{}",
              json.dumps(rnd.choice(odd))]
    shapes = [
        lambda: "{",
        lambda: "[" * 5000 + "]" * 5000,
        lambda: '{"event":' + rnd.choice(values) + "}",
        lambda: '{"event":"%s","random":{"%s":%s}}' % (EXAMPLE_EVENT, FAN, rnd.choice(values)),
        lambda: '{"tickets":[%s]}' % ",".join(rnd.choice(values) for _ in range(rnd.randint(0, 5))),
        lambda: '{"a":1,"a":2}',
        lambda: '{"vendor_data":{"raw":{%s}}}' % ",".join(
            '"k%d":%s' % (i, rnd.choice(values)) for i in range(rnd.randint(0, 30))),
        lambda: json.dumps({"settings": {"customer": {"email": rnd.choice(odd)}}}),
        lambda: '{"status":' + rnd.choice(values) + "}",
        lambda: "\xff\xfe{}",
    ]
    return rnd.choice(shapes)().encode("utf-8", "surrogatepass")


def rest_requests(rnd, n, order_ids):
    """n malformed requests (method, data, chunks pause), deterministic."""
    oid = lambda: rnd.choice(order_ids)
    fast = [
        # the path: a NUL, extra segments, odd escapes
        lambda: head(b"POST", b"/v2/resources/orders/%00junk", body=b'{"event":"%s"}' %
                     EXAMPLE_EVENT.encode()),
        lambda: head(b"PATCH", b"/v2/resources/orders/" + oid().encode() + b"%00junk",
                     body=b'{"status":"cancelled"}'),
        lambda: head(b"GET", b"/v2/resources/orders/" + oid().encode() + b"/x"),
        lambda: head(b"GET", b"/v2/resources/orders/%2F" + oid().encode()),
        lambda: head(b"GET", b"/v2/resources/../resources/orders"),
        lambda: head(b"GET", b"/v2//resources/orders"),
        lambda: head(b"GET", b"/v2/resources/orders?status=done%00x&page=%00"),
        lambda: head(b"GET", b"/%C0%AF%FF%00"),
        lambda: head(b"GET", b"http://sandbox/v2/resources/orders"),
        lambda: head(b"OPTIONS", b"*"),
        # the request line
        lambda: head(b"FOO", b"/v2/resources/orders"),
        lambda: head(b"get", b"/v2/resources/orders"),
        lambda: head(b"GET", b"/v2/resources/orders", version=rnd.choice(
            [b"HTTP/2.0", b"HTTP/1.2", b"HTTP/9.9", b"HTTP/1", b"FTP/1.1", b""])),
        lambda: b"GET /v2/resources/orders\r\n\r\n",
        lambda: bytes(rnd.randrange(32, 127) for _ in range(rnd.randint(1, 200))) + b"\r\n\r\n",
        lambda: bytes(rnd.randrange(0, 256) for _ in range(rnd.randint(1, 200))) + b"\n\n",
        lambda: b"SSH-2.0-OpenSSH_9.2\r\n",
        lambda: head(b"GET", b"/" + b"a" * rnd.choice([9000, 20000, 70000])),
        # header fields
        lambda: head(b"POST", ORDERS.encode(), [b"Content-Length: " + rnd.choice(
            [b"12x", b"-1", b"0x10", b"1e3", b"99999999999999999999999", b""])], b"{}"),
        lambda: head(b"POST", ORDERS.encode(), [b"Content-Length: 2", b"Content-Length: 3"],
                     b"{}"),
        lambda: head(b"POST", ORDERS.encode(), [b"Transfer-Encoding: " + rnd.choice(
            [b"gzip", b"chunked, gzip", b"identity", b"x"])], b"{}"),
        lambda: head(b"POST", ORDERS.encode(), [b"Transfer-Encoding: chunked",
                                                 b"Content-Length: 2"], b"2\r\n{}\r\n0\r\n\r\n"),
        lambda: head(b"POST", ORDERS.encode(), [b"Transfer-Encoding: chunked"], rnd.choice(
            [b"zz\r\n{}\r\n0\r\n\r\n", b"ffffffffffffffffffff\r\n{}\r\n",
             b"2\r\n{}0\r\n\r\n", b"2\r\n{}\r\n0\r\nX-Trailer: y\r\n\r\n"])),
        lambda: head(b"GET", ORDERS.encode(), [b"X-%d: y" % i for i in range(rnd.choice(
            [101, 500]))]),
        lambda: head(b"GET", ORDERS.encode(), [b"X-Big: " + b"a" * rnd.choice([17000, 70000])]),
        lambda: head(b"GET", ORDERS.encode(), [rnd.choice(
            [b"NoColon", b"Bad Name: x", b" folded: x", b"X-A: a\x00b", b"X-A: \xff\xfe",
             b"Authorization: key " + KEY.encode() + b"\x00"])]),
        lambda: head(b"GET", ORDERS.encode(), key=False),
        lambda: head(b"GET", ORDERS.encode(), [b"Authorization: " + rnd.choice(
            [b"key", b"key " + b"k" * 300, b"Bearer x", b"key \xff"])], key=False),
        # bodies
        lambda: head(b"POST", ORDERS.encode(), body=json_bodies(rnd)),
        lambda: head(b"PATCH", b"/v2/resources/orders/" + oid().encode(), body=json_bodies(rnd)),
        lambda: head(b"PATCH", b"/v2/resources/orders/" + oid().encode(),
                     [b"X-Sandbox-Delay: " + rnd.choice([b"-1", b"x", b"10001", b"1"])],
                     json_bodies(rnd)),
        lambda: head(b"POST", ORDERS.encode(), body=b"{" * (1024 * 1024 + 10)),
        lambda: head(b"POST", ORDERS.encode(), [b"Content-Length: 3"], b"{}{}GET / HTTP/1.1\r\n"),
        lambda: head(b"POST", b"/v2/resources/refund_requests", body=json_bodies(rnd)),
        lambda: head(b"POST", b"/v2/services/promocodes/check", body=json_bodies(rnd)),
        lambda: head(b"PUT", b"/v2/services/orders/mosbilet/user_data", body=json_bodies(rnd)),
    ]
    slow = [
        # heads and bodies that never end: the deadlines answer them
        lambda: b"GET /v2/resources/orders HTTP/1.1\rHost: x\r\r",
        lambda: bytes.fromhex("16030100f4010000f00303") + bytes(rnd.randrange(256)
                                                            for _ in range(200)),
        lambda: b"GET /v2/resources/orders HTTP/1.1\r\nHost: x\r\n",
        lambda: b"",
        lambda: head(b"POST", ORDERS.encode(), [b"Content-Length: 100"], b"{}"),
    ]
    out = []
    for i in range(n):
        if i % 50 == 49:
            k = rnd.randrange(len(slow))
            out.append(("slow", "slow%d" % k, slow[k]()))
        else:
            k = rnd.randrange(len(fast))
            out.append(("fast", "fast%d" % k, fast[k]()))
    return out


def request_json(port, method, path, body=None, timeout=20):
    data = head(method.encode(), path.encode(),
                body=json.dumps(body).encode() if body is not None else b"")
    raw, _ = exchange(port, data, timeout=timeout)
    status, _ = shape_of(raw, "")
    _, _, text = raw.partition(b"\r\n\r\n")
    try:
        return status, json.loads(text) if text else None
    except ValueError:
        return status, None


# ---- phases --------------------------------------------------------------

def rest_phase(port, rnd, n, counts, shapes, worst):
    order_ids = []
    for _ in range(5):
        status, doc = request_json(port, "POST", ORDERS,
                                   {"event": EXAMPLE_EVENT, "random": {FAN: 1}})
        order_ids.append(doc["data"]["id"])
    requests = rest_requests(rnd, n, order_ids)
    lock = threading.Lock()

    def one(item):
        kind, label, data = item
        t0 = time.monotonic()
        raw, end = exchange(port, data)
        took = time.monotonic() - t0
        status, shape = shape_of(raw, end)
        with lock:
            counts[status or end] += 1
            shapes["%s %s" % (status, shape) if status else shape] += 1
            worst[kind] = max(worst.get(kind, 0), took)
            if VERBOSE:
                BY_KIND[label][(status, shape)] += 1

    def valid(i):
        # orders made, changed and finished beside the malformed requests
        r = random.Random(i)
        status, doc = request_json(port, "POST", ORDERS, {"event": EXAMPLE_EVENT,
                                                          "random": {FAN: r.randint(0, 3)}})
        if status == 200:
            oid = doc["data"]["id"]
            request_json(port, "PATCH", ORDERS + "/" + oid,
                         {"random": {FAN: r.randint(0, 3), A2: r.randint(0, 2)}})
            request_json(port, "PATCH", ORDERS + "/" + oid,
                         {"status": r.choice(["done", "cancelled", "done"])})

    with concurrent.futures.ThreadPoolExecutor(48) as pool:
        jobs = [pool.submit(one, item) for item in requests]
        jobs += [pool.submit(valid, i) for i in range(300)]
        for j in jobs:
            j.result()
    return len(requests)


def slow_phase(port, tricklers):
    """Tricklers from 127.0.0.2-4; normal requests timed meanwhile."""
    socks = []
    for i in range(tricklers):
        s = socket.socket()
        s.bind(("127.0.0.%d" % (2 + i % 3), 0))
        s.connect(("127.0.0.1", port))
        s.sendall(b"P")
        socks.append(s)
    times = []
    t_end = time.monotonic() + 4
    while time.monotonic() < t_end:
        t0 = time.monotonic()
        status, _ = request_json(port, "GET", ORDERS + "?page_size=1")
        times.append((time.monotonic() - t0, status))
        for s in socks[::10]:
            try:
                s.sendall(b"O")
            except OSError:
                pass
        time.sleep(0.05)
    answers = collections.Counter()
    for s in socks:
        s.settimeout(5)
        raw = b""
        try:
            while True:
                d = s.recv(4096)
                if not d:
                    break
                raw += d
        except OSError:
            pass
        s.close()
        answers[shape_of(raw, "closed")[0] or "closed"] += 1
    lat = sorted(t for t, _ in times)
    ok = sum(1 for _, st in times if st == 200)
    return answers, ok, len(times), lat[len(lat) // 2], lat[-1]


def grpc_phase(target, big_event, big_tickets, rnd, n, counts, beside):
    import grpc
    import reflect
    channel = grpc.insecure_channel(target, options=[
        ("grpc.max_send_message_length", 16 << 20), ("grpc.max_receive_message_length", 64 << 20)])
    reflection = reflect.Reflection(channel, False)
    pool_ = reflection.pool_for("v3.Simple")
    from google.protobuf import message_factory
    factory = message_factory.MessageFactory(pool_)
    msg = lambda name: factory.GetPrototype(pool_.FindMessageTypeByName(name))
    md = [("authorization", KEY)]
    methods = ["Artists", "Categories", "Cities", "Countries", "Events", "Maps", "MetaEvents",
               "Seats", "Tags", "Venues"]
    # (Watch is left out: a Watch whose garbage parses stays open, by design)
    paths = ["/v3.Simple/" + m for m in methods] + ["/grpc.health.v1.Health/Check"]
    # every ticket of the event and as many ids that are none: 2.6 MB
    filler = ["f%023x" % i for i in range(len(big_tickets))]
    heavy = msg("v3.SeatsRequest")(event=big_event, tickets=big_tickets + filler,
                                   status=3).SerializeToString()  # SOLD
    beside["filter"] = len(heavy)
    valid_seats = msg("v3.SeatsRequest")(event=big_event).SerializeToString()
    lock = threading.Lock()

    def note(code, label="?"):
        with lock:
            counts[code] += 1
            if VERBOSE:
                BY_KIND["grpc " + label][code] += 1

    def run(path, payload, metadata=md, timeout=30, cancel_after=None, alone=False, label="?"):
        # metadata over the limit fails the other calls in flight on the
        # connection too (gRPC 1.51): such calls get a connection of their own
        ch = grpc.insecure_channel(target) if alone else channel
        try:
            call = ch.unary_stream(path, request_serializer=lambda b: b,
                                   response_deserializer=lambda b: b)(
                payload, metadata=metadata, timeout=timeout)
            for i, _ in enumerate(call):
                if cancel_after is not None and i + 1 >= cancel_after:
                    call.cancel()
                    note("CANCELLED (by the client)", label)
                    return
            note("OK", label)
        except grpc.RpcError as e:
            note(e.code().name, label)
        finally:
            if alone:
                ch.close()

    def garbage():
        return bytes(rnd.randrange(256) for _ in range(rnd.choice([1, 7, 64, 2000])))

    calls = []
    for i in range(n):
        k = i % 20
        if k < 8:
            calls.append((rnd.choice(paths), garbage(), md))
        elif k < 10:
            good = msg("v3.EventsRequest")(ids=[EXAMPLE_EVENT]).SerializeToString()
            calls.append((rnd.choice(paths), good[:rnd.randrange(len(good))] + b"\x0a\xff", md))
        elif k == 10:
            calls.append((rnd.choice(["/v3.Simple/Nope", "/", "/v3.Simple/", "/a/b/c",
                                      "/v2/resources/orders"]), b"", md))
        elif k == 11:
            calls.append((rnd.choice(paths[:10]), b"",
                          rnd.choice([[], [("authorization", "key " + KEY)],
                                      [("authorization", "x" * 300)]])))
        elif k == 12:
            calls.append(("/v3.Simple/Seats", valid_seats, md, 30, 1))  # cancelled
        elif k == 13:
            calls.append(("/v3.Simple/Events", b"", md, 0.0001))  # deadline already past
        elif k == 14 and i % 200 == 14:
            calls.append(("/v3.Simple/Countries", b"", md + [("x-pad", "p" * 20000)], 30, None,
                          True))
        elif k == 15:
            ids = msg("v3.EventsRequest")(ids=["%024x" % rnd.getrandbits(96)
                                               for _ in range(20000)]).SerializeToString()
            calls.append(("/v3.Simple/Events", ids, md))
        elif k == 16:
            calls.append(("/grpc.health.v1.Health/Watch", b"", [], 30, 1))
        elif k == 17 and i % 200 == 17:
            calls.append(("/v3.Simple/Events", b"\x0a" + b"\xff" * 5 + b"x" * (5 << 20), md))
        else:
            calls.append(("/v3.Simple/Countries", b"", md))

    # broken reflection streams
    refl = channel.stream_stream("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                                 request_serializer=lambda b: b,
                                 response_deserializer=lambda b: b)

    def reflection_abuse(i):
        reqs = [garbage() for _ in range(rnd.randint(1, 5))] + [b"\x3a\x00"] * (i % 3)
        try:
            for _ in refl(iter(reqs), timeout=30):
                pass
            note("OK")
        except grpc.RpcError as e:
            note(e.code().name)

    # 2.5 MB filters on the big event, with small calls timed beside them
    small = channel.unary_stream("/v3.Simple/Countries", request_serializer=lambda b: b,
                                 response_deserializer=lambda b: b)

    def heavy_calls():
        for _ in range(5):
            t0 = time.monotonic()
            run("/v3.Simple/Seats", heavy)
            beside["heavy"] = max(beside.get("heavy", 0), time.monotonic() - t0)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        h = pool.submit(heavy_calls)
        time.sleep(0.01)
        small_times = []
        while not h.done():
            t0 = time.monotonic()
            list(small(b"", metadata=md, timeout=30))
            small_times.append(time.monotonic() - t0)
            time.sleep(0.005)
        beside["small"] = sorted(beside.get("small", []) + small_times)
        jobs = [pool.submit(run, *c, label=str(i % 20)) for i, c in enumerate(calls)]
        jobs += [pool.submit(reflection_abuse, i) for i in range(200)]
        for j in jobs:
            j.result()
    # many streams at once on one connection
    example_seats = msg("v3.SeatsRequest")(event=EXAMPLE_EVENT).SerializeToString()
    with concurrent.futures.ThreadPoolExecutor(300) as pool:
        for j in [pool.submit(run, "/v3.Simple/Seats", example_seats, label="streams")
                  for _ in range(300)]:
            j.result()
    return len(calls) + 200 + 5 + 300, reflection


def check_inventory(port, reflection, channel_target):
    """Every ticket in at most one live order; per set, vacant + held = total
    by gRPC Events; the seat statuses agree."""
    import grpc
    from google.protobuf import json_format, message_factory
    orders, page = [], 1
    while True:
        status, doc = request_json(port, "GET", ORDERS + "?page_size=200&page=%d" % page)
        assert status == 200, status
        orders += doc["data"]
        if not doc["data"]:
            break
        page += 1
    held, seen = collections.Counter(), set()
    for o in orders:
        if o["status"] in ("executed", "done"):
            for t in o["tickets"]:
                assert t["id"] not in seen, "ticket %s in two live orders" % t["id"]
                seen.add(t["id"])
                held[t["set"]] += 1
    pool_ = reflection.pool_for("v3.Simple")
    factory = message_factory.MessageFactory(pool_)
    Event = factory.GetPrototype(pool_.FindMessageTypeByName("v3.Event"))
    channel = grpc.insecure_channel(channel_target,
                                    options=[("grpc.max_receive_message_length", 64 << 20)])
    events = channel.unary_stream("/v3.Simple/Events", request_serializer=lambda b: b,
                                  response_deserializer=Event.FromString)
    sets = 0
    for e in events(b"", metadata=[("authorization", KEY)], timeout=60):
        for s in e.sets:
            sets += 1
            assert s.amount_vacant == s.amount - held[s.id], (s.id, s.amount, s.amount_vacant,
                                                               held[s.id])
    return len(orders), sum(held.values()), sets


VERBOSE = os.environ.get("HOSTILE_VERBOSE") == "1"
BY_KIND = collections.defaultdict(collections.Counter)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sandbox", default=os.path.join(ROOT, "build", "tc-sandbox"))
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--rest", type=int, default=10000)
    p.add_argument("--grpc", type=int, default=15000)
    p.add_argument("--tricklers", type=int, default=600)
    p.add_argument("--seats", type=int, default=50000)
    args = p.parse_args()
    rnd = random.Random(args.seed)

    work = tempfile.mkdtemp(prefix="tc-hostile-")
    catalog = os.path.join(work, "catalog.json")
    subprocess.run(["lua5.4", os.path.join(HERE, "gen-catalog.lua"), "--seats",
                    str(args.seats), "--events", "5", "--out", catalog], check=True)
    # the big event's tickets: the filter of the heavy calls
    with open(catalog) as f:
        cat = json.load(f)
    big = max(cat["events"], key=lambda e: sum(len(s.get("tickets", []))
                                                for s in e.get("sets", [])))
    big_tickets = [t["id"] for s in big["sets"] for t in s.get("tickets", [])]
    # ... merged into the example catalog, whose fixtures the REST phase uses
    with open(os.path.join(ROOT, "examples", "catalog.json")) as f:
        example = json.load(f)
    for k, v in cat.items():
        if isinstance(v, list) and isinstance(example.get(k), list):
            have = {x.get("id") for x in example[k] if isinstance(x, dict)}
            example[k] += [x for x in v if not isinstance(x, dict) or x.get("id") not in have]
    with open(catalog, "w") as f:
        json.dump(example, f)

    log = open(os.path.join(work, "sandbox.log"), "w")
    proc, port, target = start_sandbox(args.sandbox, catalog, args.seed, log)
    t_start = time.monotonic()
    for _ in range(20):
        request_json(port, "GET", ORDERS)
    rss0, _ = rss_kib(proc.pid)

    rest_counts, rest_shapes, worst = collections.Counter(), collections.Counter(), {}
    n_rest = rest_phase(port, rnd, args.rest, rest_counts, rest_shapes, worst)
    rss_rest, _ = rss_kib(proc.pid)
    slow_answers, slow_ok, slow_n, slow_p50, slow_max = slow_phase(port, args.tricklers)
    # in two halves, to tell memory kept for reuse from memory lost
    grpc_counts, beside = collections.Counter(), {}
    n_grpc, reflection = grpc_phase(target, big["id"], big_tickets, rnd, args.grpc // 2,
                                    grpc_counts, beside)
    rss_grpc1, _ = rss_kib(proc.pid)
    n2, _ = grpc_phase(target, big["id"], big_tickets, rnd, args.grpc - args.grpc // 2,
                       grpc_counts, beside)
    n_grpc += n2
    rss_grpc2, _ = rss_kib(proc.pid)
    n_orders, n_held, n_sets = check_inventory(port, reflection, target)
    rss1, hwm = rss_kib(proc.pid)
    proc.terminate()
    rc = proc.wait(timeout=30)
    log.close()

    def table(counter):
        return ", ".join("%s: %d" % (k, v) for k, v in
                         sorted(counter.items(), key=lambda kv: (str(kv[0]))))
    small = beside["small"]
    print("tc-hostile: seed %d, %d seats in the big event, %.0f s in all" % (
        args.seed, len(big_tickets), time.monotonic() - t_start))
    print("REST   %d malformed requests (+300 valid orders made, changed, finished beside)"
          % n_rest)
    print("       answers by status: " + table(rest_counts))
    print("       by shape: " + table(rest_shapes))
    print("       slowest answer: %.2f s (requests answered at once), %.2f s (heads and bodies"
          " that never end)" % (worst.get("fast", 0), worst.get("slow", 0)))
    print("SLOW   %d trickling connections: answers %s" % (args.tricklers, table(slow_answers)))
    print("       normal requests meanwhile: %d of %d answered 200, median %.1f ms, max %.1f ms"
          % (slow_ok, slow_n, slow_p50 * 1000, slow_max * 1000))
    print("gRPC   %d hostile calls: %s" % (n_grpc, table(grpc_counts)))
    print("       Seats with a %.1f MB ticket filter: at most %.2f s; %d Countries calls beside:"
          " median %.1f ms, max %.1f ms" % (beside["filter"] / 1e6, beside["heavy"],
                                            len(small), small[len(small) // 2] * 1000,
                                            small[-1] * 1000))
    print("CHECK  inventory: %d orders, %d tickets held, %d sets agree (REST and gRPC)"
          % (n_orders, n_held, n_sets))
    print("MEMORY RSS %.1f MiB before, %.1f MiB after REST, %.1f and %.1f MiB after each half"
          " of gRPC, %.1f MiB at the end (peak %.1f MiB)" % (
              rss0 / 1024, rss_rest / 1024, rss_grpc1 / 1024, rss_grpc2 / 1024, rss1 / 1024,
              hwm / 1024))
    print("EXIT   the sandbox exited with status %d" % rc)
    if VERBOSE:
        for label in sorted(BY_KIND):
            print(label, dict(BY_KIND[label]))
    return 0 if rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
