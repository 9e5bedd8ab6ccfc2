#!/usr/bin/python3
"""The Python peer of the module's catalogue stream, for bench/peers.lua.

One Seats call with grpcio over a plaintext channel, on the code that
grpc_tools.protoc generates from proto/ into GEN_DIR (made when missing),
each seat checked (a ticket id). A first call of one seat opens the
connection; the walk is timed. Prints

    n=SEATS wall=SECONDS cpu=SECONDS hwm0=KB hwm=KB

    python3 bench/peers/seats.py GEN_DIR HOST:PORT KEY EVENT [LIMIT]
"""

import glob
import os
import resource
import subprocess
import sys
import time

PROTO_DIR = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                          "..", "..", "proto"))


def generate(gen_dir):
    if os.path.exists(os.path.join(gen_dir, "service_pb2_grpc.py")):
        return
    os.makedirs(gen_dir, exist_ok=True)
    protos = sorted(glob.glob(os.path.join(PROTO_DIR, "*.proto")))
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "-I" + PROTO_DIR,
                    "--python_out=" + gen_dir, "--grpc_python_out=" + gen_dir] + protos,
                   check=True)


def usage():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime, r.ru_maxrss


def main():
    if len(sys.argv) not in (5, 6):
        sys.exit("usage: seats.py GEN_DIR HOST:PORT KEY EVENT [LIMIT]")
    gen_dir, target, key, event = sys.argv[1:5]
    limit = int(sys.argv[5]) if len(sys.argv) == 6 else None
    generate(gen_dir)
    sys.path.insert(0, gen_dir)
    import grpc
    import seats_pb2
    import service_pb2_grpc

    stub = service_pb2_grpc.SimpleStub(grpc.insecure_channel(target))
    request = seats_pb2.SeatsRequest(event=event)
    metadata = [("authorization", key)]

    def walk(most):
        call = stub.Seats(request, metadata=metadata, timeout=600)
        n = 0
        for seat in call:
            if len(seat.ticket) != 24:
                sys.exit("seats.py: seat %d has no ticket id" % (n + 1))
            n += 1
            if most is not None and n >= most:
                call.cancel()
                break
        return n

    walk(1)  # opens the connection outside the timing
    cpu0, hwm0 = usage()
    t0 = time.monotonic()
    n = walk(limit)
    wall = time.monotonic() - t0
    cpu1, hwm = usage()
    print("n=%d wall=%.6f cpu=%.6f hwm0=%d hwm=%d" % (n, wall, cpu1 - cpu0, hwm0, hwm))


if __name__ == "__main__":
    main()
