#!/usr/bin/python3
"""A gRPC server that echoes the caller's key into a status message, for
the one answer tc-sandbox never gives: a server quoting the key back.

    /usr/bin/python3 spec/helpers/echo_grpc.py

Prints "port N", then ends the first call of any method with status
UNAUTHENTICATED and a message that holds the `authorization` metadata entry
(the bare key) twice: near the start, and across byte 240, where the client
cuts long messages (the text goes on past it). Exits after that call, or after 30 seconds.

    /usr/bin/python3 spec/helpers/echo_grpc.py user-agent

quotes the caller's `user-agent` metadata instead: "user-agent: ...".
"""

import sys
import threading
from concurrent import futures

import grpc

ECHO = sys.argv[1] if len(sys.argv) > 1 else "key"


class Echo(grpc.GenericRpcHandler):
    def __init__(self, done):
        self.done = done

    def service(self, details):
        def handler(_request, context):
            metadata = dict(context.invocation_metadata())
            if ECHO == "user-agent":
                text = "user-agent: " + metadata.get("user-agent", "")
            else:
                key = metadata.get("authorization", "")
                text = "key " + key + " refused; "
                text += "x" * (236 - len(text)) + key + " again " + "y" * 64
            self.done.set()
            context.abort(grpc.StatusCode.UNAUTHENTICATED, text)

        return grpc.unary_stream_rpc_method_handler(handler)


def main():
    done = threading.Event()
    server = grpc.server(futures.ThreadPoolExecutor(2), handlers=[Echo(done)])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print("port", port, flush=True)
    done.wait(30)
    server.stop(2).wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
