#!/usr/bin/python3
"""Small calls beside heavy ones, timed, for spec/sandbox_grpc_spec.lua.

    /usr/bin/python3 spec/interop/beside.py --gen DIR --target HOST:PORT \\
        --key KEY --event EVENT --tickets FILE [--heavy 5] [--small 20]

A heavy call is `Seats` of EVENT filtered by every ticket id in FILE (one a
line: megabytes of filter) and by status SOLD: all the work is matching the
filter, and the stream is as long as the event has sold seats. --heavy of
them go out one after another on one channel while --small `Countries`
calls go out one after another on another. It prints

    heavy N STATUS MESSAGES MAX_SECONDS
    small N max MS median MS during K

where K counts the small calls answered while a heavy call was running.
The code is generated into DIR as spec/interop/client.py does.
"""

import argparse
import importlib
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import client  # noqa: E402  (generate())


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gen", required=True)
    p.add_argument("--target", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--event", required=True)
    p.add_argument("--tickets", required=True)
    p.add_argument("--heavy", type=int, default=5)
    p.add_argument("--small", type=int, default=20)
    args = p.parse_args()
    client.generate(args.gen)
    sys.path.insert(0, args.gen)

    import grpc
    seats_pb2 = importlib.import_module("seats_pb2")
    geo_pb2 = importlib.import_module("geo_pb2")
    service_pb2_grpc = importlib.import_module("service_pb2_grpc")

    with open(args.tickets) as f:
        tickets = [line.strip() for line in f if line.strip()]
    md = [("authorization", args.key)]
    heavy_channel = grpc.insecure_channel(
        args.target, options=[("grpc.max_send_message_length", 8 << 20)])
    small_channel = grpc.insecure_channel(args.target)
    # The heavy request goes out as bytes made beforehand and its messages
    # are only counted: building or decoding megabytes in Python would hold
    # the interpreter's lock and time the client, not the sandbox.
    heavy_call = heavy_channel.unary_stream("/v3.Simple/Seats",
                                            request_serializer=lambda b: b,
                                            response_deserializer=lambda b: b)
    heavy_request = seats_pb2.SeatsRequest(
        event=args.event, tickets=tickets,
        status=seats_pb2.SeatsRequest.Status.Value("SOLD")).SerializeToString()
    small_stub = service_pb2_grpc.SimpleStub(small_channel)
    # Both channels connected before anything is timed.
    list(small_stub.Countries(geo_pb2.CountriesRequest(), metadata=md, timeout=30))
    grpc.channel_ready_future(heavy_channel).result(timeout=30)

    result = {"status": "OK", "n": 0, "max": 0.0}
    heavy_running = threading.Event()
    heavy_done = threading.Event()

    def heavy():
        for _ in range(args.heavy):
            t0 = time.monotonic()
            heavy_running.set()
            try:
                for _ in heavy_call(heavy_request, metadata=md, timeout=120):
                    result["n"] += 1
            except grpc.RpcError as e:
                result["status"] = e.code().name
            result["max"] = max(result["max"], time.monotonic() - t0)
        heavy_done.set()

    thread = threading.Thread(target=heavy)
    thread.start()
    heavy_running.wait()
    time.sleep(0.01)  # the first heavy request is on its way
    times, during = [], 0
    for _ in range(args.small):
        t0 = time.monotonic()
        list(small_stub.Countries(geo_pb2.CountriesRequest(), metadata=md, timeout=30))
        times.append(time.monotonic() - t0)
        if not heavy_done.is_set():
            during += 1
        time.sleep(0.01)
    thread.join()
    times.sort()
    print("heavy %d %s %d %.3f" % (args.heavy, result["status"], result["n"], result["max"]))
    print("small %d max %.1f median %.1f during %d" % (
        len(times), times[-1] * 1000, times[len(times) // 2] * 1000, during))
    return 0


if __name__ == "__main__":
    sys.exit(main())
