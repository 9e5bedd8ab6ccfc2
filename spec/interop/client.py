#!/usr/bin/python3
"""A tc-simple v3 client generated from this project's proto/ files.

It proves that an ordinary gRPC client built from the public protos talks to
tc-sandbox, and it is how spec/sandbox_grpc_spec.lua drives the listener.

    /usr/bin/python3 spec/interop/client.py --gen DIR --target HOST:PORT \\
        --method Events --request '{"ids": ["..."]}' \\
        --metadata authorization=KEY --metadata preferred-language=ru

The Python code is generated into DIR (made once, reused when present) with
grpc_tools.protoc; nothing generated is kept in the tree. Each streamed
message is printed as one line of JSON (original proto field names), then a
last line "status <CODE> <details>". --method also takes a raw path
("/v3.Simple/Nope"), sent with an empty request, to probe unknown methods.
--parallel N runs the same call N times at once and prints only the counts
and statuses, one line per call, in the order the calls finished. --gzip
sends the request compressed.
"""

import argparse
import glob
import importlib
import os
import subprocess
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_DIR = os.path.normpath(os.path.join(HERE, "..", "..", "proto"))


def generate(gen_dir):
    """Generates the *_pb2 modules once; concurrent runs race harmlessly."""
    if os.path.exists(os.path.join(gen_dir, "service_pb2_grpc.py")):
        return
    os.makedirs(gen_dir, exist_ok=True)
    protos = sorted(glob.glob(os.path.join(PROTO_DIR, "*.proto")))
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", "-I" + PROTO_DIR,
         "--python_out=" + gen_dir, "--grpc_python_out=" + gen_dir] + protos,
        check=True)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gen", required=True, help="directory for the generated code")
    p.add_argument("--target", help="host:port of the sandbox's gRPC listener")
    p.add_argument("--method", help="Events, Seats, ... or a raw /path")
    p.add_argument("--request", default="{}", help="the request in proto3 JSON")
    p.add_argument("--metadata", action="append", default=[], help="key=value, repeatable")
    p.add_argument("--timeout", type=float, default=30.0, help="deadline in seconds")
    p.add_argument("--parallel", type=int, default=0, help="run N calls at once")
    p.add_argument("--gzip", action="store_true", help="send the request compressed")
    return p.parse_args()


def main():
    args = parse_args()
    generate(args.gen)
    if not args.target:
        return 0
    sys.path.insert(0, args.gen)

    import grpc
    from google.protobuf import json_format
    service_pb2 = importlib.import_module("service_pb2")
    service_pb2_grpc = importlib.import_module("service_pb2_grpc")

    metadata = []
    for item in args.metadata:
        key, _, value = item.partition("=")
        metadata.append((key, value))

    channel = grpc.insecure_channel(args.target)

    if args.method.startswith("/"):
        call = channel.unary_stream(args.method, request_serializer=lambda b: b,
                                    response_deserializer=lambda b: b)
        request = b""
        show = lambda m: m.hex()
    else:
        stub = service_pb2_grpc.SimpleStub(channel)
        call = getattr(stub, args.method)
        desc = service_pb2.DESCRIPTOR.services_by_name["Simple"].methods_by_name[args.method]
        module = importlib.import_module(desc.input_type.file.name[:-len(".proto")] + "_pb2")
        request = json_format.Parse(args.request, getattr(module, desc.input_type.name)())
        show = lambda m: json_format.MessageToJson(
            m, preserving_proto_field_name=True, indent=None, ensure_ascii=False,
            sort_keys=True)

    def run(emit):
        try:
            compression = grpc.Compression.Gzip if args.gzip else None
            for message in call(request, metadata=metadata, timeout=args.timeout,
                                compression=compression):
                emit(message)
            return "status OK"
        except grpc.RpcError as e:
            return "status %s %s" % (e.code().name, e.details() or "")

    if args.parallel > 0:
        lock = threading.Lock()

        def one(i):
            count = [0]

            def emit(_):
                count[0] += 1
            status = run(emit)
            with lock:
                print("call %d messages %d %s" % (i, count[0], status), flush=True)
        threads = [threading.Thread(target=one, args=(i,)) for i in range(args.parallel)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    else:
        print(run(lambda m: print(show(m))), flush=True)
    channel.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
